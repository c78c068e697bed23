"""Pure visit-day rules: the check-in window, voucher checks, the fair queue and the estimate.

Plain functions over values already loaded and an injected ``now``; they raise
:class:`~yuyue.kit.errors.YuyueError` subclasses with stable codes. No I/O here.

The queue (候诊) of a clinic session is a *line*: the visits waiting to be called, in order.
Each visit carries an ordering key — (priority rank, batch, joined the line at, walk-in,
queue number) — and joins the line after the last visit whose key is not greater than its own.
So, without manual moves, the line is sorted by: priority classes first (highest class
first), then by batch (a batch is one or more consecutive time slots), then by when the
patient checked in. A patient who arrives after their slot (plus the grace), and a patient
who was skipped (过号), join with the batch currently being called: the end of the current
batch, not the end of the day. A nurse's manual move puts a visit directly before or after
another; later arrivals still never jump ahead of a visit whose key is smaller than theirs.
"""

from __future__ import annotations

import re
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from yuyue.booking.states import AppointmentStatus
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.kit.localtime import age_on, format_local, local_instant
from yuyue.visits.states import DEFAULT_PRIORITY_ORDER, PriorityClass, VisitStatus

S = AppointmentStatus
V = VisitStatus


# --- errors -------------------------------------------------------------------------------


class VoucherInvalid(YuyueError):
    code = "voucher_invalid"
    status = 422


class VoucherExpired(YuyueError):
    code = "voucher_expired"
    status = 422


class VoucherOtherDay(YuyueError):
    code = "voucher_other_day"
    status = 409


class VoucherUsed(YuyueError):
    code = "voucher_used"
    status = 409


class AppointmentCancelled(YuyueError):
    code = "appointment_cancelled"
    status = 409


class AppointmentUnpaid(YuyueError):
    code = "appointment_unpaid"
    status = 409


class CheckInTooEarly(YuyueError):
    code = "check_in_too_early"
    status = 409

    def extensions(self) -> dict[str, str]:
        return {"opens_at": str(self.values["opens_at"])}


class CheckInClosed(YuyueError):
    code = "check_in_closed"
    status = 409


class TooManyAttempts(YuyueError):
    code = "too_many_attempts"
    status = 429

    def extensions(self) -> dict[str, int]:
        return {"retry_after": int(self.values["retry_after"])}


class CodeLocked(YuyueError):
    code = "code_locked"
    status = 429

    def extensions(self) -> dict[str, int]:
        return {"retry_after": int(self.values["retry_after"])}


class LookupInUrl(YuyueError):
    """A desk look-up by identity number, phone or voucher token sent in a URL: addresses end
    up in access logs, proxies and browser history, so only the printed 8-digit short code
    may travel there; the rest goes in the body of `POST /api/v1/desk/lookup`."""

    code = "lookup_in_url"
    status = 422


def may_travel_in_url(query: str) -> bool:
    """Whether a desk look-up may be sent in a URL: only an 8-digit short code (printed on
    the slip, naming no one by itself). Spaces and dashes people type are ignored."""
    return re.fullmatch(r"\d{8}", re.sub(r"[\s\-]", "", query)) is not None


class QueueEmpty(YuyueError):
    code = "queue_empty"
    status = 409


class PriorityNotEnabled(YuyueError):
    code = "priority_not_enabled"
    status = 409


class InvalidMove(YuyueError):
    code = "invalid_move"
    status = 409


class InvalidVisitTransition(YuyueError):
    code = "invalid_visit_state"
    status = 409

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        state = i18n.translate(f"visit_status.{self.values['state']}", locale)
        action = i18n.translate(f"visit_action.{self.values['action']}", locale)
        return i18n.translate("error.invalid_visit_state", locale, state=state, action=action)


