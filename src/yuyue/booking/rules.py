"""Pure booking rules: the appointment state machine and every eligibility check.

Each check is a plain function over values already loaded and an injected `now`; it raises
a :class:`~yuyue.kit.errors.YuyueError` subclass with a stable code. No I/O here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from yuyue.booking.states import ACTIVE_STATUSES, AppointmentStatus, CancelReason, RefundShown
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.kit.localtime import age_on, format_local, local_instant
from yuyue.scheduling.enums import Channel, SessionStatus

S = AppointmentStatus


# --- errors -------------------------------------------------------------------------------


class SoldOut(YuyueError):
    code = "sold_out"
    status = 409

    def __init__(self, *, alternatives: Sequence[dict[str, Any]] = (), **values: Any) -> None:
        super().__init__(**values)
        self.alternatives = list(alternatives)

    def extensions(self) -> dict[str, Any]:
        return {"alternatives": self.alternatives}


class OutsideReleaseWindow(YuyueError):
    code = "outside_release_window"
    status = 409

    def extensions(self) -> dict[str, Any]:
        return {"opens_at": self.values["opens_at"]}


class BookingClosed(YuyueError):
    code = "booking_closed"
    status = 409

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        values = self.sentence_values(locale)
        closed = i18n.translate("error.booking_closed", locale, **values)
        if "reopens_local" not in values:
            return closed
        return closed + i18n.translate("booking_reopens", locale, **values)

    def extensions(self) -> dict[str, Any]:
        return {"reopens_at": self.values["reopens_at"]} if "reopens_at" in self.values else {}


class SessionStopped(YuyueError):
    code = "session_stopped"
    status = 409


class AgeNotAllowed(YuyueError):
    code = "age_not_allowed"
    status = 409


class SexNotAllowed(YuyueError):
    code = "sex_not_allowed"
    status = 409

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        allowed = i18n.translate(f"sex.{self.values['allowed_code']}", locale)
        return i18n.translate(
            "error.sex_not_allowed", locale, department=self.values["department"], allowed=allowed
        )


class AlreadyBooked(YuyueError):
    code = "already_booked"
    status = 409


class LimitExceeded(YuyueError):
    code = "limit_exceeded"
    status = 409

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        rule = i18n.translate(
            f"limit.{self.values['limit']}", locale, maximum=self.values["maximum"]
        )
        return i18n.translate("error.limit_exceeded", locale, rule=rule)

    def extensions(self) -> dict[str, Any]:
        return {"limit": self.values["limit"], "maximum": self.values["maximum"]}


class Blacklisted(YuyueError):
    code = "blacklisted"
    status = 403
    dated = True

    def extensions(self) -> dict[str, Any]:
        return {"until": self.values["until"]}


class CancellationClosed(YuyueError):
    code = "cancellation_closed"
    status = 409


class HoldExpired(YuyueError):
    code = "hold_expired"
    status = 409


class InvalidTransition(YuyueError):
    code = "invalid_state"
    status = 409


class PaymentMismatch(YuyueError):
    code = "payment_mismatch"
    status = 409


class PlaceGone(YuyueError):
    """A payment arrived after its hold expired and the pool has no free place left."""

    code = "place_gone"
    status = 409


class ApprovalRequired(YuyueError):
    """A staff change to a confirmed booking that only a supervisor's approval can make."""

    code = "approval_required"
    status = 409

    def extensions(self) -> dict[str, Any]:
        return {"change": self.values["change"]}


class RequestPending(YuyueError):
    code = "request_pending"
    status = 409


class OwnRequest(YuyueError):
    """Four eyes: the one who asked for a change does not approve it."""

    code = "own_request"
    status = 403


class SubstituteUnsuitable(YuyueError):
    """The session named to take over a stopped clinic's patients cannot: the move keeps
    the day, the department, the registration level and the fee the patients booked."""

    code = "substitute_unsuitable"
    status = 409

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        why = i18n.translate(f"substitute.{self.values['why']}", locale)
        return i18n.translate("error.substitute_unsuitable", locale, why=why)

    def extensions(self) -> dict[str, Any]:
        return {"why": self.values["why"]}


