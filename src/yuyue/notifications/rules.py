"""Delivery rules, pure: retries and back-off, quiet hours, the reminder schedule, who gets
what by which channel, and message templates (checking and filling them)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.notifications.channels.base import DeliveryChannel
from yuyue.notifications.enums import MessageKind

K = MessageKind

# --- errors -------------------------------------------------------------------------------


class InvalidEmail(YuyueError):
    code = "invalid_email"
    status = 422


class UnsupportedLocale(YuyueError):
    code = "unsupported_locale"
    status = 422


class _Explained(YuyueError):
    """A refusal whose sentence names the problem, itself a translated message."""

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        problem = i18n.translate(str(self.values.get("problem_id", "")), locale, **self.values)
        return i18n.translate(f"error.{self.code}", locale, problem=problem)


class InvalidTemplate(_Explained):
    code = "invalid_template"
    status = 422

    def extensions(self) -> dict[str, Any]:
        allowed = self.values.get("allowed_names")
        return {"allowed": list(allowed)} if allowed else {}


class InvalidNotificationSettings(_Explained):
    code = "invalid_notification_settings"
    status = 422


i18n.register(
    {
        "title.invalid_email": ("邮箱地址无效", "Invalid email address"),
        "error.invalid_email": (
            "邮箱地址格式不正确，请检查后重试。",
            "This is not a valid email address; please check it.",
        ),
        "title.unsupported_locale": ("不支持的语言", "Unsupported language"),
        "error.unsupported_locale": (
            "不支持该语言，可选：{supported}。",
            "This language is not supported; choose one of: {supported}.",
        ),
        "title.invalid_template": ("消息模板有误", "Invalid message template"),
        "error.invalid_template": (
            "消息模板有误：{problem}",
            "The message template is not valid: {problem}",
        ),
        "template.unknown_placeholders": (
            "不认识的占位符 {names}（可用：{allowed}）",
            "unknown placeholders {names} (allowed: {allowed})",
        ),
        "template.malformed": (
            "花括号不成对，或占位符带有格式、属性或下标（只能写 {{name}}）",
            "unbalanced braces, or a placeholder with a format, attribute or index "
            "(write {{name}} only)",
        ),
        "template.empty": ("标题和正文都不能为空", "subject and body must not be empty"),
        "template.not_for_department": (
            "这类消息与具体预约无关，只能设置全院模板",
            "this message is not about an appointment, so only the hospital's template applies",
        ),
        "title.invalid_notification_settings": ("通知设置有误", "Invalid notification settings"),
        "error.invalid_notification_settings": (
            "通知设置有误：{problem}",
            "The notification settings are not valid: {problem}",
        ),
        "settings.offsets": (
            "提醒时间须为 1–{maximum} 小时之间、互不相同的整数，最多 {count} 个",
            "reminder offsets must be distinct whole hours between 1 and {maximum}, "
            "at most {count} of them",
        ),
        "what.account": ("账号", "account"),
        "what.message_template": ("消息模板", "message template"),
    }
)

# --- email and language --------------------------------------------------------------------

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}")


def normalise_email(raw: str | None) -> str | None:
    """A plain address (no display name), or None for "no email"; refuses anything else."""
    if raw is None or not raw.strip():
        return None
    address = raw.strip()
    local, _, domain = address.partition("@")
    if (
        len(address) > 254
        or len(local) > 64
        or not _EMAIL.fullmatch(address)
        or ".." in address
        or local.startswith(".")
        or local.endswith(".")
    ):
        raise InvalidEmail()
    return f"{local}@{domain.lower()}"


def check_locale(locale: str) -> str:
    if locale not in i18n.LOCALES:
        raise UnsupportedLocale(supported=", ".join(i18n.LOCALES))
    return locale


# --- channels -----------------------------------------------------------------------------


def channels_for(
    kind: MessageKind, *, has_phone: bool, has_account: bool, has_email: bool
) -> list[DeliveryChannel]:
    """A sign-in code goes by SMS only (it is useless anywhere else and must not linger in
    an inbox); everything else to the phone, the account's inbox and its email."""
    chosen: list[DeliveryChannel] = []
    if has_phone:
        chosen.append(DeliveryChannel.SMS)
    if kind is K.SIGN_IN_CODE:
        return chosen
    if has_account:
        chosen.append(DeliveryChannel.INBOX)
        if has_email:
            chosen.append(DeliveryChannel.EMAIL)
    return chosen


