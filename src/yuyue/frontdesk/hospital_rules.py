"""The hospital's rules from the scheduling pages (门诊规则): the visit-day rules (the
check-in window, lateness, batches and priorities), the no-show rules (how many missed
visits in what period suspend self-service booking, and for how long), when messages go
(reminder offsets, quiet hours) and the wording of messages, for the hospital or one
department, with a preview filled with sample values.

Thin, like every floor page: each route finds who is at the screen, checks the form's
shape with the API's own schema, calls one service of the context that owns the setting
(visits, attendance, notifications) inside one transaction, and renders or redirects. The
services check the role and write the audit row; a refusal is a sentence on the page and
changes nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.attendance import rules as attendance_rules
from yuyue.attendance import service as attendance
from yuyue.attendance.schemas import NoShowPolicyUpdate
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.notifications import rules as message_rules
from yuyue.notifications import service as notifications
from yuyue.notifications.channels.base import DeliveryChannel
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.schemas import MessageTemplateUpdate, NotificationSettingsUpdate
from yuyue.notifications.templates import sample_values
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.models import Department
from yuyue.visits import service as visits
from yuyue.visits.schemas import VisitPolicyUpdate
from yuyue.visits.states import PriorityClass
from yuyue.web.pagekit import FormFields, FormRefused, filled, uuid_or_none, with_query

router = APIRouter(include_in_schema=False)
VISIT_PATH = "/scheduling/visit-rules"
NO_SHOW_PATH = "/scheduling/no-show-rules"
MESSAGES_PATH = "/scheduling/messages"
TEMPLATES_PATH = "/scheduling/message-templates"

# The visit-day rules a number field sets, in the order the page shows them.
VISIT_NUMBERS = (
    "check_in_minutes_before",
    "late_grace_minutes",
    "batch_slots",
    "elderly_age",
    "come_back_ahead",
    "travel_minutes",
    "estimate_min_samples",
    "code_attempts_max",
    "code_lockout_minutes",
)
NO_SHOW_NUMBERS = ("threshold", "window_days", "grace_minutes")
# Several numbers in one field: "180, 360" or "168 72 24".
_LIST_SEPARATORS = re.compile(r"[\s,，、;；]+")

i18n.register(
    {
        "console.entry.visit_rules": ("就诊规则", "Visit-day rules"),
        "console.entry.visit_rules_hint": (
            "报到时间窗、迟到与过号如何排队、批次、优先类别、叫号提醒。",
            "The check-in window, how late and skipped patients rejoin the line, batches, "
            "priority classes, the phone's notices.",
        ),
        "console.entry.no_show_rules": ("爽约规则", "No-show rules"),
        "console.entry.no_show_rules_hint": (
            "多少天内爽约几次暂停网上预约，暂停多久，散诊后多久记为爽约。",
            "How many missed visits within how many days suspend online booking, for how "
            "long, and when a missed visit is recorded.",
        ),
        "console.entry.message_settings": ("消息设置", "Message settings"),
        "console.entry.message_settings_hint": (
            "就诊提醒的时间、免打扰时段；哪些消息发送、经哪些渠道。",
            "When reminders go, the quiet hours; which messages are sent and how.",
        ),
        "console.entry.message_templates": ("消息模板", "Message templates"),
        "console.entry.message_templates_hint": (
            "全院和各科室的消息措辞（如儿科、口腔科的就诊须知），保存前可预览。",
            "The wording of messages for the hospital and for each department (a children's "
            "or dental clinic's advice), with a preview before saving.",
        ),
        "sched.nav.visit_rules": ("就诊规则", "Visit rules"),
        "sched.nav.no_show_rules": ("爽约规则", "No-shows"),
        "sched.nav.messages": ("消息设置", "Messages"),
        "sched.nav.message_templates": ("消息模板", "Templates"),
        "cfg.saved_by_whom": (
            "保存后立即生效，并记入审计日志。",
            "A change applies at once and is recorded in the audit trail.",
        ),
        "cfg.from.custom": ("本院已保存的设置", "The hospital's saved settings"),
        "cfg.from.default": ("系统默认（尚未保存过）", "The defaults (never saved)"),
        "cfg.save": ("保存", "Save"),
        # visit-day rules
        "cfg.visit.title": ("就诊规则", "Visit-day rules"),
        "cfg.visit.hint": (
            "报到从号源时间前若干分钟开放，到出诊结束时关闭。号源时间（加宽限）过后才到的患者和过号的"
            "患者，排到正在叫号的批次末尾，不插到已在等候的患者前面。",
            "Check-in opens some minutes before the slot and closes when the session ends. "
            "A patient who arrives after their slot (plus the grace) and a skipped patient "
            "join the end of the batch being called, never ahead of those already waiting.",
        ),
        "cfg.visit.done": ("就诊规则已保存。", "The visit-day rules are saved."),
        "cfg.visit.check_in_minutes_before": (
            "报到提前开放（分钟，0–1440）",
            "Check-in opens (minutes before the slot, 0–1440)",
        ),
        "cfg.visit.late_grace_minutes": (
            "迟到宽限（分钟，0–240）",
            "Lateness grace (minutes after the slot, 0–240)",
        ),
        "cfg.visit.batch_slots": (
            "每批包含的时段数（1–20）",
            "Slots per batch (1–20)",
        ),
        "cfg.visit.elderly_age": ("老年人优先年龄（50–120）", "Elderly priority from age (50–120)"),
        "cfg.visit.come_back_ahead": (
            "前面剩几人时提醒回诊室（0–50）",
            "Tell the patient to come back with this many ahead (0–50)",
        ),
        "cfg.visit.travel_minutes": (
            "“该出发了”提醒的路程分钟（0 为不提醒，0–600）",
            "Travel minutes for the “leave now” notice (0: none, 0–600)",
        ),
        "cfg.visit.estimate_min_samples": (
            "估算候诊时间所需的最少样本（1–100）",
            "Visits needed before estimating the wait (1–100)",
        ),
        "cfg.visit.code_attempts_max": (
            "报到码最多试错次数（1–50）",
            "Wrong check-in codes allowed (1–50)",
        ),
        "cfg.visit.code_lockout_minutes": (
            "试错过多后锁定（分钟，1–1440）",
            "Lockout after too many wrong codes (minutes, 1–1440)",
        ),
        "cfg.visit.priority_classes": ("优先类别", "Priority classes"),
        "cfg.visit.priority_hint": (
            "填写顺序（1 最优先）；留空的类别不启用。",
            "Give the order (1 goes first); a class left empty is not in force.",
        ),
        "cfg.visit.bad_rank": (
            "优先顺序须为 1–{count} 的不重复整数：{name}",
            "Priority orders must be distinct whole numbers from 1 to {count}: {name}",
        ),
        # no-show rules
        "cfg.no_show.title": ("爽约规则", "No-show rules"),
        "cfg.no_show.hint": (
            "未取消也未报到的预约在出诊结束后若干分钟记为爽约。滚动期内爽约达到次数，暂停网上、电话等"
            "自助预约（仍可到窗口挂号）；期内再次暂停时用下一档时长，最后一档重复。已有的暂停不变。",
            "A booking neither cancelled nor checked in is recorded as missed some minutes "
            "after its session ends. Enough missed visits within the rolling window suspend "
            "self-service booking (the window still registers); a further suspension within "
            "the window takes the next length, the last one repeating. Suspensions already "
            "made stay as they are.",
        ),
        "cfg.no_show.summary": (
            "现行规则：{days} 天内爽约 {count} 次，暂停 {bans} 天。",
            "In force: {count} missed visits within {days} days suspend booking for {bans} days.",
        ),
        "cfg.no_show.done": ("爽约规则已保存。", "The no-show rules are saved."),
        "cfg.no_show.threshold": ("爽约次数（1–20）", "Missed visits (1–20)"),
        "cfg.no_show.window_days": ("统计天数（1–730）", "Within days (1–730)"),
        "cfg.no_show.ban_days": (
            "暂停天数，依次为第 1、2… 次（1–3650，逗号分隔，最多 5 档，不得递减）",
            "Suspension days for the 1st, 2nd… (1–3650, comma-separated, at most 5, "
            "never shorter than the one before)",
        ),
        "cfg.no_show.grace_minutes": (
            "出诊结束后多久记为爽约（分钟，0–1440）",
            "Recorded as missed after the session ends (minutes, 0–1440)",
        ),
        "cfg.days_joiner": ("、", " / "),
        # message settings
        "cfg.messages.title": ("消息设置", "Message settings"),
        "cfg.messages.hint": (
            "就诊提醒在号源时间前的这些小时发出（已过的跳过）；免打扰时段（医院当地时间）内到期的提醒"
            "推迟到时段结束。其他消息即时发送。修改对之后的预约生效，已排好的提醒不变。",
            "Reminders go these hours before the slot (those already past are skipped); a "
            "reminder due in the quiet hours (hospital time) waits until they end. Every "
            "other message goes at once. A change applies to bookings made afterwards; "
            "reminders already queued keep their times.",
        ),
        "cfg.messages.done": ("消息设置已保存。", "The message settings are saved."),
        "cfg.messages.reminder_offsets_hours": (
            "提醒时间（开诊前小时，逗号分隔，如 168, 72, 24）",
            "Reminders (hours before, comma-separated, e.g. 168, 72, 24)",
        ),
        "cfg.messages.quiet_hours_start": ("免打扰开始", "Quiet hours from"),
        "cfg.messages.quiet_hours_end": ("免打扰结束", "Quiet hours until"),
        "cfg.messages.quiet_none": (
            "开始与结束相同表示不设免打扰。",
            "Equal times: no quiet hours.",
        ),
        "cfg.messages.kinds": ("发送的消息", "Messages sent"),
        "cfg.messages.kind": ("消息", "Message"),
        "cfg.messages.channels": ("渠道", "Channels"),
        "cfg.messages.quiet": ("遵守免打扰", "Waits for quiet hours"),
        "cfg.messages.yes": ("是", "Yes"),
        "cfg.messages.no": ("否（即时发送）", "No (at once)"),
        "cfg.messages.channels_hint": (
            "短信发往就诊人的手机；站内信和邮件发往其账号（账号填写了邮箱时）。登录验证码只发短信。",
            "SMS goes to the patient's phone; the inbox and email to their account (email "
            "when the account has an address). Sign-in codes go by SMS only.",
        ),
        "channel.sms": ("短信", "SMS"),
        "channel.inbox": ("站内信", "Inbox"),
        "channel.email": ("邮件", "Email"),
        "cfg.field.reminder_offsets_hours": ("提醒时间", "reminders"),
        "cfg.field.quiet_hours_start": ("免打扰开始", "quiet hours from"),
        "cfg.field.quiet_hours_end": ("免打扰结束", "quiet hours until"),
        # templates
        "cfg.templates.title": ("消息模板", "Message templates"),
        "cfg.templates.hint": (
            "科室单独的模板只用于该科室预约的消息；科室没有单独模板时用全院模板，全院没有时用系统默认。"
            "占位符写成 {name}，只能用下列名称。",
            "A department's own template is used for messages about its appointments; "
            "without one the hospital's applies, and without that the default. Write "
            "placeholders as {name}, using only the names listed.",
        ),
        "cfg.templates.scope": ("适用范围", "Applies to"),
        "cfg.templates.hospital": ("全院", "The whole hospital"),
        "cfg.templates.kind": ("消息", "Message"),
        "cfg.templates.locale": ("语言", "Language"),
        "cfg.templates.subject": ("标题", "Subject"),
        "cfg.templates.body": ("正文", "Text"),
        "cfg.templates.placeholders": ("可用的占位符", "Placeholders you can use"),
        "cfg.templates.source.department": ("本科室单独的模板", "This department's own template"),
        "cfg.templates.source.hospital": ("全院模板", "The hospital's template"),
        "cfg.templates.source.default": ("系统默认", "The default wording"),
        "cfg.templates.in_force": ("现用：{source}", "In force: {source}"),
        "cfg.templates.preview": ("预览", "Preview"),
        "cfg.templates.preview_hint": (
            "用示例就诊人和预约（本院、本科室的真实名称、位置和就诊须知）填充，未保存。",
            "Filled with a sample patient and booking (this hospital's and department's "
            "real names, place and advice); nothing is saved.",
        ),
        "cfg.templates.save": ("保存模板", "Save the template"),
        "cfg.templates.remove_department": (
            "删除本科室模板，改用全院模板",
            "Remove this department's template (use the hospital's)",
        ),
        "cfg.templates.remove_hospital": (
            "删除全院模板，改用系统默认",
            "Remove the hospital's template (use the default)",
        ),
        "cfg.templates.done.saved": ("模板已保存。", "The template is saved."),
        "cfg.templates.done.removed": (
            "模板已删除，改用上一级模板。",
            "Removed; the next one applies.",
        ),
        "cfg.templates.done.nothing": ("没有可删除的模板。", "There was no template to remove."),
        "cfg.templates.own": ("本范围已单独设置的模板", "Templates set for this scope"),
        "cfg.templates.own_none": ("尚未单独设置任何模板。", "No template of its own yet."),
        "cfg.templates.edit": ("编辑", "Edit"),
        "cfg.field.subject": ("标题（最多 200 字）", "subject (at most 200 characters)"),
        "cfg.field.body": ("正文（最多 2000 字）", "text (at most 2000 characters)"),
        "cfg.field.kind": ("消息", "message"),
        "cfg.field.locale": ("语言", "language"),
        "locale.zh-CN": ("中文", "Chinese"),
        "locale.en": ("英文", "English"),
        "msgkind.booking_confirmed": ("预约成功", "Booking confirmed"),
        "msgkind.booking_held": ("号源保留待支付", "Place held, awaiting payment"),
        "msgkind.cancelled": ("预约取消", "Cancelled"),
        "msgkind.rescheduled": ("改约成功", "Moved"),
        "msgkind.stop_clinic": ("停诊通知", "Clinic stopped"),
        "msgkind.substituted": ("替诊通知", "A new doctor takes over"),
        "msgkind.patient_changed": ("预约转由本人就诊", "Booking now the patient's"),
        "msgkind.booking_transferred": ("预约转给他人", "Booking transferred"),
        "msgkind.hold_expired": ("保留的号源已释放", "Held place released"),
        "msgkind.sign_in_code": ("登录验证码", "Sign-in code"),
        "msgkind.waitlist_offer": ("候补有号", "Waitlist offer"),
        "msgkind.reminder": ("就诊提醒", "Reminder"),
        "msgkind.no_show": ("记为爽约", "Missed visit"),
        "msgkind.blacklisted": ("暂停网上预约", "Booking suspended"),
        "msgkind.appeal_accepted": ("申诉通过", "Appeal accepted"),
        "msgkind.appeal_rejected": ("申诉未通过", "Appeal rejected"),
        "msgkind.refund_started": ("退款处理中", "Refund under way"),
        "msgkind.refund_succeeded": ("退款成功", "Refund completed"),
        "msgkind.refund_failed": ("退款未成功", "Refund failed"),
        "msgkind.refund_at_window": ("到窗口退费", "Refund at the window"),
        "msgkind.late_payment_refund": ("支付超时退款", "Paid too late, refunded"),
        "msgkind.payment_carried_over": ("挂号费转入新预约", "Fee carried over"),
        "msgkind.announcement": ("医院公告", "Hospital notice"),
    }
)
for _field in VISIT_NUMBERS:
    i18n.register(
        {
            f"cfg.field.{_field}": (
                i18n.translate(f"cfg.visit.{_field}", "zh-CN"),
                i18n.translate(f"cfg.visit.{_field}", "en"),
            )
        }
    )
for _field in (*NO_SHOW_NUMBERS, "ban_days"):
    i18n.register(
        {
            f"cfg.field.{_field}": (
                i18n.translate(f"cfg.no_show.{_field}", "zh-CN"),
                i18n.translate(f"cfg.no_show.{_field}", "en"),
            )
        }
    )
i18n.register({"cfg.field.priority_classes": ("优先类别", "priority classes")})


# --- what the pages read from the form and the query -----------------------------------------


class BadField(Exception):
    """A field whose text is not what it must be: 422, nothing done."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


