"""Every sentence and title of the reports, in zh-CN and English (kit/i18n)."""

from __future__ import annotations

from yuyue.kit import i18n

WEEKDAYS = (
    ("周一", "Mon"),
    ("周二", "Tue"),
    ("周三", "Wed"),
    ("周四", "Thu"),
    ("周五", "Fri"),
    ("周六", "Sat"),
    ("周日", "Sun"),
)

i18n.register(
    {
        "reports.area": ("统计报表", "Reports"),
        "reports.name.bookings-by-channel": ("各渠道预约量", "Bookings by channel"),
        "reports.name.demand-heatmap": ("预约需求热力图", "Demand heat map"),
        "reports.name.utilisation": ("号源利用率", "Utilisation of places"),
        "reports.name.no-shows": ("退号、爽约与候补", "Cancellations, no-shows, waitlist"),
        "reports.name.waits": ("候诊与就诊时长", "Waits"),
        "reports.name.revenue": ("收款与退款", "Revenue and refunds"),
        "reports.name.sell-outs": ("放号后约满时间", "Sell-out times"),
        "reports.about.bookings-by-channel": (
            "按就诊日期统计各渠道、各号别的预约：共预约、仍有效、已取消、超时未支付、已到诊、爽约。",
            "Appointments for visit days in the range, by channel and registration level: "
            "made, still kept, cancelled, expired unpaid, attended, no-show.",
        ),
        "reports.about.demand-heatmap": (
            "患者在星期几、几点尝试挂号：挂号尝试 = 成功 + 被拒"
            "（已约满、超出限额、未到放号时间等），"
            "约满拒绝占比 = 因已约满被拒 ÷ 尝试；另列已记录的预约与候补登记。"
            "圆圈为号源约满的时刻，格子下沿的紫色条为约满拒绝占比。按请求日期筛选。",
            "When patients tried to book, by weekday and hour: attempts = booked + refused "
            "(sold out, limits, outside the window…), and the sold-out share = refused as "
            "sold out ÷ attempts; beside them the bookings made and waitlist joins recorded. "
            "Rings mark when sessions sold out, the purple bar along a cell's foot its "
            "sold-out share. Filtered by the request's date.",
        ),
        "reports.about.utilisation": (
            "按就诊日期：放出的号源、被占用（含待支付）、仍待支付、未使用、退回（取消或超时）。",
            "Visit days in the range: places offered, used (holds included), still held, "
            "unused, and given back (cancelled or expired).",
        ),
        "reports.about.no-shows": (
            "退号率 = 取消 ÷ 预约；爽约率 = 爽约 ÷（到诊 + 爽约）；"
            "候补成功率 = 候补成功 ÷ 候补登记。",
            "Cancellation rate = cancelled ÷ made; no-show rate = no-shows ÷ (attended + "
            "no-shows); waitlist success = accepted ÷ joined.",
        ),
        "reports.about.waits": (
            "按科室和签到时段：签到到叫号、叫号到就诊结束的平均分钟数。",
            "By department and hour of check-in: average minutes from check-in to the call "
            "and from the call to the end of the consultation.",
        ),
        "reports.about.revenue": (
            "按资金发生日期（支付时间、退款完成时间）统计挂号费收款与退款。",
            "Registration fees taken and refunded, by the day the money moved (paid, refund "
            "finished).",
        ),
        "reports.about.sell-outs": (
            "按就诊日期：各科室出诊场次中有多少场的线上号源全部约满，以及从放号到约满用了多久"
            "（最快、中位数、90% 的约满场次在此时间内约满）。约满属于场次，不分渠道。",
            "Visit days in the range: per department, how many sessions sold every remote "
            "place, and how long after the release they went (the fastest, the median, and the "
            "time within which 90 % of the sold-out sessions went). A sell-out is the "
            "session's, not a channel's.",
        ),
        "reports.heat_top": (
            "下表列出最繁忙的 {shown} 个时段（共 {total} 个）；导出的 CSV 和 Excel 含全部时段。",
            "The table lists the {shown} busiest cells of {total}; the CSV and Excel files hold "
            "them all.",
        ),
        "reports.date_from": ("开始日期", "From"),
        "reports.date_to": ("结束日期", "To"),
        "reports.campus": ("院区", "Campus"),
        "reports.department": ("科室", "Department"),
        "reports.doctor": ("医生", "Doctor"),
        "reports.channel": ("渠道", "Channel"),
        "reports.any": ("全部", "All"),
        "reports.show": ("查看", "Show"),
        "reports.export_csv": ("导出 CSV", "Export CSV"),
        "reports.export_xlsx": ("导出 Excel", "Export XLSX"),
        "reports.total": ("合计", "Total"),
        "reports.nothing": ("所选范围内没有数据。", "Nothing in the chosen range."),
        "reports.fresh": ("数据更新于 {at}", "Figures as of {at}"),
        "reports.never": (
            "所选日期尚未汇总：统计任务每 10 分钟更新近期数据，"
            "历史数据可运行 yuyue reports refresh。",
            "These days were never summarised: the job refreshes recent days every 10 minutes; "
            "run `yuyue reports refresh` for older ones.",
        ),
        "reports.bad_filter": (
            "筛选条件无效：日期格式为 YYYY-MM-DD，结束日期不早于开始日期，范围不超过 400 天。",
            "Invalid filter: dates are YYYY-MM-DD, the end is not before the start, and the "
            "range is at most 400 days.",
        ),
        "reports.col.channel": ("渠道", "Channel"),
        "reports.col.level": ("号别", "Level"),
        "reports.col.made": ("预约数", "Made"),
        "reports.col.kept": ("有效", "Kept"),
        "reports.col.cancelled": ("取消", "Cancelled"),
        "reports.col.expired": ("超时未支付", "Expired"),
        "reports.col.attended": ("到诊", "Attended"),
        "reports.col.no_show": ("爽约", "No-shows"),
        "reports.col.department": ("科室", "Department"),
        "reports.col.weekday": ("星期", "Weekday"),
        "reports.col.hour": ("时段", "Hour"),
        "reports.col.requests": ("预约请求", "Requests"),
        "reports.col.waitlist_joins": ("候补登记", "Waitlist joins"),
        "reports.col.sellouts": ("约满场次", "Sell-outs"),
        "reports.col.attempts": ("挂号尝试", "Attempts"),
        "reports.col.booked_attempts": ("尝试成功", "Booked"),
        "reports.col.sold_out_refusals": ("约满被拒", "Refused: sold out"),
        "reports.col.other_refusals": ("其他被拒", "Refused: other"),
        "reports.col.sold_out_share": ("约满拒绝占比", "Sold-out share"),
        "reports.col.places": ("放号数", "Places"),
        "reports.col.used": ("已占用", "Used"),
        "reports.col.held": ("待支付", "Held"),
        "reports.col.unused": ("未使用", "Unused"),
        "reports.col.returned": ("退回", "Returned"),
        "reports.col.utilisation": ("利用率", "Utilisation"),
        "reports.col.cancellation_rate": ("退号率", "Cancellation rate"),
        "reports.col.no_show_rate": ("爽约率", "No-show rate"),
        "reports.col.waitlist_joined": ("候补登记", "Waitlist joined"),
        "reports.col.waitlist_accepted": ("候补成功", "Waitlist accepted"),
        "reports.col.waitlist_success_rate": ("候补成功率", "Waitlist success"),
        "reports.col.visits": ("签到人数", "Checked in"),
        "reports.col.called": ("已叫号", "Called"),
        "reports.col.wait_minutes": ("平均候诊（分钟）", "Average wait (min)"),
        "reports.col.finished": ("已完成", "Finished"),
        "reports.col.consult_minutes": ("平均就诊（分钟）", "Average consultation (min)"),
        "reports.col.sessions": ("出诊场次", "Sessions"),
        "reports.col.sold_out": ("约满场次", "Sold out"),
        "reports.col.sold_out_rate": ("约满比例", "Share sold out"),
        "reports.col.fastest_minutes": ("最快约满（分钟）", "Fastest (min)"),
        "reports.col.median_minutes": ("约满中位数（分钟）", "Median (min)"),
        "reports.col.p90_minutes": ("90% 约满于（分钟）", "90th percentile (min)"),
        "reports.col.period": ("日期", "Date"),
        "reports.col.provider": ("支付渠道", "Provider"),
        "reports.col.payments": ("收款笔数", "Payments"),
        "reports.col.paid_fen": ("收款（元）", "Taken (yuan)"),
        "reports.col.refunds": ("退款笔数", "Refunds"),
        "reports.col.refund_fen": ("退款（元）", "Refunded (yuan)"),
        "reports.col.net_fen": ("净收入（元）", "Net (yuan)"),
        "reports.channel.app": ("App", "App"),
        "reports.channel.wechat": ("微信", "WeChat"),
        "reports.channel.alipay": ("支付宝", "Alipay"),
        "reports.channel.web": ("网站", "Website"),
        "reports.channel.kiosk": ("自助机", "Kiosk"),
        "reports.channel.phone": ("电话", "Phone"),
        "reports.channel.community": ("社区转诊", "Community"),
        "reports.channel.window": ("窗口", "Window"),
        "reports.provider.wechatpay": ("微信支付", "WeChat Pay"),
        "reports.provider.alipay": ("支付宝", "Alipay"),
        "reports.provider.insurance": ("医保", "Medical insurance"),
        "reports.provider.window": ("窗口", "Window"),
        "reports.chart.kept": ("有效", "Kept"),
        "reports.chart.given_back": ("取消/超时", "Cancelled or expired"),
        "reports.chart.used": ("已占用", "Used"),
        "reports.chart.unused": ("未使用", "Unused"),
        "reports.chart.wait": ("候诊", "Wait"),
        "reports.chart.consult": ("就诊", "Consultation"),
        "reports.chart.paid": ("收款", "Taken"),
        "reports.chart.refunded": ("退款", "Refunded"),
        "reports.chart.requests": ("预约请求", "Requests"),
        "reports.chart.attempts": ("挂号尝试", "Attempts"),
        "reports.chart.sold_out_refused": ("约满拒绝占比", "Sold-out share of attempts"),
        "reports.chart.sellouts": ("约满", "Sold out"),
        "reports.chart.sellouts_legend": (
            "约满场次（圈越粗越多，圈内为场次数）",
            "Sell-outs: ring width and the count inside",
        ),
        "reports.chart.minutes": ("{value} 分钟", "{value} min"),
        "reports.chart.hours": ("{value} 小时", "{value} h"),
        "reports.chart.days": ("{value} 天", "{value} days"),
        "reports.chart.median": ("约满时间中位数", "Median time to sell out"),
        "reports.chart.p90": ("90% 场次约满于", "90 % sold out within"),
        "reports.chart.sold_out_share": ("约满场次 / 出诊场次", "Sessions sold out"),
        "reports.chart.never_sold_out": ("未约满", "Never sold out"),
        "reports.chart.no_data": ("暂无数据", "No data"),
    }
)


def label(kind: str, value: str, locale: str) -> str:
    """A channel's or a provider's name, or the value itself when it has none."""
    if not value:
        return "-"
    key = f"reports.{kind}.{value}"
    shown = i18n.translate(key, locale)
    return value if shown == key else shown


def weekday(index: int, locale: str) -> str:
    zh, en = WEEKDAYS[index]
    return en if locale == "en" else zh