i18n.register(
    {
        "title.sold_out": ("号源已约满", "Sold out"),
        "error.sold_out": (
            "该时段的号源已约满，可选择下方推荐的其他时段或医生。",
            "No places are left for this session; see the suggested alternatives.",
        ),
        "title.outside_release_window": ("尚未放号", "Not yet released"),
        "error.outside_release_window": (
            "该出诊尚未开放预约，将于 {opens_local} 放号。",
            "Booking for this session opens at {opens_local}.",
        ),
        "title.booking_closed": ("预约已截止", "Booking closed"),
        "error.booking_closed": (
            "该出诊的预约已截止（截止时间 {closed_local}）。",
            "Booking for this session closed at {closed_local}.",
        ),
        "booking_reopens": (
            "当日挂号将于 {reopens_local} 开放。",
            " Same-day registration opens at {reopens_local}.",
        ),
        "title.session_stopped": ("已停诊", "Clinic stopped"),
        "error.session_stopped": (
            "该出诊已停诊，请选择其他医生或日期。",
            "This clinic session has been stopped; please choose another doctor or day.",
        ),
        "title.age_not_allowed": ("年龄不符", "Age not allowed"),
        "error.age_not_allowed": (
            "{department}接诊 {range} 的患者，就诊人就诊时 {age} 岁，不能预约。",
            "{department} sees patients aged {range}; this patient will be {age}.",
        ),
        "title.sex_not_allowed": ("性别不符", "Sex not allowed"),
        "error.sex_not_allowed": (
            "{department}仅接诊{allowed}患者，不能为该就诊人预约。",
            "{department} only sees {allowed} patients.",
        ),
        "sex.F": ("女性", "female"),
        "sex.M": ("男性", "male"),
        "title.already_booked": ("重复预约", "Already booked"),
        "error.already_booked": (
            "该就诊人已预约本次出诊，无需重复预约。",
            "This patient already has a booking for this session.",
        ),
        "title.limit_exceeded": ("超出预约限制", "Booking limit reached"),
        "error.limit_exceeded": ("已达到预约上限：{rule}。", "Booking limit reached: {rule}."),
        "limit.per_doctor_per_day": (
            "同一就诊人同一医生每天最多 {maximum} 个",
            "at most {maximum} per doctor per day",
        ),
        "limit.per_department_per_day": (
            "同一就诊人同一科室每天最多 {maximum} 个",
            "at most {maximum} per department per day",
        ),
        "limit.per_day": ("同一就诊人每天最多 {maximum} 个", "at most {maximum} per day"),
        "limit.per_7_days": (
            "同一就诊人 7 天内最多预约 {maximum} 次",
            "at most {maximum} bookings made within 7 days",
        ),
        "limit.per_90_days": (
            "同一就诊人 90 天内最多预约 {maximum} 次",
            "at most {maximum} bookings made within 90 days",
        ),
        "limit.active": (
            "同一就诊人最多同时持有 {maximum} 个未就诊的预约",
            "at most {maximum} upcoming bookings at a time",
        ),
        "limit.account_patients": (
            "一个账号最多添加 {maximum} 位就诊人",
            "at most {maximum} patients per account",
        ),
        "title.blacklisted": ("暂停预约", "Booking suspended"),
        "error.blacklisted": (
            "该就诊人因{reason}，{until_local} 前不能通过自助渠道预约，"
            "可到医院窗口挂号或提出申诉。",
            "Self-service booking is suspended for this patient until {until_local} ({reason}); "
            "registration at the hospital window is still possible, and you may appeal.",
        ),
        "title.cancellation_closed": ("已过退号时间", "Cancellation closed"),
        "error.cancellation_closed": (
            "已超过退号截止时间（{deadline_local}），不能在线取消，请联系医院窗口。",
            "The cancellation deadline ({deadline_local}) has passed; please contact the hospital.",
        ),
        "title.hold_expired": ("锁号已过期", "Hold expired"),
        "error.hold_expired": (
            "锁号已超时失效，号源已释放，请重新预约。",
            "The hold expired and the place was released; please book again.",
        ),
        "title.place_gone": ("号源已被占用", "Place gone"),
        "error.place_gone": (
            "支付到账时锁号已过期且号源已无空余，所付费用将原路退回。",
            "The payment arrived after the hold expired and no place is left; "
            "the fee will be refunded.",
        ),
        "title.approval_required": ("需要主管审批", "Approval required"),
        "error.approval_required": (
            "已确认预约的这项更改需要主管审批，请提交更改申请。",
            "This change to a confirmed booking needs a supervisor's approval; "
            "submit a change request.",
        ),
        "title.request_pending": ("已有待审批的申请", "A request is pending"),
        "error.request_pending": (
            "该预约已有一条待审批的更改申请，请等待审批结果或撤回后再提交。",
            "This booking already has a change request waiting for approval.",
        ),
        "title.own_request": ("不能审批自己的申请", "Your own request"),
        "error.own_request": (
            "不能审批自己提交的更改申请，请由另一位主管审批。",
            "You cannot decide a change you asked for; another supervisor must.",
        ),
        "title.substitute_unsuitable": ("替诊出诊不合适", "Unsuitable substitute"),
        "error.substitute_unsuitable": (
            "不能由该出诊替诊：{why}",
            "That session cannot take over the stopped clinic: {why}",
        ),
        "substitute.same_session": ("替诊出诊不能是停诊的出诊本身。", "it is the stopped session."),
        "substitute.other_day": ("替诊须在同一天。", "it is on another day."),
        "substitute.other_department": ("替诊须在同一科室。", "it is in another department."),
        "substitute.other_level": ("替诊医生须为同一挂号级别。", "its registration level differs."),
        "substitute.other_fee": ("替诊出诊的挂号费不同。", "its fee differs."),
        "substitute.not_open": ("替诊出诊未开放或已停诊。", "it is not open."),
        "title.payment_mismatch": ("支付金额不符", "Payment mismatch"),
        "error.payment_mismatch": (
            "支付金额 {paid_fen} 分与应付 {fee_fen} 分不一致。",
            "The amount paid ({paid_fen} fen) differs from the fee ({fee_fen} fen).",
        ),
    }
)


