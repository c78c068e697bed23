"""The default wording of every message, per kind and language. A hospital overrides any of
them (for all departments or for one) in `MessageTemplate`; placeholders are checked
against `rules.PLACEHOLDERS` when a template is saved.

Department advice (`{what_to_bring}`: a children's clinic asks for the vaccination booklet,
the dental clinic to brush teeth first) comes from the department's own "what to bring"
text, so the defaults need no copy per department."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from yuyue.notifications.enums import MessageKind

K = MessageKind

# (kind, locale) → (subject, body). The subject is the inbox title and the email subject;
# SMS sends the body.
DEFAULTS: Final[dict[tuple[MessageKind, str], tuple[str, str]]] = {
    (K.BOOKING_CONFIRMED, "zh-CN"): (
        "预约成功",
        "{patient}，您已预约{hospital}{department}{doctor}，{date} {time}就诊，地点{location}，"
        "序号{sequence_number}，凭证码{voucher_code}。{what_to_bring} 详情：{link}",
    ),
    (K.BOOKING_CONFIRMED, "en"): (
        "Appointment booked",
        "{patient}, your appointment at {hospital} is booked: {department} {doctor}, "
        "{date} at {time}, {location}. Number {sequence_number}, voucher {voucher_code}. "
        "{what_to_bring} Details: {link}",
    ),
    (K.BOOKING_HELD, "zh-CN"): (
        "号源已保留，请支付",
        "{patient}，已为您保留{date} {time}{department}{doctor}的号源（凭证码{voucher_code}），"
        "请在{pay_before}前支付挂号费{fee}元，逾期自动释放。支付：{link}",
    ),
    (K.BOOKING_HELD, "en"): (
        "Place held: please pay",
        "{patient}, a place is held for you: {department} {doctor}, {date} at {time} "
        "(voucher {voucher_code}). Pay the fee of CNY {fee} before {pay_before} or the "
        "place is released. Pay: {link}",
    ),
    (K.RESCHEDULED, "zh-CN"): (
        "改约成功",
        "{patient}，您的预约已改为{date} {time}{department}{doctor}，地点{location}，"
        "序号{sequence_number}，凭证码{voucher_code}。详情：{link}",
    ),
    (K.RESCHEDULED, "en"): (
        "Appointment moved",
        "{patient}, your appointment is now {department} {doctor}, {date} at {time}, "
        "{location}. Number {sequence_number}, voucher {voucher_code}. Details: {link}",
    ),
    (K.REMINDER, "zh-CN"): (
        "就诊提醒",
        "{patient}，提醒您{date} {time}到{location}就诊（{department}{doctor}，"
        "序号{sequence_number}，凭证码{voucher_code}）。{what_to_bring} 详情：{link}",
    ),
    (K.REMINDER, "en"): (
        "Appointment reminder",
        "{patient}, a reminder of your visit on {date} at {time}, {location} ({department} "
        "{doctor}, number {sequence_number}, voucher {voucher_code}). {what_to_bring} "
        "Details: {link}",
    ),
    (K.CANCELLED, "zh-CN"): (
        "预约已取消",
        "{patient}，您{date} {time}{department}{doctor}的预约（凭证码{voucher_code}）已取消。"
        "{reason} 详情：{link}",
    ),
    (K.CANCELLED, "en"): (
        "Appointment cancelled",
        "{patient}, your appointment {department} {doctor} on {date} at {time} (voucher "
        "{voucher_code}) is cancelled. {reason} Details: {link}",
    ),
    (K.STOP_CLINIC, "zh-CN"): (
        "停诊通知",
        "{patient}，很抱歉，{date} {time}{department}{doctor}停诊（{reason}），您的预约已取消，"
        "如已缴费将原路退回。请重新预约：{link}",
    ),
    (K.STOP_CLINIC, "en"): (
        "Clinic cancelled",
        "{patient}, we are sorry: the clinic {department} {doctor} on {date} at {time} is "
        "cancelled ({reason}) and so is your appointment; any fee paid is refunded. "
        "Book again: {link}",
    ),
    (K.SUBSTITUTED, "zh-CN"): (
        "替诊通知",
        "{patient}，很抱歉，{date}{department}{from_doctor}的门诊停诊（{reason}），已为您安排"
        "{doctor}接诊：{time}，地点{location}，序号{sequence_number}，凭证码{voucher_code}。"
        "费用不变，无需重新预约。详情：{link}",
    ),
    (K.SUBSTITUTED, "en"): (
        "Your clinic has a new doctor",
        "{patient}, we are sorry: the clinic {department} {from_doctor} on {date} is stopped "
        "({reason}). {doctor} will see you instead at {time}, {location}, number "
        "{sequence_number}, voucher {voucher_code}. The fee is unchanged and you need not "
        "book again. Details: {link}",
    ),
    (K.PATIENT_CHANGED, "zh-CN"): (
        "预约已转由您就诊",
        "{patient}，{date} {time}{department}{doctor}的预约经医院审批转由您就诊：地点{location}，"
        "序号{sequence_number}，凭证码{voucher_code}。{reason} 详情：{link}",
    ),
    (K.PATIENT_CHANGED, "en"): (
        "An appointment is now yours",
        "{patient}, with the hospital's approval the appointment {department} {doctor} on "
        "{date} at {time} is now yours: {location}, number {sequence_number}, voucher "
        "{voucher_code}. {reason} Details: {link}",
    ),
    (K.BOOKING_TRANSFERRED, "zh-CN"): (
        "预约已转给其他就诊人",
        "{patient}，您{date}{department}{doctor}的预约已经医院审批转给其他就诊人（{reason}）。"
        "如有疑问请联系门诊办公室。",
    ),
    (K.BOOKING_TRANSFERRED, "en"): (
        "Appointment transferred",
        "{patient}, with the hospital's approval your appointment {department} {doctor} on "
        "{date} now belongs to another patient ({reason}). Ask the outpatient office if "
        "this is unexpected.",
    ),
    (K.HOLD_EXPIRED, "zh-CN"): (
        "号源已释放",
        "{patient}，您保留的{date} {time}{department}{doctor}号源因未按时支付已释放。{link}",
    ),
    (K.HOLD_EXPIRED, "en"): (
        "Held place released",
        "{patient}, the place held for you ({department} {doctor}, {date} at {time}) was "
        "released because it was not paid in time. {link}",
    ),
    (K.SIGN_IN_CODE, "zh-CN"): (
        "登录验证码",
        "您的{hospital}登录验证码是{code}，{minutes}分钟内有效。请勿告诉他人。",
    ),
    (K.SIGN_IN_CODE, "en"): (
        "Sign-in code",
        "Your {hospital} sign-in code is {code}. It is valid for {minutes} minutes. "
        "Do not share it.",
    ),
    (K.WAITLIST_OFFER, "zh-CN"): (
        "候补有号了",
        "{patient}，您候补的{date} {time}{department}{doctor}有号了，"
        "请在{minutes}分钟内确认：{link}",
    ),
    (K.WAITLIST_OFFER, "en"): (
        "A place for you",
        "{patient}, a place is free for the clinic you are waiting for: {department} "
        "{doctor}, {date} at {time}. Confirm within {minutes} minutes: {link}",
    ),
    (K.NO_SHOW, "zh-CN"): (
        "已记为爽约",
        "{patient}，您预约的{date} {time}{department}{doctor}未取消也未到院报到，已记为爽约。"
        "多次爽约将暂停网上预约。{link}",
    ),
    (K.NO_SHOW, "en"): (
        "Missed visit recorded",
        "{patient}, your visit to {department} {doctor} on {date} at {time} was neither "
        "cancelled nor checked in and is recorded as missed. Repeated missed visits suspend "
        "online booking. {link}",
    ),
    (K.BLACKLISTED, "zh-CN"): (
        "网上预约已暂停",
        "{patient}，您在{window_days}天内爽约{count}次（{dates}），{until}前不能通过网上、"
        "电话等自助渠道预约，仍可到医院窗口挂号。如有异议可申诉：{link}",
    ),
    (K.BLACKLISTED, "en"): (
        "Online booking suspended",
        "{patient}, after {count} missed visits within {window_days} days ({dates}), "
        "self-service booking is suspended until {until}; you can still register at the "
        "hospital window. To appeal: {link}",
    ),
    (K.APPEAL_ACCEPTED, "zh-CN"): (
        "申诉已通过",
        "{patient}，您的申诉已通过，网上预约已恢复。{note} {link}",
    ),
    (K.APPEAL_ACCEPTED, "en"): (
        "Appeal accepted",
        "{patient}, your appeal was accepted and online booking is open to you again. "
        "{note} {link}",
    ),
    (K.APPEAL_REJECTED, "zh-CN"): (
        "申诉未通过",
        "{patient}，您的申诉未通过：{note}。{until}前仍不能自助预约，可到医院窗口挂号。{link}",
    ),
    (K.APPEAL_REJECTED, "en"): (
        "Appeal rejected",
        "{patient}, your appeal was not accepted: {note}. Self-service booking stays "
        "suspended until {until}; you can still register at the hospital window. {link}",
    ),
    (K.REFUND_STARTED, "zh-CN"): (
        "退款处理中",
        "{patient}，您{date} {time}{department}{doctor}的挂号费{amount}元正在原路退回，"
        "到账时间以支付渠道为准。详情：{link}",
    ),
    (K.REFUND_STARTED, "en"): (
        "Refund under way",
        "{patient}, the fee of CNY {amount} for {department} {doctor} on {date} at {time} is "
        "being refunded to where you paid it from. Details: {link}",
    ),
    (K.REFUND_SUCCEEDED, "zh-CN"): (
        "退款成功",
        "{patient}，您{date} {time}{department}{doctor}的挂号费{amount}元已退回。详情：{link}",
    ),
    (K.REFUND_SUCCEEDED, "en"): (
        "Refund completed",
        "{patient}, the fee of CNY {amount} for {department} {doctor} on {date} at {time} "
        "has been refunded. Details: {link}",
    ),
    (K.REFUND_FAILED, "zh-CN"): (
        "退款未成功，请到窗口办理",
        "{patient}，您{date} {time}{department}{doctor}的挂号费{amount}元未能原路退回，"
        "请携带身份证件到医院挂号收费窗口办理退费。详情：{link}",
    ),
    (K.REFUND_FAILED, "en"): (
        "Refund failed: please come to the window",
        "{patient}, the fee of CNY {amount} for {department} {doctor} on {date} at {time} "
        "could not be refunded online. Please bring your ID to the hospital's registration "
        "window to be refunded. Details: {link}",
    ),
    (K.REFUND_AT_WINDOW, "zh-CN"): (
        "请到窗口退费",
        "{patient}，您{date} {time}{department}{doctor}的挂号费{amount}元为线下支付或已打印发票，"
        "请携带发票或收据到医院挂号收费窗口办理退费。详情：{link}",
    ),
    (K.REFUND_AT_WINDOW, "en"): (
        "Refund at the window",
        "{patient}, the fee of CNY {amount} for {department} {doctor} on {date} at {time} was "
        "paid at the hospital or has a printed invoice: please bring the invoice or receipt "
        "to the registration window to be refunded. Details: {link}",
    ),
    (K.LATE_PAYMENT_REFUND, "zh-CN"): (
        "支付超时，费用将退回",
        "{patient}，您为{date} {time}{department}{doctor}支付的{amount}元到账时锁号已过期，"
        "号源已被他人预约，费用将原路退回。请重新预约：{link}",
    ),
    (K.LATE_PAYMENT_REFUND, "en"): (
        "Paid too late: refund under way",
        "{patient}, your payment of CNY {amount} for {department} {doctor} on {date} at "
        "{time} arrived after the hold had expired and the place was taken; it is being "
        "refunded to where you paid it from. Book again: {link}",
    ),
    (K.PAYMENT_CARRIED_OVER, "zh-CN"): (
        "挂号费已转入新预约",
        "{patient}，您已支付的挂号费{amount}元已转入改约后的预约（{date} {time}{department}"
        "{doctor}），无需再次支付。详情：{link}",
    ),
    (K.PAYMENT_CARRIED_OVER, "en"): (
        "Fee carried over",
        "{patient}, the fee of CNY {amount} you paid now covers your new appointment "
        "({department} {doctor}, {date} at {time}); there is nothing more to pay. "
        "Details: {link}",
    ),
    (K.ANNOUNCEMENT, "zh-CN"): (
        "医院公告：{title}",
        "{patient}您好，{hospital}公告：{title}。{body} 详情：{link}",
    ),
    (K.ANNOUNCEMENT, "en"): (
        "Notice: {title}",
        "{patient}, a notice from {hospital}: {title}. {body} Details: {link}",
    ),
}

_WEEKDAYS_ZH: Final = "一二三四五六日"
_WEEKDAYS_EN: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def default_template(kind: MessageKind, locale: str) -> tuple[str, str]:
    return DEFAULTS.get((kind, locale)) or DEFAULTS[(kind, "zh-CN")]


def format_date(day: date, locale: str) -> str:
    """Written out the way a patient reads it, independent of the process's C locale."""
    if locale == "en":
        return f"{_WEEKDAYS_EN[day.weekday()]} {day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.month}月{day.day}日（周{_WEEKDAYS_ZH[day.weekday()]}）"