# --- retries ------------------------------------------------------------------------------

MAX_ATTEMPTS: Final = 5
RETRY_BASE: Final = timedelta(seconds=30)
RETRY_CAP: Final = timedelta(hours=1)
# Long enough for any provider call (timeouts are seconds) and a batch of them; a worker
# that holds a delivery longer is taken for dead and the delivery is recovered.
LEASE: Final = timedelta(minutes=5)


def retry_delay(
    attempt: int,
    *,
    rand: float,
    base: timedelta = RETRY_BASE,
    cap: timedelta = RETRY_CAP,
) -> timedelta:
    """Exponential back-off with "equal jitter": after attempt n the wait is between half
    and all of min(cap, base * 2^(n-1)); `rand` in [0, 1) picks where, so retries of many
    messages that failed together (a provider outage) do not return together."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= rand < 1.0:
        raise ValueError("rand must be in [0, 1)")
    ceiling: timedelta = min(cap, base * (2 ** min(attempt - 1, 30)))
    half = ceiling / 2
    return half + half * rand


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


def judge(*, accepted: bool, retryable: bool, attempts: int, max_attempts: int) -> Verdict:
    """What a send's outcome means for the delivery after `attempts` attempts."""
    if accepted:
        return Verdict.SENT
    if retryable and attempts < max_attempts:
        return Verdict.RETRY
    return Verdict.FAILED


# --- quiet hours and reminders -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window in hospital local time; it may run over midnight (22:00–07:00).
    Equal start and end mean no quiet hours."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


DEFAULT_QUIET_HOURS: Final = QuietHours(time(22, 0), time(7, 0))
DEFAULT_REMINDER_OFFSETS_HOURS: Final = (7 * 24, 3 * 24, 24)
MAX_OFFSET_HOURS: Final = 30 * 24
MAX_OFFSETS: Final = 6

# The patient just did something and waits for the answer (a code, a confirmation), or the
# news cannot wait (the clinic is stopped, a place is offered for minutes): these go at
# once, whatever the hour. Only reminders wait for the morning.
_QUIET_KINDS: Final = frozenset({K.REMINDER})


def respects_quiet_hours(kind: MessageKind) -> bool:
    return kind in _QUIET_KINDS


def deliver_at(kind: MessageKind, due: datetime, *, quiet: QuietHours, tz: str) -> datetime:
    """When a message due at `due` may go: at once, or at the end of the quiet hours."""
    if not respects_quiet_hours(kind):
        return due
    zone = ZoneInfo(tz)
    local = due.astimezone(zone)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return due
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += timedelta(days=1)
    return datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)


def check_offsets(offsets: Sequence[int]) -> list[int]:
    """Distinct whole hours in 1…MAX_OFFSET_HOURS, at most MAX_OFFSETS; largest first."""
    if (
        len(offsets) > MAX_OFFSETS
        or len(set(offsets)) != len(offsets)
        or any(isinstance(o, bool) or not 1 <= o <= MAX_OFFSET_HOURS for o in offsets)
    ):
        raise InvalidNotificationSettings(
            problem_id="settings.offsets", maximum=MAX_OFFSET_HOURS, count=MAX_OFFSETS
        )
    return sorted(offsets, reverse=True)


def reminder_times(
    *,
    visit_start: datetime,
    offsets_hours: Iterable[int],
    now: datetime,
    quiet: QuietHours,
    tz: str,
) -> list[datetime]:
    """When to remind of a visit starting at `visit_start`: each offset before it, moved
    out of the quiet hours; offsets already past, or moved past the visit, are skipped."""
    times: set[datetime] = set()
    for hours in offsets_hours:
        due = visit_start - timedelta(hours=hours)
        if due <= now:
            continue
        at = deliver_at(K.REMINDER, due, quiet=quiet, tz=tz)
        if at < visit_start:
            times.add(at)
    return sorted(times)


# --- templates ----------------------------------------------------------------------------

_COMMON: Final = frozenset({"hospital", "patient"})
_VISIT: Final = _COMMON | {
    "voucher_code",
    "date",
    "time",
    "department",
    "doctor",
    "location",
    "room",
    "sequence_number",
    "what_to_bring",
    "link",
}


def visit_place(location: str, room: str) -> str:
    """Where the patient goes: the department's place and the clinic's room (诊室), so every
    message that says where (`{location}`) names the room too; `{room}` alone is there for
    a hospital's own templates."""
    return " ".join(part for part in (location.strip(), room.strip()) if part)