# --- state machine -----------------------------------------------------------------------

TRANSITIONS: dict[tuple[AppointmentStatus, str], AppointmentStatus] = {
    (S.HELD, "confirm_payment"): S.BOOKED,
    # A free place offered from the waitlist is held until the waiter accepts it.
    (S.HELD, "accept"): S.BOOKED,
    (S.HELD, "expire"): S.EXPIRED,
    # A payment that arrives after the sweep, while the pool still has a free place.
    (S.EXPIRED, "late_payment"): S.BOOKED,
    (S.HELD, "cancel"): S.CANCELLED,
    (S.BOOKED, "cancel"): S.CANCELLED,
    (S.BOOKED, "check_in"): S.CHECKED_IN,
    (S.BOOKED, "mark_no_show"): S.NO_SHOW,
    (S.CHECKED_IN, "complete"): S.COMPLETED,
}


def transition(status: AppointmentStatus, action: str) -> AppointmentStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(state=status.value, action=action) from None


def is_active(status: AppointmentStatus) -> bool:
    return status in ACTIVE_STATUSES


def initial_status(fee_fen: int) -> AppointmentStatus:
    """A free level books at once; a fee leaves a hold until payment arrives."""
    return S.BOOKED if fee_fen == 0 else S.HELD


# --- facts the checks need ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    release_days_ahead: int = 7
    release_time: time = time(8, 0)
    advance_cutoff_time: time = time(16, 0)
    same_day_booking: bool = True
    same_day_open_time: time = time(7, 0)
    same_day_cutoff_minutes: int = 60
    cancel_days_before: int = 1
    cancel_deadline_time: time = time(15, 0)
    hold_minutes: int = 15
    limit_per_doctor_per_day: int = 1
    limit_per_department_per_day: int = 1
    limit_per_day: int = 2
    limit_per_7_days: int = 3
    limit_per_90_days: int = 5
    limit_active: int = 3
    account_patients_max: int = 5
    waitlist_enabled: bool = True
    # The waitlist closes this long before the session starts; places returned later go
    # back to the pool for anyone to book.
    waitlist_closes_minutes: int = 120
    # How long a waiter has to take a place offered from the waitlist.
    waitlist_offer_minutes: int = 30
    # Sessions one patient may wait for at a time.
    waitlist_max_active: int = 3
    # When the day's unused reserved places go to on-site registration (None: never).
    reserved_release_time: time | None = time(7, 0)