i18n.register(
    {
        "title.voucher_invalid": ("凭证无效", "Invalid voucher"),
        "error.voucher_invalid": (
            "无法识别该预约凭证，请核对后重试，或到分诊台由护士查询。",
            "This voucher was not recognised; check it and retry, or ask at the triage desk.",
        ),
        "title.voucher_expired": ("凭证已过期", "Voucher expired"),
        "error.voucher_expired": (
            "该预约凭证已过期，只能在就诊当天使用。",
            "This voucher has expired; it is only valid on the day of the visit.",
        ),
        "title.voucher_other_day": ("不是今天的预约", "Not today's appointment"),
        "error.voucher_other_day": (
            "该预约的就诊日期是 {visit_date_local}，请在就诊当天报到。",
            "This appointment is for {visit_date_local}; please check in on that day.",
        ),
        "title.voucher_used": ("凭证已使用", "Voucher already used"),
        "error.voucher_used": (
            "该预约已就诊完毕，凭证不能再次使用。",
            "This appointment has already been seen; the voucher cannot be used again.",
        ),
        "title.appointment_cancelled": ("预约已取消", "Appointment cancelled"),
        "error.appointment_cancelled": (
            "该预约已取消，不能报到；如需就诊请重新挂号。",
            "This appointment was cancelled and cannot be checked in; please register again.",
        ),
        "title.appointment_unpaid": ("预约未支付", "Appointment not paid"),
        "error.appointment_unpaid": (
            "该预约尚未支付挂号费，请先完成支付或到窗口缴费。",
            "The fee for this appointment has not been paid; please pay first.",
        ),
        "title.check_in_too_early": ("尚未到报到时间", "Too early to check in"),
        "error.check_in_too_early": (
            "报到时间从 {opens_local} 开始，请稍后再来。",
            "Check-in opens at {opens_local}; please come back then.",
        ),
        "title.check_in_closed": ("报到已结束", "Check-in closed"),
        "error.check_in_closed": (
            "本次出诊已于 {closed_local} 结束，不能再报到，请到分诊台咨询。",
            "This clinic session ended at {closed_local}; check-in is closed. "
            "Please ask at the triage desk.",
        ),
        "title.too_many_attempts": ("尝试次数过多", "Too many attempts"),
        "error.too_many_attempts": (
            "输入错误较多，请 {seconds} 秒后再试，或扫描二维码报到。",
            "Several wrong codes were typed here; try again in {seconds} seconds, "
            "or scan the QR code.",
        ),
        "title.code_locked": ("预约码已暂时锁定", "Code locked for a while"),
        "error.code_locked": (
            "这个预约码的手机尾号输错次数过多，请 {minutes} 分钟后再试，或扫描二维码、"
            "到分诊台报到。",
            "Too many wrong phone digits for this code; try again in {minutes} minutes, "
            "scan the QR code, or check in at the triage desk.",
        ),
        "title.lookup_in_url": ("请勿在网址中查询", "Not in the address"),
        "error.lookup_in_url": (
            "网址中只能查询 8 位预约码；身份证号、手机号和凭证请用 POST /api/v1/desk/lookup "
            "放在请求正文中查询。",
            "Only an 8-digit short code may be looked up in the address; send ID numbers, "
            "phone numbers and voucher tokens in the body of POST /api/v1/desk/lookup.",
        ),
        "title.queue_empty": ("无人候诊", "Nobody waiting"),
        "error.queue_empty": ("当前没有候诊的患者。", "Nobody is waiting in this queue."),
        "title.priority_not_enabled": ("未启用该优先类别", "Priority class not in use"),
        "error.priority_not_enabled": (
            "本院未启用「{priority}」优先。",
            "The priority class '{priority}' is not in use at this hospital.",
        ),
        "title.invalid_move": ("无法调整顺序", "Cannot move"),
        "error.invalid_move": (
            "只能在同一队列的候诊患者之间调整顺序。",
            "A visit can only be moved next to another visit waiting in the same queue.",
        ),
        "title.invalid_visit_state": ("当前状态不允许", "Not allowed in this state"),
        "error.invalid_visit_state": (
            "该患者当前为「{state}」，不能{action}。",
            "This cannot be done ({action}) while the patient is '{state}'.",
        ),
        "visit_status.waiting": ("候诊中", "waiting"),
        "visit_status.called": ("已叫号", "called"),
        "visit_status.in_consultation": ("就诊中", "in consultation"),
        "visit_status.skipped": ("已过号", "skipped"),
        "visit_status.finished": ("已就诊", "finished"),
        "visit_action.call": ("叫号", "call"),
        "visit_action.recall": ("重新叫号", "recall"),
        "visit_action.skip": ("过号", "skip"),
        "visit_action.start": ("开始就诊", "start"),
        "visit_action.finish": ("结束就诊", "finish"),
        "visit_action.mark_return_visit": ("标记回诊", "mark a return visit"),
        "visit_action.move": ("调整顺序", "move"),
        "visit_action.set_priority": ("设置优先", "set a priority"),
    }
)