# --- sample values, for the console's preview ----------------------------------------------

# What a preview fills every placeholder with when the page has nothing real to offer: an
# invented patient and booking (the page puts in the hospital, the department, its place
# and its "what to bring").
_SAMPLES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "patient": "张小明",
        "doctor": "李医生",
        "from_doctor": "王医生",
        "time": "09:30",
        "from_time": "08:30",
        "room": "3诊室",
        "sequence_number": "12",
        "from_sequence_number": "5",
        "voucher_code": "K7Q2M9",
        "fee": "50.00",
        "amount": "50.00",
        "pay_before": "10:15",
        "reason": "医生临时外出会诊",
        "note": "已核实病假证明",
        "code": "246810",
        "minutes": "30",
        "count": "3",
        "window_days": "365",
        "title": "门诊楼电梯检修",
        "body": "请走东侧楼梯。",
    },
    "en": {
        "patient": "Zhang Xiaoming",
        "doctor": "Dr Li",
        "from_doctor": "Dr Wang",
        "time": "09:30",
        "from_time": "08:30",
        "room": "Room 3",
        "sequence_number": "12",
        "from_sequence_number": "5",
        "voucher_code": "K7Q2M9",
        "fee": "50.00",
        "amount": "50.00",
        "pay_before": "10:15",
        "reason": "the doctor was called to a consultation",
        "note": "the sick note was checked",
        "code": "246810",
        "minutes": "30",
        "count": "3",
        "window_days": "365",
        "title": "Lift maintenance",
        "body": "Please use the east stairs.",
    },
}


def sample_values(
    locale: str,
    *,
    visit_date: date,
    hospital: str,
    department: str,
    location: str,
    what_to_bring: str,
    link: str,
) -> dict[str, str]:
    """A value for every placeholder of every kind of message, for a preview: invented
    patient and booking details around the hospital's and department's real ones."""
    values = dict(_SAMPLES.get(locale) or _SAMPLES["zh-CN"])
    shown_date = format_date(visit_date, locale)
    values.update(
        hospital=hospital,
        department=department,
        location=" ".join(part for part in (location.strip(), values["room"]) if part),
        what_to_bring=what_to_bring,
        link=link,
        date=shown_date,
        dates=shown_date,
        until=format_date(visit_date + timedelta(days=180), locale),
    )
    return values