@dataclass(frozen=True, slots=True)
class SessionFacts:
    id: uuid.UUID
    date: date
    start_time: time
    end_time: time
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    status: SessionStatus
    timezone: str


@dataclass(frozen=True, slots=True)
class BookingFacts:
    """One of the patient's existing appointments."""

    id: uuid.UUID
    session_id: uuid.UUID
    visit_date: date
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    status: AppointmentStatus
    created_at: datetime
    cancel_reason: str | None


@dataclass(frozen=True, slots=True)
class BookingWindow:
    opens_at: datetime
    advance_closes_at: datetime
    same_day_opens_at: datetime | None
    closes_at: datetime


def booking_window(policy: Policy, session: SessionFacts) -> BookingWindow:
    """When a session can be booked from a remote channel.

    Released `release_days_ahead` days before at `release_time`; advance booking closes the
    day before at `advance_cutoff_time`; if same-day booking is on, it reopens on the day at
    `same_day_open_time` until `same_day_cutoff_minutes` before the session ends.
    """
    tz = session.timezone
    opens_at = local_instant(
        session.date - timedelta(days=policy.release_days_ahead), policy.release_time, tz
    )
    advance_closes = local_instant(session.date - timedelta(days=1), policy.advance_cutoff_time, tz)
    session_end = local_instant(session.date, session.end_time, tz)
    closes_at = session_end - timedelta(minutes=policy.same_day_cutoff_minutes)
    same_day_opens: datetime | None = None
    if policy.same_day_booking:
        same_day_opens = max(local_instant(session.date, policy.same_day_open_time, tz), opens_at)
        if same_day_opens >= closes_at:
            # Opening after the cut-off would promise a window that never comes.
            same_day_opens = None
    if same_day_opens is None:
        closes_at = min(advance_closes, closes_at)
    advance_closes = max(min(advance_closes, closes_at), opens_at)
    return BookingWindow(opens_at, advance_closes, same_day_opens, closes_at)


class WindowState(StrEnum):
    """Where `now` falls in a session's booking window, for one channel."""

    OPEN = "open"
    # Not released yet: opens at the release.
    NOT_RELEASED = "not_released"
    # Advance booking is over and same-day registration comes later (16:00 → 07:00).
    SAME_DAY_LATER = "same_day_later"
    # Closed for good (past the cut-off, or the session is over).
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    state: WindowState
    # When booking (next) opens: the release, or the same-day opening.
    opens_at: datetime | None
    # The close a refusal names.
    closed_at: datetime | None
    # The next instant at which the verdict may change (None: it never will), so an answer
    # built on it can be kept exactly that long.
    changes_at: datetime | None