# --- policy -------------------------------------------------------------------------------

DEFAULT_PRIORITIES: tuple[PriorityClass, ...] = tuple(
    PriorityClass(p) for p in DEFAULT_PRIORITY_ORDER
)


@dataclass(frozen=True, slots=True)
class Policy:
    """Defaults from the requirements: check-in opens 60 minutes before the slot and closes
    when the session ends; a batch is one time slot; late arrivals join the end of the
    batch being called."""

    check_in_minutes_before: int = 60
    late_grace_minutes: int = 0
    batch_slots: int = 1
    elderly_age: int = 70
    # Classes in force, highest first; a class not listed is not available.
    priority_classes: tuple[PriorityClass, ...] = DEFAULT_PRIORITIES
    estimate_min_samples: int = 3
    code_attempts_max: int = 5
    code_lockout_minutes: int = 15
    come_back_ahead: int = 3
    # 0: no "leave home" notice.
    travel_minutes: int = 0


# --- check-in -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckInFacts:
    """What check-in needs to know about one appointment and its session."""

    status: AppointmentStatus
    visit_date: date
    slot_start: time
    session_end: time
    timezone: str


@dataclass(frozen=True, slots=True)
class CheckInWindow:
    opens_at: datetime
    closes_at: datetime


def check_in_window(policy: Policy, facts: CheckInFacts) -> CheckInWindow:
    slot_start = local_instant(facts.visit_date, facts.slot_start, facts.timezone)
    return CheckInWindow(
        opens_at=slot_start - timedelta(minutes=policy.check_in_minutes_before),
        closes_at=local_instant(facts.visit_date, facts.session_end, facts.timezone),
    )


def check_can_check_in(
    policy: Policy, facts: CheckInFacts, *, today: date, now: datetime, walk_in: bool = False
) -> bool:
    """True when the appointment may be checked in now; False when it already is (a second
    scan: harmless, the caller answers with the same ticket). Raises the reason otherwise.

    A walk-in registered at the desk is standing there: the window's opening does not apply."""
    if facts.status is S.CHECKED_IN:
        return False
    if facts.status in (S.CANCELLED, S.EXPIRED):
        raise AppointmentCancelled()
    if facts.status is S.HELD:
        raise AppointmentUnpaid()
    if facts.status is S.COMPLETED:
        raise VoucherUsed()
    if facts.visit_date != today:
        raise VoucherOtherDay(visit_date_local=facts.visit_date.isoformat())
    window = check_in_window(policy, facts)
    if facts.status is S.NO_SHOW or now >= window.closes_at:
        raise CheckInClosed(closed_local=format_local(window.closes_at, facts.timezone))
    if now < window.opens_at and not walk_in:
        raise CheckInTooEarly(
            opens_at=window.opens_at.isoformat(),
            opens_local=format_local(window.opens_at, facts.timezone),
        )
    return True


