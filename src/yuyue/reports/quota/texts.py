"""The quota advice's sentences in zh-CN and English (kit/i18n): one per reason code, filled
with the figures the reason carries, and the page's titles."""

from __future__ import annotations

from yuyue.kit import i18n
from yuyue.reports.quota.rules import Reason

i18n.register(
    {
        "quota.title": ("号源配额建议", "Quota advice"),
        "quota.about": (
            "根据最近 {weeks} 周（{first} 至 {last}）的需求：放号后约满的速度、候补人数、爽约、"
            "现场挂号的使用，建议下一周期每诊次的号源数和各号池的比例。采纳后写入号池比例，"
            "此后生成的诊次按新比例分配；号源数请在排班模板中调整。",
            "From the last {weeks} weeks ({first} to {last}) of demand — how fast sessions sold "
            "out after release, waitlists, no-shows and on-site registration — the places per "
            "session and the split between pools advised for the next period. Accepting writes "
            "the pool ratios, which sessions generated from then on use; change places per "
            "session in the schedule templates.",
        ),
        "quota.weeks": ("统计周数", "Weeks"),
        "quota.department": ("科室", "Department"),
        "quota.doctor": ("医生", "Doctor"),
        "quota.scope_department": ("（全科室）", "(whole department)"),
        "quota.sessions": ("诊次", "Sessions"),
        "quota.capacity": ("每诊次号源", "Places per session"),
        "quota.capacity_change": ("建议增减", "Advised change"),
        "quota.keep": ("不变", "keep"),
        "quota.places": ("{change:+d} 个", "{change:+d}"),
        "quota.current": ("当前比例", "Current split"),
        "quota.advised": ("建议比例", "Advised split"),
        "quota.reasons": ("理由", "Reasons"),
        "quota.accept": ("采纳并写入号池比例", "Accept and write the pool ratios"),
        "quota.accepted": (
            "已写入{scope}的号池比例：{ratios}。",
            "Pool ratios of {scope} written: {ratios}.",
        ),
        "quota.nothing": (
            "这段时间没有已汇总的诊次。请先运行 yuyue reports refresh。",
            "No summarised sessions in this period. Run yuyue reports refresh first.",
        ),
        "quota.refused": ("未写入：{detail}", "Nothing written: {detail}"),
        "quota.pool.appointment": ("预约", "Appointment"),
        "quota.pool.onsite": ("现场", "On-site"),
        "quota.pool.reserved": ("预留", "Reserved"),
        "quota.reason.too_little_data": (
            "只有 {sessions} 个诊次，数据太少，保持不变。",
            "Only {sessions} sessions: too little to go on; keep as is.",
        ),
        "quota.reason.sells_out_fast": (
            "{sessions} 个诊次中 {sold_out} 个（{share}%）网上号源约满，"
            "中位数在放号后 {minutes} 分钟。",
            "{sold_out} of {sessions} sessions ({share}%) sold out their remote places, "
            "half of them within {minutes} minutes of the release.",
        ),
        "quota.reason.sells_out": (
            "{sessions} 个诊次中 {sold_out} 个（{share}%）网上号源约满，但不算快。",
            "{sold_out} of {sessions} sessions ({share}%) sold out their remote places, "
            "though not quickly.",
        ),
        "quota.reason.waitlist_long": (
            "{unmet} 人候补未成功，平均每诊次 {per_session} 人：建议增加号源。",
            "{unmet} waitlist joins got no place, {per_session} per session: add places.",
        ),
        "quota.reason.no_shows_first": (
            "爽约率 {rate}%（每诊次约 {per_session} 人）：先由爽约空出的号满足需求，少加号源。",
            "No-show rate {rate}% (about {per_session} per session): the places no-shows "
            "leave come first, so fewer places are added.",
        ),
        "quota.reason.many_no_shows": (
            "爽约率 {rate}%：多留现场号，由到院患者补上空位。",
            "No-show rate {rate}%: more on-site places, so patients at the hospital fill "
            "the empty chairs.",
        ),
        "quota.reason.under_used": (
            "号源只用了 {use}%，每诊次约 {unused} 个未用：建议减少号源。",
            "Only {use}% of places were used, about {unused} unused per session: fewer places.",
        ),
        "quota.reason.onsite_busy": (
            "现场号用了 {onsite_use}%，网上号未约满：现场多分一些。",
            "On-site places were {onsite_use}% used while remote places did not sell out: "
            "more on-site.",
        ),
        "quota.reason.onsite_idle": (
            "现场号只用了 {onsite_use}%，网上号却约满：多分给预约。",
            "On-site places were only {onsite_use}% used while remote places sold out: "
            "more for booking.",
        ),
        "quota.reason.both_busy": (
            "网上号约满，现场号也用了 {onsite_use}%：比例不变，增加号源。",
            "Remote places sold out and on-site places were {onsite_use}% used too: keep the "
            "split, add places.",
        ),
        "quota.reason.custom_pools": (
            "该科室按渠道设了专用号池：比例请排班员自行调整。",
            "This scope has pools of its own per channel: the split is left to the scheduler.",
        ),
        "quota.reason.at_limit": (
            "比例已到下限（现场不少于 {onsite}%，预约不少于 {appointment}%）。",
            "The split is at its floor (on-site at least {onsite}%, booking at least "
            "{appointment}%).",
        ),
        "quota.reason.balanced": (
            "需求与号源相当（使用率 {use}%）：保持不变。",
            "Demand and places match ({use}% used): keep as is.",
        ),
    }
)


def sentence(reason: Reason, locale: str) -> str:
    return i18n.translate(f"quota.reason.{reason.code.value}", locale, **reason.values)


def pool(name: str, locale: str) -> str:
    key = f"quota.pool.{name}"
    found = i18n.translate(key, locale)
    return name if found == key else found