def window_verdict(
    policy: Policy, session: SessionFacts, *, channel: Channel, now: datetime
) -> WindowVerdict:
    """The booking window's decision for `channel` at `now`, without raising: the one
    place the window's rules are written, for `check_window` and `bookability` alike."""
    window = booking_window(policy, session)
    if now < window.opens_at:
        return WindowVerdict(WindowState.NOT_RELEASED, window.opens_at, None, window.opens_at)
    session_end = local_instant(session.date, session.end_time, session.timezone)
    if channel is Channel.WINDOW:
        # Registrars serve patients standing in front of them until the clinic ends.
        if now >= session_end:
            return WindowVerdict(WindowState.CLOSED, None, session_end, None)
        return WindowVerdict(WindowState.OPEN, None, None, session_end)
    if now < window.advance_closes_at:
        return WindowVerdict(WindowState.OPEN, None, None, window.advance_closes_at)
    reopens = window.same_day_opens_at
    if reopens is not None and reopens <= now < window.closes_at:
        return WindowVerdict(WindowState.OPEN, None, None, window.closes_at)
    if reopens is not None and now < reopens:
        # Released long ago, advance booking is over, same-day registration comes later.
        return WindowVerdict(WindowState.SAME_DAY_LATER, reopens, window.advance_closes_at, reopens)
    closed = window.closes_at if now >= window.closes_at else window.advance_closes_at
    return WindowVerdict(WindowState.CLOSED, None, closed, None)


def check_window(policy: Policy, session: SessionFacts, *, channel: Channel, now: datetime) -> None:
    verdict = window_verdict(policy, session, channel=channel, now=now)
    tz = session.timezone
    if verdict.state is WindowState.OPEN:
        return
    if verdict.state is WindowState.NOT_RELEASED:
        assert verdict.opens_at is not None
        raise OutsideReleaseWindow(
            opens_at=verdict.opens_at.isoformat(), opens_local=format_local(verdict.opens_at, tz)
        )
    assert verdict.closed_at is not None
    if verdict.state is WindowState.SAME_DAY_LATER:
        assert verdict.opens_at is not None
        raise BookingClosed(
            closed_local=format_local(verdict.closed_at, tz),
            reopens_at=verdict.opens_at.isoformat(),
            reopens_local=format_local(verdict.opens_at, tz),
        )
    raise BookingClosed(closed_local=format_local(verdict.closed_at, tz))


class BookableState(StrEnum):
    """Why a session can or cannot be booked by a channel at a moment."""

    OPEN = "open"
    NOT_RELEASED = "not_released"
    SAME_DAY_LATER = "same_day_later"
    FULL = "full"
    CLOSED = "closed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Bookability:
    state: BookableState
    # When the channel can next book it, if not now; None when it cannot now and no
    # instant is known at which it will (stopped, over, or no place left for the channel).
    opens_at: datetime | None
    # The next instant at which this answer may change by the clock alone (places taken
    # and returned change it too); None when only places can change it.
    changes_at: datetime | None

    @property
    def bookable_now(self) -> bool:
        return self.state is BookableState.OPEN

    def for_places(self, places: int) -> Bookability:
        """The answer for a part of the places this one was computed with (one slot of the
        session): equal to `bookability(..., places=places)` whenever `places` is at most
        the number given then, without working out the window again."""
        if places > 0 or self.state in (
            BookableState.STOPPED,
            BookableState.CLOSED,
            BookableState.FULL,
        ):
            return self
        return Bookability(BookableState.FULL, None, self.changes_at)


def bookability(
    policy: Policy, session: SessionFacts, *, channel: Channel, now: datetime, places: int
) -> Bookability:
    """Whether `channel` can book the session at `now`, and if not, when it next can.

    The same checks, in the same order, as booking: a stopped session first, then the
    window (`window_verdict`, the very function `check_window` raises from), then whether
    the channel's pools have a place left (`places`).
    """
    if session.status is not SessionStatus.OPEN:
        return Bookability(BookableState.STOPPED, None, None)
    verdict = window_verdict(policy, session, channel=channel, now=now)
    if verdict.state is WindowState.CLOSED:
        return Bookability(BookableState.CLOSED, None, None)
    if places <= 0:
        return Bookability(BookableState.FULL, None, verdict.changes_at)
    if verdict.state is WindowState.OPEN:
        return Bookability(BookableState.OPEN, None, verdict.changes_at)
    return Bookability(BookableState(verdict.state.value), verdict.opens_at, verdict.changes_at)


def check_session_open(session: SessionFacts) -> None:
    if session.status is not SessionStatus.OPEN:
        raise SessionStopped()