# The settings pages name a field in an error by `cfg.field.*`; a problem of a form as a
# whole is said of its text (a template's placeholders).
FIELDS = FormFields("cfg.field", whole_form="body")


def whole_numbers(text: str, field: str) -> list[int]:
    """ "180, 360" → [180, 360]; anything but whole numbers is refused."""
    parts = [p for p in _LIST_SEPARATORS.split(text.strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise BadField(field)
    return [int(p) for p in parts]


def _numbers_of(who: FloorVisitor, text: str, field: str) -> list[int]:
    """`whole_numbers` for a form: `FormRefused` naming the field otherwise."""
    try:
        return whole_numbers(text, field)
    except BadField as bad:
        raise FormRefused(FIELDS.sentence(who, [bad.field])) from bad


def _done(request: Request, who: FloorVisitor, key: str) -> str | None:
    done = request.query_params.get("done")
    return who.t(key) if done == "1" else None


# --- the visit-day rules -----------------------------------------------------------------------


async def _visit_page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *visits.POLICY_ROLES)
    async with who.ctx.db.read() as session:
        policy = await visits.load_policy(session, hospital_id=who.hospital.id)
    ranks = {p.value: str(n) for n, p in enumerate(policy.priority_classes, start=1)}
    return render(
        request,
        who,
        "scheduling_visit_rules.html",
        status=status,
        error=error,
        done=_done(request, who, "cfg.visit.done"),
        policy=policy,
        numbers=VISIT_NUMBERS,
        classes=tuple(PriorityClass),
        ranks=ranks,
        form=form,
        nav="visit_rules",
        department=None,
    )


@router.get(VISIT_PATH, response_class=HTMLResponse)
async def visit_rules_view(request: Request, who: StaffDep) -> Response:
    return await _visit_page(request, who)


def _priority_classes(who: FloorVisitor, form: Mapping[str, str]) -> list[PriorityClass]:
    """`priority_order` for the form: `FormRefused` saying which rank is wrong otherwise."""
    try:
        return priority_order(form)
    except BadField as bad:
        name = who.t(f"priority.{bad.field}")
        raise FormRefused(who.t("cfg.visit.bad_rank", count=len(PriorityClass), name=name)) from bad


def priority_order(form: Mapping[str, str]) -> list[PriorityClass]:
    """The classes in force from their order fields (1 first; empty: not in force). An
    order that is not a distinct whole number from 1 to the number of classes is refused."""
    count = len(PriorityClass)
    ranked: list[tuple[int, PriorityClass]] = []
    for cls in PriorityClass:
        text = form.get(f"priority_{cls.value}", "").strip()
        if not text:
            continue
        if not text.isdigit() or not 1 <= int(text) <= count:
            raise BadField(cls.value)
        ranked.append((int(text), cls))
    if len({rank for rank, _ in ranked}) != len(ranked):
        raise BadField(next(cls.value for _, cls in ranked))
    return [cls for _, cls in sorted(ranked)]


@router.post(VISIT_PATH, response_class=HTMLResponse)
async def save_visit_rules(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *visits.POLICY_ROLES)
    form = await form_of(request, who)
    try:
        classes = _priority_classes(who, form)
        body = FIELDS.validated(
            who, VisitPolicyUpdate, filled(form, VISIT_NUMBERS) | {"priority_classes": classes}
        )

        async def work(session: AsyncSession) -> None:
            await visits.update_policy(
                session,
                actor=actor,
                changes=body.model_dump(exclude_none=True),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _visit_page(
            request, who, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(VISIT_PATH, done=1))


# --- the no-show rules -------------------------------------------------------------------------


async def _no_show_page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *attendance.POLICY_ROLES)
    async with who.ctx.db.read() as session:
        policy = await attendance.load_policy(session, hospital_id=who.hospital.id)
    return render(
        request,
        who,
        "scheduling_no_show_rules.html",
        status=status,
        error=error,
        done=_done(request, who, "cfg.no_show.done"),
        policy=policy,
        ban_days=", ".join(str(d) for d in policy.ban_days),
        summary=no_show_summary(policy, who),
        numbers=NO_SHOW_NUMBERS,
        form=form,
        nav="no_show_rules",
        department=None,
    )


@router.get(NO_SHOW_PATH, response_class=HTMLResponse)
async def no_show_rules_view(request: Request, who: StaffDep) -> Response:
    return await _no_show_page(request, who)


@router.post(NO_SHOW_PATH, response_class=HTMLResponse)
async def save_no_show_rules(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *attendance.POLICY_ROLES)
    form = await form_of(request, who)
    values: dict[str, Any] = filled(form, NO_SHOW_NUMBERS)
    try:
        if form.get("ban_days", "").strip():
            values["ban_days"] = _numbers_of(who, form["ban_days"], "ban_days")
        body = FIELDS.validated(who, NoShowPolicyUpdate, values)

        async def work(session: AsyncSession) -> None:
            await attendance.update_policy(
                session,
                actor=actor,
                changes=body.model_dump(exclude_none=True),
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _no_show_page(
            request, who, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(NO_SHOW_PATH, done=1))


def no_show_summary(policy: attendance_rules.Policy, who: FloorVisitor) -> str:
    return who.t(
        "cfg.no_show.summary",
        days=policy.window_days,
        count=policy.threshold,
        bans=who.t("cfg.days_joiner").join(str(d) for d in policy.ban_days),
    )


# --- when messages go --------------------------------------------------------------------------


def _kind_channels(kind: MessageKind) -> list[DeliveryChannel]:
    return message_rules.channels_for(kind, has_phone=True, has_account=True, has_email=True)


async def _messages_page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    actor = who.require(request, *notifications.SETTINGS_ROLES)
    async with who.ctx.db.read() as session:
        settings = await notifications.notification_settings(session, actor=actor)
    kinds = [
        (kind, _kind_channels(kind), message_rules.respects_quiet_hours(kind))
        for kind in MessageKind
    ]
    return render(
        request,
        who,
        "scheduling_messages.html",
        status=status,
        error=error,
        done=_done(request, who, "cfg.messages.done"),
        settings=settings,
        offsets=", ".join(str(h) for h in settings.reminder_offsets_hours),
        kinds=kinds,
        form=form,
        nav="messages",
        department=None,
    )


@router.get(MESSAGES_PATH, response_class=HTMLResponse)
async def messages_view(request: Request, who: StaffDep) -> Response:
    return await _messages_page(request, who)


@router.post(MESSAGES_PATH, response_class=HTMLResponse)
async def save_messages(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *notifications.SETTINGS_ROLES)
    form = await form_of(request, who)
    try:
        offsets_text = form.get("reminder_offsets_hours", "").strip()
        # No reminders at all is a choice: an empty field says so.
        offsets = _numbers_of(who, offsets_text, "reminder_offsets_hours") if offsets_text else []
        body = FIELDS.validated(
            who,
            NotificationSettingsUpdate,
            {
                "reminder_offsets_hours": offsets,
                "quiet_hours_start": form.get("quiet_hours_start", "").strip(),
                "quiet_hours_end": form.get("quiet_hours_end", "").strip(),
            },
        )

        async def work(session: AsyncSession) -> None:
            await notifications.save_notification_settings(
                session,
                actor=actor,
                reminder_offsets_hours=body.reminder_offsets_hours,
                quiet_hours_start=body.quiet_hours_start,
                quiet_hours_end=body.quiet_hours_end,
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _messages_page(
            request, who, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(MESSAGES_PATH, done=1))


# --- the wording of messages -------------------------------------------------------------------


def _kind(text: str | None) -> MessageKind:
    try:
        return MessageKind(text or MessageKind.BOOKING_CONFIRMED.value)
    except ValueError:
        return MessageKind.BOOKING_CONFIRMED


def _locale(text: str | None) -> str:
    return text if text in i18n.LOCALES else i18n.DEFAULT_LOCALE


async def _department(
    session: AsyncSession, who: FloorVisitor, text: str | None, *, strict: bool
) -> tuple[list[Department], Department | None]:
    """The hospital's departments and the one asked for (None: the hospital). An unknown
    one, or another hospital's, is refused when `strict`, else means the hospital."""
    departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
    wanted = uuid_or_none(text)
    for department in departments:
        if department.id == wanted:
            return departments, department
    if text and strict:
        raise NotFound(what="department")
    return departments, None


def _samples(who: FloorVisitor, locale: str, department: Department | None) -> dict[str, str]:
    english = locale == "en"
    hospital = (who.hospital.name_en if english else "") or who.hospital.name
    name = location = bring = ""
    if department is not None:
        name = (department.name_en if english else "") or department.name
        location = (department.location_en if english else "") or department.location
        bring = (department.what_to_bring_en if english else "") or department.what_to_bring
    base = who.ctx.settings.public_base_url.rstrip("/")
    return sample_values(
        locale,
        visit_date=who.today + timedelta(days=1),
        hospital=hospital,
        department=name or ("General Internal Medicine" if english else "内科"),
        location=location,
        what_to_bring=bring,
        link=f"{base}/appointments/sample",
    )


async def _templates_page(
    request: Request,
    who: FloorVisitor,
    *,
    department_text: str | None,
    kind: MessageKind,
    locale: str,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    preview: message_rules.Rendered | None = None,
    done: str | None = None,
) -> Response:
    actor = who.require(request, *notifications.SETTINGS_ROLES)
    async with who.ctx.db.read() as session:
        departments, department = await _department(session, who, department_text, strict=False)
        department_id = department.id if department else None
        kinds = message_rules.DEPARTMENT_KINDS if department else tuple(MessageKind)
        if kind not in kinds:
            kind = kinds[0]
        in_force = await notifications.template_in_force(
            session,
            hospital_id=who.hospital.id,
            kind=kind,
            locale=locale,
            department_id=department_id,
        )
        own = [
            view
            for view in await notifications.list_templates(session, actor=actor)
            if view.custom and view.department_id == department_id
        ]
    # What the scope itself has: for a department, its own template; for the hospital, its
    # own or the default.
    mine = in_force.source is (
        notifications.TemplateSource.DEPARTMENT
        if department
        else notifications.TemplateSource.HOSPITAL
    )
    samples = _samples(who, locale, department)
    if preview is None and error is None:
        preview = message_rules.render_message(in_force.subject, in_force.body, samples)
    return render(
        request,
        who,
        "scheduling_message_templates.html",
        status=status,
        error=error,
        done=done or _templates_done(request, who),
        departments=departments,
        department=department,
        kinds=kinds,
        kind=kind,
        locales=i18n.LOCALES,
        locale=locale,
        in_force=in_force,
        mine=mine,
        own=own,
        placeholders=sorted(message_rules.PLACEHOLDERS[kind]),
        form=form,
        preview=preview,
        nav="message_templates",
    )


def _templates_done(request: Request, who: FloorVisitor) -> str | None:
    done = request.query_params.get("done")
    if done in ("saved", "removed", "nothing"):
        return who.t(f"cfg.templates.done.{done}")
    return None


@router.get(TEMPLATES_PATH, response_class=HTMLResponse)
async def message_templates_view(request: Request, who: StaffDep) -> Response:
    query = request.query_params
    return await _templates_page(
        request,
        who,
        department_text=query.get("department"),
        kind=_kind(query.get("kind")),
        locale=_locale(query.get("locale")),
    )


async def _preview(
    who: FloorVisitor, body: MessageTemplateUpdate, department_text: str | None
) -> message_rules.Rendered:
    """The wording checked and filled with sample values; nothing saved."""
    try:
        async with who.ctx.db.read() as session:
            _, department = await _department(session, who, department_text, strict=True)
        message_rules.check_locale(body.locale)
        message_rules.check_template_scope(body.kind, for_department=department is not None)
        return message_rules.preview(
            body.kind,
            subject=body.subject,
            body=body.body,
            values=_samples(who, body.locale, department),
        )
    except YuyueError as error:
        raise FIELDS.refused(who, error) from error


@router.post(TEMPLATES_PATH, response_class=HTMLResponse)
async def save_message_template(request: Request, who: StaffDep) -> Response:
    """Previews (action=preview: checked and filled with sample values, nothing saved) or
    saves (action=save) the wording of one kind of message in one language for the
    hospital or a department."""
    actor = who.require(request, *notifications.SETTINGS_ROLES)
    form = await form_of(request, who)
    department_text = form.get("department") or None
    kind, locale = _kind(form.get("kind")), _locale(form.get("locale"))
    page: dict[str, Any] = {
        "department_text": department_text,
        "kind": kind,
        "locale": locale,
        "form": form,
    }
    try:
        body = FIELDS.validated(
            who,
            MessageTemplateUpdate,
            {
                "kind": form.get("kind", ""),
                "locale": form.get("locale", ""),
                "department_id": department_text,
                "subject": form.get("subject", ""),
                "body": form.get("body", ""),
            },
        )
        if form.get("action") == "preview":
            preview = await _preview(who, body, department_text)
            return await _templates_page(request, who, preview=preview, **page)

        async def work(session: AsyncSession) -> None:
            await notifications.save_template(
                session,
                actor=actor,
                kind=body.kind,
                locale=body.locale,
                department_id=body.department_id,
                subject=body.subject,
                body=body.body,
                now=who.ctx.clock.now(),
            )

        await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request, who, error=refused.sentence, status=refused.status, **page
        )
    return redirect(
        with_query(
            TEMPLATES_PATH,
            department=body.department_id,
            kind=body.kind.value,
            locale=body.locale,
            done="saved",
        )
    )


@router.post(TEMPLATES_PATH + "/remove", response_class=HTMLResponse)
async def remove_message_template(request: Request, who: StaffDep) -> Response:
    """Removes the scope's own wording: a department's messages then use the hospital's,
    the hospital's the default."""
    actor = who.require(request, *notifications.SETTINGS_ROLES)
    form = await form_of(request, who)
    department_text = form.get("department") or None
    kind, locale = _kind(form.get("kind")), _locale(form.get("locale"))

    async def work(session: AsyncSession) -> bool:
        _, department = await _department(session, who, department_text, strict=True)
        return await notifications.remove_template(
            session,
            actor=actor,
            kind=kind,
            locale=locale,
            department_id=department.id if department else None,
            now=who.ctx.clock.now(),
        )

    try:
        removed = await FIELDS.saved(who, work)
    except FormRefused as refused:
        return await _templates_page(
            request,
            who,
            department_text=None,
            kind=kind,
            locale=locale,
            error=refused.sentence,
            status=refused.status,
        )
    return redirect(
        with_query(
            TEMPLATES_PATH,
            department=department_text,
            kind=kind.value,
            locale=locale,
            done="removed" if removed else "nothing",
        )
    )