PLACEHOLDERS: Final[Mapping[MessageKind, frozenset[str]]] = {
    K.BOOKING_CONFIRMED: _VISIT,
    K.BOOKING_HELD: _VISIT | {"fee", "pay_before"},
    K.RESCHEDULED: _VISIT,
    K.REMINDER: _VISIT,
    K.CANCELLED: _VISIT | {"reason"},
    K.STOP_CLINIC: _VISIT | {"reason"},
    K.SUBSTITUTED: _VISIT | {"reason", "from_doctor", "from_time", "from_sequence_number"},
    K.PATIENT_CHANGED: _VISIT | {"reason"},
    K.BOOKING_TRANSFERRED: _COMMON | {"date", "department", "doctor", "reason"},
    K.HOLD_EXPIRED: _VISIT,
    K.SIGN_IN_CODE: frozenset({"hospital", "code", "minutes"}),
    K.WAITLIST_OFFER: _COMMON
    | {"date", "time", "department", "doctor", "location", "link", "minutes"},
    K.NO_SHOW: _VISIT,
    K.BLACKLISTED: _COMMON | {"count", "window_days", "dates", "until", "link"},
    K.APPEAL_ACCEPTED: _COMMON | {"note", "link"},
    K.APPEAL_REJECTED: _COMMON | {"note", "until", "link"},
    K.REFUND_STARTED: _VISIT | {"amount"},
    K.REFUND_SUCCEEDED: _VISIT | {"amount"},
    K.REFUND_FAILED: _VISIT | {"amount"},
    K.REFUND_AT_WINDOW: _VISIT | {"amount"},
    K.LATE_PAYMENT_REFUND: _VISIT | {"amount"},
    K.PAYMENT_CARRIED_OVER: _VISIT | {"amount"},
    K.ANNOUNCEMENT: _COMMON | {"title", "body", "link"},
}


# The kinds about one appointment: a department's own wording applies to them (the
# department is the appointment's). The others (a sign-in code, a ban, a notice) are the
# hospital's alone.
DEPARTMENT_KINDS: Final[tuple[MessageKind, ...]] = tuple(
    kind for kind in MessageKind if "department" in PLACEHOLDERS[kind]
)


def check_template_scope(kind: MessageKind, *, for_department: bool) -> None:
    """A department may have its own wording only of a message about an appointment."""
    if for_department and kind not in DEPARTMENT_KINDS:
        raise InvalidTemplate(problem_id="template.not_for_department")


def placeholders(text: str) -> set[str]:
    """The names a template uses; refuses anything but plain `{name}` fields."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise InvalidTemplate(problem_id="template.malformed") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise InvalidTemplate(problem_id="template.malformed")
        names.add(field)
    return names


def check_template(kind: MessageKind, *, subject: str, body: str) -> None:
    if not subject.strip() or not body.strip():
        raise InvalidTemplate(problem_id="template.empty")
    allowed = PLACEHOLDERS[kind]
    unknown = (placeholders(subject) | placeholders(body)) - allowed
    if unknown:
        raise InvalidTemplate(
            problem_id="template.unknown_placeholders",
            names=", ".join(sorted(unknown)),
            allowed=", ".join(sorted(allowed)),
            allowed_names=sorted(allowed),
        )


class _Values(dict[str, str]):
    """Missing values render empty: a stored template never breaks a delivery."""

    def __missing__(self, key: str) -> str:
        return ""


def render(text: str, values: Mapping[str, str]) -> str:
    try:
        return text.format_map(_Values(values))
    except (ValueError, AttributeError, IndexError, KeyError):
        # Only a template that bypassed `check_template` gets here; send it unfilled
        # rather than not at all.
        return text


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def render_message(subject: str, body: str, values: Mapping[str, str]) -> Rendered:
    return Rendered(render(subject, values).strip(), render(body, values).strip())


def preview(kind: MessageKind, *, subject: str, body: str, values: Mapping[str, str]) -> Rendered:
    """What a template would send, filled with (sample) values: checked as saving checks
    it, so a wording that could not be saved cannot be previewed either."""
    check_template(kind, subject=subject, body=body)
    return render_message(subject, body, values)


def redacted(values: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    """The same values with secrets (decrypted `_cipher` fields) hidden, for logs."""
    hidden = set(secrets)
    return {k: ("******" if k in hidden else v) for k, v in values.items()}