def check_demographics(
    *,
    department_name: str,
    min_age: int | None,
    max_age: int | None,
    sex_restriction: str | None,
    birth_date: date,
    sex: str,
    visit_date: date,
) -> None:
    age = age_on(birth_date, visit_date)
    if (min_age is not None and age < min_age) or (max_age is not None and age > max_age):
        low = "0" if min_age is None else str(min_age)
        span = f"{low}–{max_age}" if max_age is not None else f"≥{low}"
        raise AgeNotAllowed(department=department_name, range=span, age=age)
    if sex_restriction is not None and sex != sex_restriction:
        raise SexNotAllowed(department=department_name, allowed_code=sex_restriction)


@dataclass(frozen=True, slots=True)
class BlacklistFacts:
    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None
    reason: str


def check_not_blacklisted(
    entries: Iterable[BlacklistFacts], *, channel: Channel, now: datetime, tz: str
) -> None:
    """A ban stops self-service booking only; the window still registers the patient."""
    if channel is Channel.WINDOW:
        return
    current = [e for e in entries if e.lifted_at is None and e.starts_at <= now < e.ends_at]
    if current:
        entry = max(current, key=lambda e: e.ends_at)
        raise Blacklisted(
            reason=entry.reason,
            until=entry.ends_at.isoformat(),
            until_local=format_local(entry.ends_at, tz),
        )


# Cancellations the patient did not choose, and waitlist offers never taken, do not count
# against booking-frequency limits.
_NOT_COUNTED = {
    CancelReason.STOP_CLINIC.value,
    CancelReason.RESCHEDULED.value,
    CancelReason.WAITLIST_OFFER.value,
}


def check_limits(
    policy: Policy,
    session: SessionFacts,
    existing: Iterable[BookingFacts],
    *,
    now: datetime,
    today: date,
    replacing: uuid.UUID | None = None,
) -> None:
    """Per-patient limits across every channel (one inventory, no channel islands).

    Per-day limits count active bookings on the visit date; the 7- and 90-day limits count
    bookings *made* in that trailing window, including ones the patient later cancelled or
    let expire, which is what stops book-and-release scalping.
    `replacing` is the appointment a reschedule gives up: it never counts against itself.
    """
    rows = [b for b in existing if b.id != replacing]
    active = [b for b in rows if is_active(b.status)]
    if any(b.session_id == session.id for b in active):
        raise AlreadyBooked()
    same_day = [b for b in active if b.visit_date == session.date]
    if session.doctor_id is not None:
        count = sum(1 for b in same_day if b.doctor_id == session.doctor_id)
        _limit(count, policy.limit_per_doctor_per_day, "per_doctor_per_day")
    _limit(
        sum(1 for b in same_day if b.department_id == session.department_id),
        policy.limit_per_department_per_day,
        "per_department_per_day",
    )
    _limit(len(same_day), policy.limit_per_day, "per_day")
    counted = [b for b in rows if b.cancel_reason not in _NOT_COUNTED]
    _limit(
        sum(1 for b in counted if b.created_at > now - timedelta(days=7)),
        policy.limit_per_7_days,
        "per_7_days",
    )
    _limit(
        sum(1 for b in counted if b.created_at > now - timedelta(days=90)),
        policy.limit_per_90_days,
        "per_90_days",
    )
    _limit(sum(1 for b in active if b.visit_date >= today), policy.limit_active, "active")


def _limit(count: int, maximum: int, name: str) -> None:
    if count >= maximum:
        raise LimitExceeded(limit=name, maximum=maximum)


def cancellation_deadline(policy: Policy, session: SessionFacts) -> datetime:
    return local_instant(
        session.date - timedelta(days=policy.cancel_days_before),
        policy.cancel_deadline_time,
        session.timezone,
    )