def voucher_appointment_id(payload: dict[str, str | int], *, hospital_id: uuid.UUID) -> uuid.UUID:
    """The appointment a verified voucher names, if it was issued by this hospital."""
    if str(payload.get("hid")) != str(hospital_id):
        raise VoucherInvalid()
    try:
        return uuid.UUID(str(payload["aid"]))
    except (KeyError, ValueError):
        raise VoucherInvalid() from None


def phone_digits_match(phone_masked: str, last_digits: str) -> bool:
    """The masked phone keeps its last four digits, enough to check what the kiosk typed."""
    digits = last_digits.strip()
    return len(digits) == 4 and digits.isdigit() and phone_masked.endswith(digits)


# A kiosk that has seen many wrong codes answers more slowly, never not at all: one person
# typing wrong codes must not lock the hall's kiosk for everyone behind them.
KIOSK_SLOWDOWN_CAP_SECONDS = 60


def check_attempts(
    policy: Policy,
    *,
    client_failures: Sequence[datetime],
    code_failures: Sequence[datetime],
    now: datetime,
) -> None:
    """Refuses a short code that has had too many wrong phone digits within the lockout
    period (guessing someone's digits), and slows a client with many wrong codes: after
    `code_attempts_max` failures it must wait 1, 2, 4 … seconds (at most a minute) after its
    latest failure. The patient whose code is locked still checks in by scanning the QR code
    or at the triage desk."""
    since = now - timedelta(minutes=policy.code_lockout_minutes)
    recent_code = sorted(at for at in code_failures if at > since)
    if len(recent_code) >= policy.code_attempts_max:
        free_at = recent_code[-policy.code_attempts_max] + timedelta(
            minutes=policy.code_lockout_minutes
        )
        seconds = max(1, int((free_at - now).total_seconds()))
        raise CodeLocked(retry_after=seconds, minutes=max(1, -(-seconds // 60)))
    recent = sorted(at for at in client_failures if at > since)
    beyond = len(recent) - policy.code_attempts_max
    if beyond >= 0:
        wait = min(2**beyond, KIOSK_SLOWDOWN_CAP_SECONDS)
        free_at = recent[-1] + timedelta(seconds=wait)
        if now < free_at:
            seconds = max(1, -(-int((free_at - now).total_seconds() * 1000) // 1000))
            raise TooManyAttempts(retry_after=seconds, seconds=seconds)


def automatic_priority(
    policy: Policy, *, birth_date: date, visit_date: date
) -> PriorityClass | None:
    """Elderly priority is given at check-in when the patient is old enough."""
    if PriorityClass.ELDERLY in policy.priority_classes and (
        age_on(birth_date, visit_date) >= policy.elderly_age
    ):
        return PriorityClass.ELDERLY
    return None


def check_priority(policy: Policy, priority: PriorityClass | None) -> None:
    if priority is not None and priority not in policy.priority_classes:
        raise PriorityNotEnabled(priority=priority.value)


def batch_of(policy: Policy, slot_ordinal: int) -> int:
    return slot_ordinal // max(1, policy.batch_slots)


def is_late(policy: Policy, *, slot_end: datetime, now: datetime) -> bool:
    return now >= slot_end + timedelta(minutes=policy.late_grace_minutes)


def current_batch(called: Iterable[tuple[int, PriorityClass | None]]) -> int | None:
    """The batch being called: the highest batch of a visit called in turn (priority calls
    jump the order and say nothing about it); None before the first call."""
    batches = [batch for batch, priority in called if priority is None]
    return max(batches) if batches else None


def joining_batch(own_batch: int, *, late: bool, being_called: int | None) -> int:
    """A late (or skipped) patient joins the end of the batch being called, never a
    batch earlier than their own."""
    if not late or being_called is None:
        return own_batch
    return max(own_batch, being_called)


# --- queue numbers ------------------------------------------------------------------------


def next_walk_in_number(taken: Iterable[int]) -> int:
    """The next walk-in's number in its session: one more than the highest walk-in number
    given so far, so walk-ins are numbered 1, 2, 3… in the order they registered. The
    caller holds the session's queue lock, and a refused walk-in rolls back whole, so no
    number is given twice or skipped."""
    return max(taken, default=0) + 1


def queue_label(number: int, *, walk_in: bool, locale: str = i18n.DEFAULT_LOCALE) -> str:
    """What a ticket, a screen and a call show: booked patients keep their appointment's
    sequence number (就诊序号); walk-ins are numbered in a series of their own, marked so
    that booked number 3 and walk-in number 3 are never confused (现3 / W3)."""
    return i18n.translate("queue.walk_in_number", locale, n=number) if walk_in else str(number)


i18n.register({"queue.walk_in_number": ("现{n}", "W{n}")})


def on_screen(*, start: time, end: time, now: time, busy: bool, ahead_minutes: int = 60) -> bool:
    """Whether a clinic session has a card on the waiting-room screen: from an hour before
    it starts (when check-in opens by default) until it ends, and after that for as long as
    anyone is still called or waiting. A morning's rooms leave the afternoon's screen."""
    opens = (datetime.combine(date.min, start) - timedelta(minutes=ahead_minutes)).time()
    if start.hour * 60 + start.minute < ahead_minutes:
        opens = time(0, 0)
    return busy or opens <= now < end


# --- the line -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One visit in the line, with the parts of its ordering key."""

    visit_id: uuid.UUID
    batch: int
    queued_at: datetime
    queue_number: int
    priority: PriorityClass | None = None
    # Walk-ins are numbered in their own series (现1, 现2…), so their numbers say nothing
    # against booked ones: among visits that joined at the same instant, booked ones first.
    walk_in: bool = False


def priority_rank(policy: Policy, priority: PriorityClass | None) -> int:
    """0 for the highest class in force; classes not in force and no class rank last."""
    if priority is not None and priority in policy.priority_classes:
        return policy.priority_classes.index(priority)
    return len(policy.priority_classes)


def order_key(policy: Policy, entry: QueueEntry) -> tuple[int, int, datetime, int, int]:
    return (
        priority_rank(policy, entry.priority),
        entry.batch,
        entry.queued_at,
        int(entry.walk_in),
        entry.queue_number,
    )


def join(policy: Policy, line: Sequence[QueueEntry], entry: QueueEntry) -> list[QueueEntry]:
    """The line with `entry` added after the last visit whose key is not greater."""
    rest = [e for e in line if e.visit_id != entry.visit_id]
    key = order_key(policy, entry)
    index = 0
    for i, other in enumerate(rest):
        if order_key(policy, other) <= key:
            index = i + 1
    return [*rest[:index], entry, *rest[index:]]


def order(policy: Policy, entries: Iterable[QueueEntry]) -> list[QueueEntry]:
    """The line the rules alone give (no manual moves): entries joined one by one."""
    line: list[QueueEntry] = []
    for entry in sorted(entries, key=lambda e: order_key(policy, e)):
        line = join(policy, line, entry)
    return line


def leave(line: Sequence[QueueEntry], visit_id: uuid.UUID) -> list[QueueEntry]:
    return [e for e in line if e.visit_id != visit_id]


def move(
    line: Sequence[QueueEntry],
    visit_id: uuid.UUID,
    *,
    before: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
) -> list[QueueEntry]:
    """Puts a visit directly before or after another visit of the same line."""
    if (before is None) == (after is None):
        raise InvalidMove()
    target = before if before is not None else after
    moving = next((e for e in line if e.visit_id == visit_id), None)
    if moving is None or target == visit_id or all(e.visit_id != target for e in line):
        raise InvalidMove()
    rest = leave(line, visit_id)
    index = next(i for i, e in enumerate(rest) if e.visit_id == target)
    if after is not None:
        index += 1
    return [*rest[:index], moving, *rest[index:]]


def requeue(entry: QueueEntry, *, batch: int, at: datetime) -> QueueEntry:
    return replace(entry, batch=batch, queued_at=at)


def people_ahead(line: Sequence[QueueEntry], visit_id: uuid.UUID) -> int | None:
    for index, entry in enumerate(line):
        if entry.visit_id == visit_id:
            return index
    return None


# --- the estimate -------------------------------------------------------------------------


def estimated_wait(
    policy: Policy,
    *,
    ahead: int,
    durations: Sequence[timedelta],
    slot_minutes: int,
    places_per_slot: int,
) -> timedelta:
    """People ahead × the median consultation this doctor finished today; until there are
    enough consultations to trust, the session's pace (slot length / places per slot)."""
    if ahead <= 0:
        return timedelta(0)
    usable = [d for d in durations if d > timedelta(0)]
    if len(usable) >= max(1, policy.estimate_min_samples):
        median = statistics.median(d.total_seconds() for d in usable)
        return timedelta(seconds=median) * ahead
    return timedelta(minutes=slot_minutes) * ahead / max(1, places_per_slot)


def whole_minutes(duration: timedelta) -> int:
    return -(-int(duration.total_seconds()) // 60)


# --- the visit state machine --------------------------------------------------------------

TRANSITIONS: dict[tuple[VisitStatus, str], VisitStatus] = {
    (V.WAITING, "call"): V.CALLED,
    (V.SKIPPED, "call"): V.CALLED,
    (V.SKIPPED, "recall"): V.CALLED,
    (V.CALLED, "recall"): V.CALLED,
    (V.CALLED, "skip"): V.SKIPPED,
    (V.CALLED, "start"): V.IN_CONSULTATION,
    (V.IN_CONSULTATION, "finish"): V.FINISHED,
    (V.IN_CONSULTATION, "mark_return_visit"): V.IN_CONSULTATION,
    (V.FINISHED, "mark_return_visit"): V.FINISHED,
    (V.WAITING, "move"): V.WAITING,
    (V.SKIPPED, "move"): V.SKIPPED,
    (V.WAITING, "set_priority"): V.WAITING,
    (V.SKIPPED, "set_priority"): V.SKIPPED,
}


def visit_transition(status: VisitStatus, action: str) -> VisitStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidVisitTransition(state=status.value, action=action) from None


# --- what the patient's phone says ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientNotice:
    """A sentence for the patient's phone: a message id and its values."""

    key: str
    values: dict[str, str | int]


def patient_notice(
    policy: Policy, *, status: VisitStatus, people_ahead: int | None, room: str
) -> PatientNotice | None:
    """What to tell a checked-in patient beside their place in the line."""
    if status is VisitStatus.CALLED:
        return PatientNotice("visit.called", {"room": room})
    if status is VisitStatus.IN_CONSULTATION:
        return PatientNotice("visit.in_consultation", {})
    if status is VisitStatus.FINISHED:
        return PatientNotice("visit.finished", {})
    if status is VisitStatus.SKIPPED:
        return PatientNotice("visit.skipped", {"room": room})
    if people_ahead is not None and people_ahead <= policy.come_back_ahead:
        return PatientNotice("visit.come_back", {"room": room})
    return None


def running_behind(*, called_slot_start: datetime | None, now: datetime) -> timedelta:
    """How far the doctor runs behind: now minus the start of the slot whose patients are
    being called; nothing when no one has been called or the doctor is ahead."""
    if called_slot_start is None or called_slot_start >= now:
        return timedelta(0)
    return now - called_slot_start


def leave_home_by(policy: Policy, *, slot_start: datetime, behind: timedelta) -> datetime | None:
    """When a booked patient who has not checked in should set off: their slot, pushed back
    by how far the doctor runs behind, less the travel time; None when the notice is off."""
    if policy.travel_minutes <= 0:
        return None
    return slot_start + behind - timedelta(minutes=policy.travel_minutes)
