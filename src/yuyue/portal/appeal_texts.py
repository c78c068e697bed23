"""The sentences of the ban and appeal pages, in zh-CN and English."""

from __future__ import annotations

from yuyue.kit import i18n

i18n.register(
    {
        "page.ban": ("暂停预约说明", "Booking suspended"),
        "page.blocked": ("暂停网上预约", "Blocked"),
        "page.blocked_until": (
            "{until} 前不能网上预约，查看原因或申诉",
            "No online booking until {until}: see why, or appeal",
        ),
        "page.ban_explain": (
            "{name}因{reason}，{until} 前不能通过网上、电话等自助渠道预约。"
            "到医院窗口仍可现场挂号。",
            "Self-service booking for {name} is suspended until {until}: {reason}. "
            "Registration at the hospital window is still possible.",
        ),
        "page.ban_queued": (
            "这次暂停从 {starts} 开始，接在当前的暂停之后。",
            "This suspension starts on {starts}, after the current one ends.",
        ),
        "page.ban_lifted": (
            "已于 {at} 解除，网上预约已恢复。",
            "Lifted on {at}; online booking is open again.",
        ),
        "page.no_ban": (
            "该就诊人目前可以正常网上预约。",
            "Online booking is open for this patient.",
        ),
        "page.appeal": ("申诉", "Appeal"),
        "page.appeal_explain": (
            "如果爽约另有原因（例如急诊住院、已到院但未报到），请写明情况，工作人员会尽快处理并通知您。",
            "If there was a reason for the missed visits (an emergency admission, or you came "
            "but were not checked in), say so here; staff will review it and let you know.",
        ),
        "page.appeal_text": ("申诉内容", "Your appeal"),
        "page.appeal_hint": (
            "{minimum}–{maximum} 个字。",
            "{minimum}–{maximum} characters.",
        ),
        "page.appeal_submit": ("提交申诉", "Send the appeal"),
        "page.appeal_sent": (
            "申诉已提交，处理结果会通过短信和站内消息通知您。",
            "Your appeal was sent; you will hear the decision by text message and here.",
        ),
        "page.appeal_submitted_on": ("{at} 提交的申诉正在处理中。", "Appeal sent {at}: waiting."),
        "page.appeal_accepted": ("申诉已通过（{at}）。", "Appeal accepted ({at})."),
        "page.appeal_rejected": ("申诉未通过（{at}）。", "Appeal rejected ({at})."),
        "page.appeal_note": ("工作人员说明：{note}", "Staff note: {note}"),
        "page.appeal_yours": ("您写的：{text}", "You wrote: {text}"),
    }
)