def check_cancellable(
    policy: Policy,
    session: SessionFacts,
    status: AppointmentStatus,
    *,
    now: datetime,
    by_staff: bool,
    approved: bool = False,
) -> AppointmentStatus:
    """A hold can always be released; a booking only until the deadline. After it, staff
    ask a supervisor (a change request) and the approved request cancels it (`approved`);
    a patient is told the deadline has passed."""
    new_status = transition(status, "cancel")
    if status is S.BOOKED and not approved:
        deadline = cancellation_deadline(policy, session)
        if now >= deadline:
            if by_staff:
                raise ApprovalRequired(change=ChangeKind.CANCEL_LATE.value)
            raise CancellationClosed(
                deadline=deadline.isoformat(),
                deadline_local=format_local(deadline, session.timezone),
            )
    return new_status


class PaymentPath(StrEnum):
    """How a payment that arrives becomes a booking."""

    HELD = "held"  # the hold still has its place (even past its end, before the sweep)
    RECLAIM = "reclaim"  # the hold expired: take a free place of the same pool again


def payment_path(status: AppointmentStatus, *, fee_fen: int, paid_fen: int) -> PaymentPath:
    """The late-payment rule. A patient who paid must not lose the booking to a sweep that
    happened to run first: a hold past its end still holds its place until the sweep gives
    it back, so it is booked; an expired hold is booked again if its pool has a free place
    (the caller claims it; `PlaceGone` when none is), and the money is refunded otherwise.
    Any other state cannot take a payment. The amount must be the fee, to the fen."""
    if status is S.HELD:
        path = PaymentPath.HELD
    elif status is S.EXPIRED:
        path = PaymentPath.RECLAIM
    else:
        raise InvalidTransition(state=status.value, action="confirm_payment")
    if paid_fen != fee_fen:
        raise PaymentMismatch(paid_fen=paid_fen, fee_fen=fee_fen)
    return path


def payment_follows(
    status: AppointmentStatus, *, paid_fen: int | None, refund_state: str, new_fee_fen: int
) -> bool:
    """A reschedule carries the payment over when the booking was paid, nothing of it is on
    its way back, and the new level costs exactly what was paid; otherwise the old payment
    is refunded and the new appointment is held for its own payment (if it has a fee)."""
    return (
        status is S.BOOKED
        and paid_fen is not None
        and paid_fen > 0
        and refund_state == RefundShown.NONE.value
        and new_fee_fen == paid_fen
    )


def payment_state_shown(refund_state: str) -> str:
    """What an appointment's `payment.state` reads: `paid` until a refund starts, then
    `refunding` (online and on its way, or waiting at the window), `refunded`, or
    `refund_failed` (the patient is sent to the window), as the payment order reads."""
    return {
        RefundShown.NONE.value: "paid",
        RefundShown.PENDING.value: "refunding",
        RefundShown.AT_WINDOW.value: "refunding",
        RefundShown.REFUNDED.value: "refunded",
        RefundShown.FAILED.value: "refund_failed",
    }.get(refund_state, "paid")


def lowest_free_number(first_number: int, capacity: int, used: Iterable[int]) -> int:
    """The pool's lowest sequence number not held by an active appointment."""
    taken = set(used)
    for number in range(first_number, first_number + capacity):
        if number not in taken:
            return number
    raise AssertionError("a claimed place always has a free number")


# --- stop-clinic with a substitute (替诊) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubstituteFacts:
    """What decides whether one session may take over another's patients."""

    id: uuid.UUID
    date: date
    department_id: uuid.UUID
    level_id: uuid.UUID
    fee_fen: int
    status: SessionStatus


def check_substitute(stopped: SubstituteFacts, substitute: SubstituteFacts) -> None:
    """A substitute sees the stopped clinic's patients on the same day, in the same
    department, at the same registration level and fee, so nothing they booked or paid
    changes but the doctor (and, where it must, the time and number)."""
    why = (
        "same_session"
        if substitute.id == stopped.id
        else "other_day"
        if substitute.date != stopped.date
        else "other_department"
        if substitute.department_id != stopped.department_id
        else "other_level"
        if substitute.level_id != stopped.level_id
        else "other_fee"
        if substitute.fee_fen != stopped.fee_fen
        else "not_open"
        if substitute.status != SessionStatus.OPEN
        else None
    )
    if why is not None:
        raise SubstituteUnsuitable(why=why)


@dataclass(frozen=True, slots=True)
class SubstitutePool:
    """One pool row of the substitute session, as a moved booking chooses among them."""

    id: uuid.UUID
    pool: str
    slot_start: time
    first_number: int
    capacity: int
    free: int

    def holds_number(self, number: int) -> bool:
        return self.first_number <= number < self.first_number + self.capacity


def substitute_preference(
    pools: Sequence[SubstitutePool], *, slot_start: time, number: int, pool: str
) -> list[SubstitutePool]:
    """The order in which a moved booking tries the substitute's pools with room: its own
    number at its own time, then its own time (its own channel's pool first), then the
    nearest later time, then the nearest earlier one. A patient who cannot keep the time
    is better served a little later than earlier: they may not have arrived yet."""
    wanted = slot_start.hour * 60 + slot_start.minute

    def rank(candidate: SubstitutePool) -> tuple[int, int, int]:
        start = candidate.slot_start.hour * 60 + candidate.slot_start.minute
        other_pool = int(candidate.pool != pool)
        if start == wanted:
            return (0 if candidate.holds_number(number) else 1 + other_pool, 0, 0)
        if start > wanted:
            return (3, start - wanted, other_pool)
        return (4, wanted - start, other_pool)

    return sorted((p for p in pools if p.free > 0), key=rank)


def kept_number(candidate: SubstitutePool, number: int, used: Iterable[int]) -> int:
    """The moved booking's number in its new pool: its old one when that pool has it free,
    else the pool's lowest free number."""
    taken = set(used)
    if candidate.holds_number(number) and number not in taken:
        return number
    return lowest_free_number(candidate.first_number, candidate.capacity, taken)


def movable_to_substitute(
    status: AppointmentStatus, *, fee_fen: int, paid_fen: int | None, refund_state: str
) -> bool:
    """Which bookings of a stopped clinic its substitute takes over: held ones (they pay
    the new booking, the same fee) and booked ones whose payment can follow them whole.
    A patient already checked in is seen to at the desk; a booking whose refund has begun
    is cancelled like any other of the clinic."""
    if status is S.HELD:
        return True
    if status is not S.BOOKED:
        return False
    if fee_fen == 0 and not paid_fen:
        return True
    return payment_follows(
        status, paid_fen=paid_fen, refund_state=refund_state, new_fee_fen=fee_fen
    )


# --- approvals (审批) -------------------------------------------------------------------------


class ChangeKind(StrEnum):
    """The staff changes to a confirmed booking that wait for a supervisor."""

    CANCEL_LATE = "cancel_late"  # cancel after the patients' deadline (退号)
    MOVE = "move"  # to another session or slot
    CHANGE_PATIENT = "change_patient"  # the booking belongs to another patient


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


def staff_change_needs_approval(status: AppointmentStatus) -> bool:
    """A staff move or change of patient of a confirmed booking waits for a supervisor; a
    hold is not confirmed yet and changes at once."""
    return status is S.BOOKED


def check_request_state(state: RequestState, action: str) -> None:
    """Only a pending request is decided or withdrawn, once."""
    if state is not RequestState.PENDING:
        raise InvalidTransition(state=state.value, action=action)


def check_four_eyes(*, requested_by_id: str, deciding_id: str) -> None:
    if requested_by_id == deciding_id:
        raise OwnRequest()


def check_request_reason(reason: str) -> str:
    """The reason staff give: what the supervisor reads and the audit keeps."""
    text = " ".join(reason.split())
    if not 2 <= len(text) <= 500:
        raise InvalidReason()
    return text


class InvalidReason(YuyueError):
    code = "validation_error"
    status = 422

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        return i18n.translate("error.request_reason", locale)


i18n.register(
    {
        "error.request_reason": (
            "请填写更改原因（2–500 字）。",
            "Give the reason for the change (2 to 500 characters).",
        ),
    }
)
