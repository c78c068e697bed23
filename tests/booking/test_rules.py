"""Pure booking rules: release window, eligibility, limits, cancellation and the state machine.

No database and no fixtures: every check is called with plain values and an injected `now`.
Instants are written in hospital time (Asia/Shanghai, UTC+8, no daylight saving).

Table rows are `case(id, *values)`; the expected outcome of a check is `ALLOWED` (it returned
None), the status it returned, or `(error class, error values)`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from yuyue.booking.rules import (
    TRANSITIONS,
    AgeNotAllowed,
    AlreadyBooked,
    ApprovalRequired,
    Blacklisted,
    BlacklistFacts,
    Bookability,
    BookableState,
    BookingClosed,
    BookingFacts,
    BookingWindow,
    CancellationClosed,
    HoldExpired,
    InvalidTransition,
    LimitExceeded,
    OutsideReleaseWindow,
    PaymentMismatch,
    PaymentPath,
    Policy,
    SessionFacts,
    SessionStopped,
    SexNotAllowed,
    SoldOut,
    bookability,
    booking_window,
    cancellation_deadline,
    check_cancellable,
    check_demographics,
    check_limits,
    check_not_blacklisted,
    check_session_open,
    check_window,
    initial_status,
    is_active,
    lowest_free_number,
    payment_follows,
    payment_path,
    transition,
)
from yuyue.booking.states import AppointmentStatus
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.scheduling.enums import Channel, SessionStatus
from yuyue.scheduling.service import policy_values

S = AppointmentStatus
TZ = "Asia/Shanghai"
SHANGHAI = ZoneInfo(TZ)

# The session most tests book: Monday 2026-11-23, 08:00–12:00 hospital time.
VISIT = date(2026, 11, 23)
SESSION_ID = uuid.UUID("00000000-0000-0000-0000-00000000a001")
DEPARTMENT_A = uuid.UUID("00000000-0000-0000-0000-00000000d00a")
DEPARTMENT_B = uuid.UUID("00000000-0000-0000-0000-00000000d00b")
DEPARTMENT_C = uuid.UUID("00000000-0000-0000-0000-00000000d00c")
DOCTOR_1 = uuid.UUID("00000000-0000-0000-0000-00000000f001")
DOCTOR_2 = uuid.UUID("00000000-0000-0000-0000-00000000f002")

REMOTE_CHANNELS = [c for c in Channel if c is not Channel.WINDOW]
ALLOWED = None
Refusal = tuple[type[YuyueError], dict[str, Any]]


def case(id_: str, *values: object) -> Any:
    return pytest.param(*values, id=id_)


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An instant written in hospital time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_session(
    *,
    day: date = VISIT,
    start: time = time(8, 0),
    end: time = time(12, 0),
    status: SessionStatus = SessionStatus.OPEN,
    department_id: uuid.UUID = DEPARTMENT_A,
    doctor_id: uuid.UUID | None = DOCTOR_1,
) -> SessionFacts:
    return SessionFacts(
        id=SESSION_ID,
        date=day,
        start_time=start,
        end_time=end,
        department_id=department_id,
        doctor_id=doctor_id,
        status=status,
        timezone=TZ,
    )


def outcome(check: Callable[..., object], *args: Any, **kwargs: Any) -> object:
    """What a rule returned, or (error class, error values) when it refused."""
    try:
        return check(*args, **kwargs)
    except YuyueError as error:
        return type(error), error.values


# --- release window ----------------------------------------------------------------------


class TestPolicyDefaults:
    def test_a_hospital_without_a_policy_row_has_the_rules_defaults(self) -> None:
        # The policy table (scheduling) and the rules' value (booking) both carry defaults;
        # the API shows the table's, the booking path applies the rules'.
        assert policy_values(None) == dataclasses.asdict(Policy())


class TestBookingWindow:
    def test_default_policy_releases_seven_days_ahead_and_reopens_on_the_day(self) -> None:
        assert booking_window(Policy(), make_session()) == BookingWindow(
            opens_at=sh(2026, 11, 16, 8, 0),
            advance_closes_at=sh(2026, 11, 22, 16, 0),
            same_day_opens_at=sh(2026, 11, 23, 7, 0),
            closes_at=sh(2026, 11, 23, 11, 0),
        )

    def test_instants_are_utc(self) -> None:
        window = booking_window(Policy(), make_session())

        assert window.opens_at.isoformat() == "2026-11-16T00:00:00+00:00"
        assert window.closes_at.isoformat() == "2026-11-23T03:00:00+00:00"

    def test_without_same_day_booking_everything_closes_the_day_before(self) -> None:
        window = booking_window(Policy(same_day_booking=False), make_session())

        assert window == BookingWindow(
            opens_at=sh(2026, 11, 16, 8, 0),
            advance_closes_at=sh(2026, 11, 22, 16, 0),
            same_day_opens_at=None,
            closes_at=sh(2026, 11, 22, 16, 0),
        )

    def test_hospital_release_time_and_days_ahead_are_honoured(self) -> None:
        policy = Policy(release_time=time(15, 0), release_days_ahead=14)

        window = booking_window(policy, make_session())

        assert window.opens_at == sh(2026, 11, 9, 15, 0)
        assert window.advance_closes_at == sh(2026, 11, 22, 16, 0)

    def test_same_day_cutoff_counts_back_from_the_session_end(self) -> None:
        session = make_session(start=time(13, 30), end=time(17, 30))

        window = booking_window(Policy(same_day_cutoff_minutes=90), session)

        assert window.closes_at == sh(2026, 11, 23, 16, 0)


NOT_YET = (
    OutsideReleaseWindow,
    {"opens_at": "2026-11-16T00:00:00+00:00", "opens_local": "2026-11-16 08:00"},
)
NOT_YET_TODAY = (
    OutsideReleaseWindow,
    {"opens_at": "2026-11-22T23:00:00+00:00", "opens_local": "2026-11-23 07:00"},
)
CLOSED_AT_11 = (BookingClosed, {"closed_local": "2026-11-23 11:00"})
CLOSED_FOR_GOOD_AT_16 = (BookingClosed, {"closed_local": "2026-11-22 16:00"})
CLOSED_AT_16_BEFORE = (
    BookingClosed,
    {
        "closed_local": "2026-11-22 16:00",
        "reopens_at": "2026-11-22T23:00:00+00:00",
        "reopens_local": "2026-11-23 07:00",
    },
)
CLOSED_AT_END = (BookingClosed, {"closed_local": "2026-11-23 12:00"})


class TestRemoteChannelWindowWithDefaultPolicy:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            case("two-weeks-ahead", sh(2026, 11, 9, 8, 0), NOT_YET),
            case("release-day-07:59", sh(2026, 11, 16, 7, 59), NOT_YET),
            case("release-day-07:59:59", sh(2026, 11, 16, 7, 59, 59), NOT_YET),
            case("release-day-08:00:00", sh(2026, 11, 16, 8, 0, 0), ALLOWED),
            case("mid-window", sh(2026, 11, 20, 12, 0), ALLOWED),
            case("day-before-15:59", sh(2026, 11, 22, 15, 59), ALLOWED),
            case("day-before-15:59:59", sh(2026, 11, 22, 15, 59, 59), ALLOWED),
            case("visit-day-00:00", sh(2026, 11, 23, 0, 0), CLOSED_AT_16_BEFORE),
            case("visit-day-06:59", sh(2026, 11, 23, 6, 59), CLOSED_AT_16_BEFORE),
            case("visit-day-07:00", sh(2026, 11, 23, 7, 0), ALLOWED),
            case("visit-day-10:59", sh(2026, 11, 23, 10, 59), ALLOWED),
            case("visit-day-10:59:59", sh(2026, 11, 23, 10, 59, 59), ALLOWED),
            case("visit-day-11:00", sh(2026, 11, 23, 11, 0), CLOSED_AT_11),
            case("session-end", sh(2026, 11, 23, 12, 0), CLOSED_AT_11),
            case("next-day", sh(2026, 11, 24, 9, 0), CLOSED_AT_11),
        ],
    )
    def test_app_follows_release_cutoff_and_same_day_window(
        self, now: datetime, expected: Refusal | None
    ) -> None:
        result = outcome(check_window, Policy(), make_session(), channel=Channel.APP, now=now)

        assert result == expected

    @pytest.mark.parametrize(
        "now",
        [
            case("day-before-16:00", sh(2026, 11, 22, 16, 0)),
            case("day-before-23:59", sh(2026, 11, 22, 23, 59)),
        ],
    )
    def test_advance_booking_closes_at_16_00_the_day_before(self, now: datetime) -> None:
        result = outcome(check_window, Policy(), make_session(), channel=Channel.APP, now=now)

        assert result == CLOSED_AT_16_BEFORE

    @pytest.mark.parametrize("channel", REMOTE_CHANNELS, ids=str)
    def test_every_remote_channel_closes_one_hour_before_the_end(self, channel: Channel) -> None:
        def at(now: datetime) -> object:
            return outcome(check_window, Policy(), make_session(), channel=channel, now=now)

        assert at(sh(2026, 11, 23, 10, 59)) is ALLOWED
        assert at(sh(2026, 11, 23, 11, 0)) == CLOSED_AT_11

    def test_not_yet_released_error_carries_opens_at_and_sentences(self) -> None:
        with pytest.raises(OutsideReleaseWindow) as caught:
            check_window(Policy(), make_session(), channel=Channel.APP, now=sh(2026, 11, 16, 7, 59))

        error = caught.value
        assert error.code == "outside_release_window"
        assert error.status == 409
        assert error.extensions() == {"opens_at": "2026-11-16T00:00:00+00:00"}
        assert error.detail("zh-CN") == "该出诊尚未开放预约，将于 11月16日 周一 08:00 放号。"
        assert error.detail("en") == "Booking for this session opens at Mon 16 Nov 08:00."
        assert error.title("en") == "Not yet released"

    def test_closed_error_names_the_cutoff_in_both_languages(self) -> None:
        with pytest.raises(BookingClosed) as caught:
            check_window(Policy(), make_session(), channel=Channel.WECHAT, now=sh(2026, 11, 23, 11))

        error = caught.value
        assert error.code == "booking_closed"
        assert error.status == 409
        assert error.extensions() == {}
        assert error.detail("zh-CN") == "该出诊的预约已截止（截止时间 11月23日 周一 11:00）。"
        assert error.detail("en") == "Booking for this session closed at Mon 23 Nov 11:00."


class TestWindowWithoutSameDayBooking:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            case("before-release", sh(2026, 11, 16, 7, 59), NOT_YET),
            case("at-release", sh(2026, 11, 16, 8, 0), ALLOWED),
            case("day-before-15:59", sh(2026, 11, 22, 15, 59), ALLOWED),
            case("day-before-16:00", sh(2026, 11, 22, 16, 0), CLOSED_FOR_GOOD_AT_16),
            case("day-before-evening", sh(2026, 11, 22, 20, 0), CLOSED_FOR_GOOD_AT_16),
            case("visit-day-07:00", sh(2026, 11, 23, 7, 0), CLOSED_FOR_GOOD_AT_16),
            case("visit-day-10:00", sh(2026, 11, 23, 10, 0), CLOSED_FOR_GOOD_AT_16),
            case("after-session", sh(2026, 11, 23, 12, 30), CLOSED_FOR_GOOD_AT_16),
        ],
    )
    def test_booking_closes_for_good_at_the_advance_cutoff(
        self, now: datetime, expected: Refusal | None
    ) -> None:
        policy = Policy(same_day_booking=False)

        result = outcome(check_window, policy, make_session(), channel=Channel.APP, now=now)

        assert result == expected


class TestRegistrarWindowChannel:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            case("before-release", sh(2026, 11, 16, 7, 59), NOT_YET),
            case("at-release", sh(2026, 11, 16, 8, 0), ALLOWED),
            case("after-advance-cutoff", sh(2026, 11, 22, 16, 0), ALLOWED),
            case("before-same-day-opening", sh(2026, 11, 23, 6, 0), ALLOWED),
            case("at-remote-cutoff", sh(2026, 11, 23, 11, 0), ALLOWED),
            case("last-second", sh(2026, 11, 23, 11, 59, 59), ALLOWED),
            case("session-end", sh(2026, 11, 23, 12, 0), CLOSED_AT_END),
            case("afternoon", sh(2026, 11, 23, 15, 0), CLOSED_AT_END),
        ],
    )
    @pytest.mark.parametrize("same_day_booking", [True, False], ids=["same-day-on", "same-day-off"])
    def test_registrar_books_from_release_until_the_session_ends(
        self, now: datetime, expected: Refusal | None, same_day_booking: bool
    ) -> None:
        policy = Policy(same_day_booking=same_day_booking)

        result = outcome(check_window, policy, make_session(), channel=Channel.WINDOW, now=now)

        assert result == expected


NOT_YET_NOV_9 = (
    OutsideReleaseWindow,
    {"opens_at": "2026-11-09T07:00:00+00:00", "opens_local": "2026-11-09 15:00"},
)


class TestWindowWithHospitalReleasePolicy:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            case("fifteen-days-ahead", sh(2026, 11, 8, 15, 0), NOT_YET_NOV_9),
            case("release-day-08:00", sh(2026, 11, 9, 8, 0), NOT_YET_NOV_9),
            case("release-day-14:59", sh(2026, 11, 9, 14, 59), NOT_YET_NOV_9),
            case("release-day-15:00", sh(2026, 11, 9, 15, 0), ALLOWED),
            case("a-week-ahead", sh(2026, 11, 16, 8, 0), ALLOWED),
            case("day-before-15:59", sh(2026, 11, 22, 15, 59), ALLOWED),
            case("visit-day-07:00", sh(2026, 11, 23, 7, 0), ALLOWED),
            case("visit-day-11:00", sh(2026, 11, 23, 11, 0), CLOSED_AT_11),
        ],
    )
    def test_release_at_15_00_fourteen_days_ahead(
        self, now: datetime, expected: Refusal | None
    ) -> None:
        policy = Policy(release_time=time(15, 0), release_days_ahead=14)

        result = outcome(check_window, policy, make_session(), channel=Channel.APP, now=now)

        assert result == expected

    def test_same_day_opening_after_the_cutoff_never_promises_a_later_opening(self) -> None:
        policy = Policy(same_day_open_time=time(13, 0))

        with pytest.raises(BookingClosed):
            check_window(policy, make_session(), channel=Channel.APP, now=sh(2026, 11, 23, 10, 0))


# --- session and patient eligibility -----------------------------------------------------


# --- bookability: what a listing says, by the window booking enforces ----------------------

OPEN = BookableState.OPEN
RELEASE_AT_8 = (BookableState.NOT_RELEASED, sh(2026, 11, 16, 8, 0))
SAME_DAY_AT_7 = (BookableState.SAME_DAY_LATER, sh(2026, 11, 23, 7, 0))
CLOSED = BookableState.CLOSED


def app_expected(day: date, hour: int) -> object:
    """The default policy for a remote channel, hour by hour, written out by hand."""
    if day == date(2026, 11, 16):  # release day: 08:00
        return RELEASE_AT_8 if hour < 8 else OPEN
    if day == date(2026, 11, 22):  # the day before: advance booking until 16:00
        return OPEN if hour < 16 else SAME_DAY_AT_7
    assert day == VISIT  # same-day registration 07:00, closes an hour before the end (12:00)
    if hour < 7:
        return SAME_DAY_AT_7
    return OPEN if hour < 11 else CLOSED


def summary(found: Bookability) -> object:
    if found.state is BookableState.OPEN:
        assert found.bookable_now and found.opens_at is None
        return OPEN
    assert not found.bookable_now
    return (found.state, found.opens_at) if found.opens_at is not None else found.state


EVERY_HOUR = [
    case(f"{day:%m-%d}-{hour:02d}:{minute:02d}", day, hour, minute)
    for day in (date(2026, 11, 16), date(2026, 11, 22), VISIT)
    for hour in range(24)
    for minute in (0, 59)
]


class TestBookabilityEveryHour:
    @pytest.mark.parametrize(("day", "hour", "minute"), EVERY_HOUR)
    def test_app_listing_follows_release_cutoff_gap_and_same_day_opening(
        self, day: date, hour: int, minute: int
    ) -> None:
        now = sh(day.year, day.month, day.day, hour, minute)

        found = bookability(Policy(), make_session(), channel=Channel.APP, now=now, places=5)

        assert summary(found) == app_expected(day, hour)

    @pytest.mark.parametrize(("day", "hour", "minute"), EVERY_HOUR)
    @pytest.mark.parametrize("same_day_booking", [True, False], ids=["same-day-on", "same-day-off"])
    @pytest.mark.parametrize("channel", list(Channel), ids=str)
    def test_listing_and_booking_never_disagree(
        self, day: date, hour: int, minute: int, channel: Channel, same_day_booking: bool
    ) -> None:
        now = sh(day.year, day.month, day.day, hour, minute)
        policy = Policy(same_day_booking=same_day_booking)

        found = bookability(policy, make_session(), channel=channel, now=now, places=1)
        refused = outcome(check_window, policy, make_session(), channel=channel, now=now)

        assert found.bookable_now is (refused is ALLOWED)
        if found.bookable_now:
            return
        assert isinstance(refused, tuple)
        error, values = refused
        if found.opens_at is None:
            assert error is BookingClosed and "reopens_at" not in values
            return
        announced = values["opens_at"] if error is OutsideReleaseWindow else values["reopens_at"]
        assert announced == found.opens_at.isoformat()
        # ...and at that instant booking is allowed.
        opened = outcome(check_window, policy, make_session(), channel=channel, now=found.opens_at)
        assert opened is ALLOWED

    @pytest.mark.parametrize(("day", "hour", "minute"), EVERY_HOUR)
    @pytest.mark.parametrize("channel", [Channel.APP, Channel.WINDOW], ids=str)
    def test_the_answer_holds_until_it_says_it_changes(
        self, day: date, hour: int, minute: int, channel: Channel
    ) -> None:
        now = sh(day.year, day.month, day.day, hour, minute)

        found = bookability(Policy(), make_session(), channel=channel, now=now, places=1)

        later = [now + timedelta(minutes=m) for m in range(0, 48 * 60, 7)]
        if found.changes_at is not None:
            assert found.changes_at > now
            later = [t for t in later if t < found.changes_at]
            later.append(found.changes_at - timedelta(microseconds=1))
        for moment in later:
            again = bookability(Policy(), make_session(), channel=channel, now=moment, places=1)
            assert again.state is found.state, moment

    @pytest.mark.parametrize(("day", "hour", "minute"), EVERY_HOUR)
    @pytest.mark.parametrize("status", list(SessionStatus), ids=str)
    @pytest.mark.parametrize("channel", [Channel.APP, Channel.WINDOW], ids=str)
    def test_a_slot_answer_is_the_session_answer_for_the_slot_places(
        self, day: date, hour: int, minute: int, channel: Channel, status: SessionStatus
    ) -> None:
        now = sh(day.year, day.month, day.day, hour, minute)
        session = make_session(status=status)

        for total in (0, 1, 3):
            whole = bookability(Policy(), session, channel=channel, now=now, places=total)
            for part in range(total + 1):
                alone = bookability(Policy(), session, channel=channel, now=now, places=part)
                assert whole.for_places(part) == alone, (total, part)


class TestBookabilityBeyondTheWindow:
    def test_gap_between_cutoff_and_same_day_opening_is_not_bookable(self) -> None:
        found = bookability(
            Policy(), make_session(), channel=Channel.WEB, now=sh(2026, 11, 22, 18, 0), places=9
        )

        assert found == Bookability(
            BookableState.SAME_DAY_LATER, sh(2026, 11, 23, 7, 0), sh(2026, 11, 23, 7, 0)
        )
        assert not found.bookable_now

    def test_the_registrar_window_books_through_the_gap(self) -> None:
        found = bookability(
            Policy(), make_session(), channel=Channel.WINDOW, now=sh(2026, 11, 23, 6, 59), places=1
        )

        assert found.bookable_now and found.opens_at is None
        assert found.changes_at == sh(2026, 11, 23, 12, 0)

    def test_a_stopped_session_never_opens(self) -> None:
        stopped = make_session(status=SessionStatus.STOPPED)

        for now in (sh(2026, 11, 10, 9), sh(2026, 11, 20, 9), sh(2026, 11, 22, 18)):
            found = bookability(Policy(), stopped, channel=Channel.APP, now=now, places=5)
            assert found == Bookability(BookableState.STOPPED, None, None)

    @pytest.mark.parametrize(
        "now",
        [
            case("in-window", sh(2026, 11, 20, 9)),
            case("gap", sh(2026, 11, 22, 18)),
            case("before-release", sh(2026, 11, 10, 9)),
        ],
    )
    def test_no_place_for_the_channel_is_never_announced_as_opening(self, now: datetime) -> None:
        found = bookability(Policy(), make_session(), channel=Channel.APP, now=now, places=0)

        assert found.state is BookableState.FULL
        assert not found.bookable_now and found.opens_at is None

    def test_a_past_session_is_closed_even_when_full(self) -> None:
        found = bookability(
            Policy(), make_session(), channel=Channel.APP, now=sh(2026, 11, 24, 9), places=0
        )

        assert found == Bookability(BookableState.CLOSED, None, None)

    def test_without_same_day_booking_the_cutoff_closes_for_good(self) -> None:
        found = bookability(
            Policy(same_day_booking=False),
            make_session(),
            channel=Channel.APP,
            now=sh(2026, 11, 22, 18, 0),
            places=3,
        )

        assert found == Bookability(BookableState.CLOSED, None, None)


class TestSessionOpen:
    def test_open_session_can_be_booked(self) -> None:
        assert outcome(check_session_open, make_session(status=SessionStatus.OPEN)) is ALLOWED

    def test_stopped_session_is_refused(self) -> None:
        with pytest.raises(SessionStopped) as caught:
            check_session_open(make_session(status=SessionStatus.STOPPED))

        assert caught.value.code == "session_stopped"
        assert caught.value.status == 409
        assert caught.value.detail("en") == (
            "This clinic session has been stopped; please choose another doctor or day."
        )


def sex_refused(department: str, allowed: str, code: str) -> Refusal:
    del allowed  # the sentence translates the code in the reader's language
    return SexNotAllowed, {"department": department, "allowed_code": code}


class TestDemographics:
    @pytest.mark.parametrize(
        ("department", "min_age", "max_age", "birth_date", "refused_as"),
        [
            case("turns-15-day-after-visit", "儿科", None, 14, date(2011, 11, 24), None),
            case("turns-15-on-visit-day", "儿科", None, 14, date(2011, 11, 23), ("0–14", 15)),
            case("newborn", "儿科", None, 14, date(2026, 11, 23), None),
            case("turns-60-day-after-visit", "老年科", 60, None, date(1966, 11, 24), ("≥60", 59)),
            case("turns-60-on-visit-day", "老年科", 60, None, date(1966, 11, 23), None),
            case("above-range", "青春期门诊", 10, 18, date(2007, 11, 23), ("10–18", 19)),
            case("below-range", "青春期门诊", 10, 18, date(2016, 11, 24), ("10–18", 9)),
            case("top-of-range", "青春期门诊", 10, 18, date(2007, 11, 24), None),
            case("bottom-of-range", "青春期门诊", 10, 18, date(2016, 11, 23), None),
            case("no-age-rule", "内科", None, None, date(1920, 1, 1), None),
        ],
    )
    def test_age_on_the_visit_day_must_be_in_the_department_range(
        self,
        department: str,
        min_age: int | None,
        max_age: int | None,
        birth_date: date,
        refused_as: tuple[str, int] | None,
    ) -> None:
        """`refused_as` is the (range, age) the refusal names, or None when allowed."""
        result = outcome(
            check_demographics,
            department_name=department,
            min_age=min_age,
            max_age=max_age,
            sex_restriction=None,
            birth_date=birth_date,
            sex="F",
            visit_date=VISIT,
        )

        if refused_as is None:
            assert result is ALLOWED
        else:
            span, age = refused_as
            assert result == (AgeNotAllowed, {"department": department, "range": span, "age": age})

    @pytest.mark.parametrize(
        ("department", "restriction", "sex", "min_age", "expected"),
        [
            case(
                "gynaecology-refuses-male", "妇科", "F", "M", None, sex_refused("妇科", "女性", "F")
            ),
            case("gynaecology-accepts-female", "妇科", "F", "F", None, ALLOWED),
            case(
                "andrology-refuses-female", "男科", "M", "F", None, sex_refused("男科", "男性", "M")
            ),
            case("andrology-accepts-male", "男科", "M", "M", None, ALLOWED),
            case("no-restriction", "内科", None, "M", None, ALLOWED),
            case(
                "age-checked-before-sex",
                "妇科",
                "F",
                "M",
                18,
                (AgeNotAllowed, {"department": "妇科", "range": "≥18", "age": 10}),
            ),
        ],
    )
    def test_sex_restricted_department_refuses_the_other_sex(
        self,
        department: str,
        restriction: str | None,
        sex: str,
        min_age: int | None,
        expected: Refusal | None,
    ) -> None:
        result = outcome(
            check_demographics,
            department_name=department,
            min_age=min_age,
            max_age=None,
            sex_restriction=restriction,
            birth_date=date(2016, 1, 1),
            sex=sex,
            visit_date=VISIT,
        )

        assert result == expected

    def test_age_refusal_sentence_names_range_and_age(self) -> None:
        error = AgeNotAllowed(department="儿科", range="0–14", age=15)

        assert error.code == "age_not_allowed"
        assert error.status == 409
        assert error.detail("zh-CN") == "儿科接诊 0–14 的患者，就诊人就诊时 15 岁，不能预约。"
        assert error.detail("en") == "儿科 sees patients aged 0–14; this patient will be 15."

    def test_sex_refusal_sentence_in_chinese(self) -> None:
        with pytest.raises(SexNotAllowed) as caught:
            check_demographics(
                department_name="妇科",
                min_age=None,
                max_age=None,
                sex_restriction="F",
                birth_date=date(1990, 1, 1),
                sex="M",
                visit_date=VISIT,
            )

        assert caught.value.code == "sex_not_allowed"
        assert caught.value.status == 409
        assert caught.value.detail("zh-CN") == "妇科仅接诊女性患者，不能为该就诊人预约。"

    def test_sex_refusal_sentence_in_english_names_the_sex_in_english(self) -> None:
        with pytest.raises(SexNotAllowed) as caught:
            check_demographics(
                department_name="Gynaecology",
                min_age=None,
                max_age=None,
                sex_restriction="F",
                birth_date=date(1990, 1, 1),
                sex="M",
                visit_date=VISIT,
            )

        assert caught.value.detail("en") == "Gynaecology only sees female patients."


NOW = sh(2026, 11, 20, 10, 0)
TODAY = date(2026, 11, 20)


def ban(
    *,
    starts_at: datetime = utc(2026, 11, 1),
    ends_at: datetime = utc(2027, 5, 1),
    lifted_at: datetime | None = None,
    reason: str = "爽约",
) -> BlacklistFacts:
    return BlacklistFacts(starts_at=starts_at, ends_at=ends_at, lifted_at=lifted_at, reason=reason)


def banned(until: str, until_local: str, reason: str = "爽约") -> Refusal:
    return Blacklisted, {"reason": reason, "until": until, "until_local": until_local}


BANNED_UNTIL_MAY = banned("2027-05-01T00:00:00+00:00", "2027-05-01 08:00")
SHORT = ban(ends_at=utc(2026, 12, 1), reason="短期")
BANNED_UNTIL_DECEMBER = banned("2026-12-01T00:00:00+00:00", "2026-12-01 08:00", "短期")


class TestBlacklist:
    @pytest.mark.parametrize(
        ("entries", "channel", "expected"),
        [
            case("no-entries", [], Channel.APP, ALLOWED),
            case("current-ban", [ban()], Channel.APP, BANNED_UNTIL_MAY),
            case("current-ban-at-kiosk", [ban()], Channel.KIOSK, BANNED_UNTIL_MAY),
            case("current-ban-by-phone", [ban()], Channel.PHONE, BANNED_UNTIL_MAY),
            case("starts-now", [ban(starts_at=NOW)], Channel.APP, BANNED_UNTIL_MAY),
            case("expired", [ban(ends_at=utc(2026, 11, 19))], Channel.APP, ALLOWED),
            case("ends-now", [ban(ends_at=NOW)], Channel.APP, ALLOWED),
            case("lifted", [ban(lifted_at=utc(2026, 11, 10))], Channel.APP, ALLOWED),
            case("future", [ban(starts_at=utc(2026, 12, 1))], Channel.APP, ALLOWED),
            case("window-never-refused", [ban()], Channel.WINDOW, ALLOWED),
            case("longest-reported", [SHORT, ban()], Channel.APP, BANNED_UNTIL_MAY),
            case("longest-reported-listed-last", [ban(), SHORT], Channel.APP, BANNED_UNTIL_MAY),
            case(
                "lifted-longer-ban-ignored",
                [SHORT, ban(ends_at=utc(2028, 1, 1), lifted_at=utc(2026, 11, 15))],
                Channel.APP,
                BANNED_UNTIL_DECEMBER,
            ),
            case(
                "expired-longer-ban-ignored",
                [SHORT, ban(starts_at=utc(2025, 1, 1), ends_at=utc(2026, 1, 1))],
                Channel.APP,
                BANNED_UNTIL_DECEMBER,
            ),
        ],
    )
    def test_only_a_current_unlifted_ban_refuses_self_service(
        self, entries: list[BlacklistFacts], channel: Channel, expected: Refusal | None
    ) -> None:
        result = outcome(check_not_blacklisted, entries, channel=channel, now=NOW, tz=TZ)

        assert result == expected

    def test_refusal_reports_until_and_points_to_the_window(self) -> None:
        with pytest.raises(Blacklisted) as caught:
            check_not_blacklisted([ban()], channel=Channel.APP, now=NOW, tz=TZ)

        error = caught.value
        assert error.code == "blacklisted"
        assert error.status == 403
        assert error.extensions() == {"until": "2027-05-01T00:00:00+00:00"}
        assert error.detail("zh-CN") == (
            "该就诊人因爽约，2027年5月1日 周六 08:00 前不能通过自助渠道预约，"
            "可到医院窗口挂号或提出申诉。"
        )
        assert error.detail("en") == (
            "Self-service booking is suspended for this patient until Sat 1 May 2027 08:00 (爽约); "
            "registration at the hospital window is still possible, and you may appeal."
        )


# --- per-patient limits ------------------------------------------------------------------


def booking(
    *,
    visit_date: date = date(2026, 11, 25),
    department_id: uuid.UUID = DEPARTMENT_B,
    doctor_id: uuid.UUID | None = DOCTOR_2,
    status: AppointmentStatus = S.BOOKED,
    made_days_ago: float = 30,
    cancel_reason: str | None = None,
    session_id: uuid.UUID | None = None,
) -> BookingFacts:
    """One of the patient's appointments; by default in another department on another day,
    made 30 days ago, so it counts only towards the 90-day and active limits. A cancelled
    one was cancelled by the patient unless another reason is given."""
    if status is S.CANCELLED and cancel_reason is None:
        cancel_reason = "patient"
    return BookingFacts(
        id=uuid.uuid4(),
        session_id=session_id or uuid.uuid4(),
        visit_date=visit_date,
        department_id=department_id,
        doctor_id=doctor_id,
        status=status,
        created_at=NOW - timedelta(days=made_days_ago),
        cancel_reason=cancel_reason,
    )


def this_session(status: AppointmentStatus = S.BOOKED, **kwargs: Any) -> BookingFacts:
    return booking(
        session_id=SESSION_ID,
        visit_date=VISIT,
        department_id=DEPARTMENT_A,
        doctor_id=DOCTOR_1,
        status=status,
        **kwargs,
    )


def same_doctor(status: AppointmentStatus = S.BOOKED, **kwargs: Any) -> BookingFacts:
    """The same doctor in the afternoon of the visit day."""
    return booking(
        visit_date=VISIT, department_id=DEPARTMENT_A, doctor_id=DOCTOR_1, status=status, **kwargs
    )


def same_dept(status: AppointmentStatus = S.BOOKED, **kwargs: Any) -> BookingFacts:
    """Another doctor of the same department on the visit day."""
    return booking(
        visit_date=VISIT, department_id=DEPARTMENT_A, doctor_id=DOCTOR_2, status=status, **kwargs
    )


def other_dept(
    status: AppointmentStatus = S.BOOKED, department_id: uuid.UUID = DEPARTMENT_B
) -> BookingFacts:
    """Another department on the visit day."""
    return booking(visit_date=VISIT, department_id=department_id, doctor_id=None, status=status)


def made(
    days_ago: float, status: AppointmentStatus = S.CANCELLED, reason: str | None = None
) -> BookingFacts:
    """A booking made `days_ago` for another day; by default cancelled by the patient."""
    return booking(made_days_ago=days_ago, status=status, cancel_reason=reason)


def upcoming(day: int) -> BookingFacts:
    """An upcoming booking on 2026-11-`day`, made 10 days ago (14-day release hospitals)."""
    return booking(visit_date=date(2026, 11, day), made_days_ago=10)


def limit(name: str, maximum: int) -> Refusal:
    return LimitExceeded, {"limit": name, "maximum": maximum}


ALREADY_BOOKED = (AlreadyBooked, {})
PER_DOCTOR = limit("per_doctor_per_day", 1)
PER_DEPARTMENT = limit("per_department_per_day", 1)
PER_DAY = limit("per_day", 2)
PER_7_DAYS = limit("per_7_days", 3)
PER_90_DAYS = limit("per_90_days", 5)
ACTIVE = limit("active", 3)


class TestLimits:
    @pytest.mark.parametrize(
        ("existing", "expected"),
        [
            case("first-booking", [], ALLOWED),
            # the same session
            case("already-booked", [this_session()], ALREADY_BOOKED),
            case("already-held", [this_session(S.HELD)], ALREADY_BOOKED),
            case("already-checked-in", [this_session(S.CHECKED_IN)], ALREADY_BOOKED),
            case("same-session-cancelled", [this_session(S.CANCELLED, made_days_ago=1)], ALLOWED),
            case("same-session-expired", [this_session(S.EXPIRED, made_days_ago=1)], ALLOWED),
            # per doctor, per department, per day: active bookings on the visit day
            case("per-doctor-per-day", [same_doctor()], PER_DOCTOR),
            case("per-doctor-per-day-held", [same_doctor(S.HELD)], PER_DOCTOR),
            case("same-doctor-other-day", [booking(doctor_id=DOCTOR_1)], ALLOWED),
            case("per-department-per-day", [same_dept()], PER_DEPARTMENT),
            case("one-other-department", [other_dept()], ALLOWED),
            case("per-day", [other_dept(), other_dept(S.BOOKED, DEPARTMENT_C)], PER_DAY),
            case("per-day-cancelled-same-doctor", [same_doctor(S.CANCELLED)], ALLOWED),
            case("per-day-expired-same-doctor", [same_doctor(S.EXPIRED)], ALLOWED),
            case("per-day-cancelled-same-department", [same_dept(S.CANCELLED)], ALLOWED),
            case("per-day-completed-same-department", [same_dept(S.COMPLETED)], ALLOWED),
            case(
                "per-day-expired-second",
                [other_dept(), other_dept(S.EXPIRED, DEPARTMENT_C)],
                ALLOWED,
            ),
            # per 7 days: bookings made, whatever became of them
            case("per-7-days-cancelled", [made(1), made(3), made(6.9)], PER_7_DAYS),
            case(
                "per-7-days-expired", [made(1, S.EXPIRED), made(2, S.EXPIRED), made(3)], PER_7_DAYS
            ),
            case(
                "per-7-days-live-and-done",
                [made(1, S.BOOKED), made(2, S.COMPLETED), made(3, S.NO_SHOW)],
                PER_7_DAYS,
            ),
            case("per-7-days-two", [made(1), made(3)], ALLOWED),
            case("per-7-days-edge", [made(1), made(3), made(7)], ALLOWED),
            case(
                "per-7-days-staff-counts", [made(1, reason="staff"), made(2), made(3)], PER_7_DAYS
            ),
            case(
                "per-7-days-stop-clinic", [made(1), made(2), made(3, reason="stop_clinic")], ALLOWED
            ),
            case(
                "per-7-days-rescheduled", [made(1), made(2), made(3, reason="rescheduled")], ALLOWED
            ),
            case(
                "per-7-days-only-uncounted",
                [
                    made(1, reason="stop_clinic"),
                    made(2, reason="rescheduled"),
                    made(3, reason="stop_clinic"),
                ],
                ALLOWED,
            ),
            # per 90 days
            case("per-90-days", [made(10), made(20), made(40), made(60), made(89)], PER_90_DAYS),
            case("per-90-days-four", [made(10), made(20), made(40), made(60)], ALLOWED),
            case("per-90-days-edge", [made(10), made(20), made(40), made(60), made(90)], ALLOWED),
            case(
                "per-90-days-expired",
                [made(10, S.EXPIRED), made(20), made(40), made(60), made(80)],
                PER_90_DAYS,
            ),
            case(
                "per-90-days-stop-clinic-rescheduled",
                [
                    made(10),
                    made(20),
                    made(40),
                    made(60, reason="stop_clinic"),
                    made(80, reason="rescheduled"),
                ],
                ALLOWED,
            ),
            # active: upcoming held, booked or checked-in appointments
            case("active", [upcoming(24), upcoming(25), upcoming(26)], ACTIVE),
            case("active-two", [upcoming(24), upcoming(25)], ALLOWED),
            case("active-today-counts", [upcoming(20), upcoming(25), upcoming(26)], ACTIVE),
            case("active-past-visit", [upcoming(19), upcoming(25), upcoming(26)], ALLOWED),
            case(
                "active-held-and-checked-in",
                [
                    booking(visit_date=TODAY, status=S.CHECKED_IN, made_days_ago=10),
                    booking(status=S.HELD, made_days_ago=10),
                    upcoming(26),
                ],
                ACTIVE,
            ),
            case(
                "active-cancelled-ignored",
                [booking(status=S.CANCELLED, made_days_ago=10), upcoming(25), upcoming(26)],
                ALLOWED,
            ),
        ],
    )
    def test_limits_with_default_policy(
        self, existing: list[BookingFacts], expected: Refusal | None
    ) -> None:
        result = outcome(check_limits, Policy(), make_session(), existing, now=NOW, today=TODAY)

        assert result == expected

    @pytest.mark.parametrize(
        ("policy", "existing", "expected"),
        [
            case(
                "doctor-limit-raised",
                Policy(limit_per_doctor_per_day=2, limit_per_department_per_day=2),
                [same_doctor()],
                ALLOWED,
            ),
            case(
                "department-limit-raised",
                Policy(limit_per_department_per_day=2),
                [same_dept()],
                ALLOWED,
            ),
            case("day-limit-lowered", Policy(limit_per_day=1), [other_dept()], limit("per_day", 1)),
            case(
                "7-day-limit-raised",
                Policy(limit_per_7_days=4),
                [made(1), made(2), made(3)],
                ALLOWED,
            ),
            case(
                "90-day-limit-lowered",
                Policy(limit_per_90_days=2),
                [made(10), made(20)],
                limit("per_90_days", 2),
            ),
            case(
                "active-limit-lowered", Policy(limit_active=1), [upcoming(25)], limit("active", 1)
            ),
        ],
    )
    def test_limits_follow_the_hospital_policy(
        self, policy: Policy, existing: list[BookingFacts], expected: Refusal | None
    ) -> None:
        result = outcome(check_limits, policy, make_session(), existing, now=NOW, today=TODAY)

        assert result == expected

    @pytest.mark.parametrize(
        ("existing", "expected"),
        [
            case("same-department-same-day", [same_dept()], PER_DEPARTMENT),
            case(
                "same-department-no-doctor",
                [booking(visit_date=VISIT, department_id=DEPARTMENT_A, doctor_id=None)],
                PER_DEPARTMENT,
            ),
            case("other-department-same-day", [other_dept()], ALLOWED),
        ],
    )
    def test_department_session_without_doctor_skips_the_doctor_limit(
        self, existing: list[BookingFacts], expected: Refusal | None
    ) -> None:
        session = make_session(doctor_id=None)

        result = outcome(check_limits, Policy(), session, existing, now=NOW, today=TODAY)

        assert result == expected

    def test_already_booked_sentence(self) -> None:
        error = AlreadyBooked()

        assert error.code == "already_booked"
        assert error.status == 409
        assert error.detail("en") == "This patient already has a booking for this session."


class TestLimitsWhenRescheduling:
    @pytest.mark.parametrize(
        ("existing", "replacing_index", "expected"),
        [
            case("same-doctor-not-replaced", [same_doctor()], None, PER_DOCTOR),
            case("same-doctor-replaced", [same_doctor()], 0, ALLOWED),
            case("same-session-replaced", [this_session()], 0, ALLOWED),
            case("frequency-not-replaced", [made(1), made(2), made(3, S.BOOKED)], None, PER_7_DAYS),
            case("frequency-replaced", [made(1), made(2), made(3, S.BOOKED)], 2, ALLOWED),
            case("active-replaced", [upcoming(24), upcoming(25), upcoming(26)], 1, ALLOWED),
            case("other-still-counts", [same_doctor(), same_dept()], 0, PER_DEPARTMENT),
        ],
    )
    def test_the_appointment_given_up_does_not_count_against_its_replacement(
        self, existing: list[BookingFacts], replacing_index: int | None, expected: Refusal | None
    ) -> None:
        replacing = None if replacing_index is None else existing[replacing_index].id

        result = outcome(
            check_limits,
            Policy(),
            make_session(),
            existing,
            now=NOW,
            today=TODAY,
            replacing=replacing,
        )

        assert result == expected


class TestLimitExceededError:
    @pytest.mark.parametrize(
        ("name", "maximum", "zh", "en"),
        [
            case(
                "per-doctor-per-day",
                "per_doctor_per_day",
                1,
                "同一就诊人同一医生每天最多 1 个",
                "at most 1 per doctor per day",
            ),
            case(
                "per-department-per-day",
                "per_department_per_day",
                1,
                "同一就诊人同一科室每天最多 1 个",
                "at most 1 per department per day",
            ),
            case("per-day", "per_day", 2, "同一就诊人每天最多 2 个", "at most 2 per day"),
            case(
                "per-7-days",
                "per_7_days",
                3,
                "同一就诊人 7 天内最多预约 3 次",
                "at most 3 bookings made within 7 days",
            ),
            case(
                "per-90-days",
                "per_90_days",
                5,
                "同一就诊人 90 天内最多预约 5 次",
                "at most 5 bookings made within 90 days",
            ),
            case(
                "active",
                "active",
                3,
                "同一就诊人最多同时持有 3 个未就诊的预约",
                "at most 3 upcoming bookings at a time",
            ),
            case(
                "account-patients",
                "account_patients",
                5,
                "一个账号最多添加 5 位就诊人",
                "at most 5 patients per account",
            ),
        ],
    )
    def test_sentence_names_the_rule_and_extensions_give_name_and_maximum(
        self, name: str, maximum: int, zh: str, en: str
    ) -> None:
        error = LimitExceeded(limit=name, maximum=maximum)

        assert error.code == "limit_exceeded"
        assert error.status == 409
        assert error.extensions() == {"limit": name, "maximum": maximum}
        assert error.detail("zh-CN") == f"已达到预约上限：{zh}。"
        assert error.detail("en") == f"Booking limit reached: {en}."
        assert error.detail() == error.detail("zh-CN")

    def test_raised_error_carries_the_policy_maximum(self) -> None:
        with pytest.raises(LimitExceeded) as caught:
            check_limits(
                Policy(limit_per_day=1), make_session(), [other_dept()], now=NOW, today=TODAY
            )

        assert caught.value.extensions() == {"limit": "per_day", "maximum": 1}
        assert caught.value.detail("en") == "Booking limit reached: at most 1 per day."
        assert caught.value.detail("zh-CN") == "已达到预约上限：同一就诊人每天最多 1 个。"


# --- cancellation --------------------------------------------------------------------------


class TestCancellationDeadline:
    @pytest.mark.parametrize(
        ("policy", "expected"),
        [
            case("default-15:00-day-before", Policy(), sh(2026, 11, 22, 15, 0)),
            case(
                "two-days-before-16:00",
                Policy(cancel_days_before=2, cancel_deadline_time=time(16)),
                sh(2026, 11, 21, 16),
            ),
            case(
                "same-day-07:30",
                Policy(cancel_days_before=0, cancel_deadline_time=time(7, 30)),
                sh(2026, 11, 23, 7, 30),
            ),
        ],
    )
    def test_deadline_in_hospital_time(self, policy: Policy, expected: datetime) -> None:
        assert cancellation_deadline(policy, make_session()) == expected


DEADLINE_PASSED = (
    CancellationClosed,
    {"deadline": "2026-11-22T07:00:00+00:00", "deadline_local": "2026-11-22 15:00"},
)
NEEDS_APPROVAL = (ApprovalRequired, {"change": "cancel_late"})
BY_PATIENT, BY_STAFF = False, True


class TestCancellable:
    @pytest.mark.parametrize(
        ("status", "now", "by_staff", "expected"),
        [
            case("held-days-before", S.HELD, sh(2026, 11, 20, 9, 0), BY_PATIENT, S.CANCELLED),
            case("held-after-deadline", S.HELD, sh(2026, 11, 22, 15, 0), BY_PATIENT, S.CANCELLED),
            case("held-on-visit-day", S.HELD, sh(2026, 11, 23, 9, 0), BY_PATIENT, S.CANCELLED),
            case("booked-days-before", S.BOOKED, sh(2026, 11, 20, 9, 0), BY_PATIENT, S.CANCELLED),
            case(
                "booked-14:59:59", S.BOOKED, sh(2026, 11, 22, 14, 59, 59), BY_PATIENT, S.CANCELLED
            ),
            case("booked-15:00", S.BOOKED, sh(2026, 11, 22, 15, 0), BY_PATIENT, DEADLINE_PASSED),
            case(
                "booked-on-visit-day", S.BOOKED, sh(2026, 11, 23, 9, 0), BY_PATIENT, DEADLINE_PASSED
            ),
            case("staff-before-deadline", S.BOOKED, sh(2026, 11, 22, 14, 0), BY_STAFF, S.CANCELLED),
            case("staff-at-deadline", S.BOOKED, sh(2026, 11, 22, 15, 0), BY_STAFF, NEEDS_APPROVAL),
            case("staff-on-visit-day", S.BOOKED, sh(2026, 11, 23, 9, 0), BY_STAFF, NEEDS_APPROVAL),
            case("staff-held-late", S.HELD, sh(2026, 11, 23, 9, 0), BY_STAFF, S.CANCELLED),
        ],
    )
    def test_hold_always_and_booking_until_15_00_the_day_before(
        self,
        status: AppointmentStatus,
        now: datetime,
        by_staff: bool,
        expected: AppointmentStatus | Refusal,
    ) -> None:
        result = outcome(
            check_cancellable, Policy(), make_session(), status, now=now, by_staff=by_staff
        )

        assert result == expected

    @pytest.mark.parametrize("by_staff", [BY_PATIENT, BY_STAFF], ids=["patient", "staff"])
    def test_an_approved_request_cancels_after_the_deadline(self, by_staff: bool) -> None:
        late = sh(2026, 11, 23, 9, 0)
        assert (
            check_cancellable(
                Policy(), make_session(), S.BOOKED, now=late, by_staff=by_staff, approved=True
            )
            is S.CANCELLED
        )

    @pytest.mark.parametrize(
        "status", [S.CANCELLED, S.EXPIRED, S.CHECKED_IN, S.COMPLETED, S.NO_SHOW], ids=str
    )
    @pytest.mark.parametrize("by_staff", [BY_PATIENT, BY_STAFF], ids=["patient", "staff"])
    def test_finished_appointment_cannot_be_cancelled(
        self, status: AppointmentStatus, by_staff: bool
    ) -> None:
        with pytest.raises(InvalidTransition) as caught:
            check_cancellable(
                Policy(), make_session(), status, now=sh(2026, 11, 20, 9, 0), by_staff=by_staff
            )

        assert caught.value.code == "invalid_state"
        assert caught.value.status == 409
        assert caught.value.values == {"state": status.value, "action": "cancel"}

    def test_deadline_sentence(self) -> None:
        error = CancellationClosed(
            deadline="2026-11-22T07:00:00+00:00", deadline_local="2026-11-22 15:00"
        )

        assert error.code == "cancellation_closed"
        assert error.status == 409
        assert error.detail("zh-CN") == (
            "已超过退号截止时间（11月22日 周日 15:00），不能在线取消，请联系医院窗口。"
        )
        assert error.detail("en") == (
            "The cancellation deadline (Sun 22 Nov 15:00) has passed; please contact the hospital."
        )


# --- state machine -----------------------------------------------------------------------

ALLOWED_TRANSITIONS = [
    (S.HELD, "confirm_payment", S.BOOKED),
    (S.HELD, "accept", S.BOOKED),
    (S.HELD, "expire", S.EXPIRED),
    (S.EXPIRED, "late_payment", S.BOOKED),
    (S.HELD, "cancel", S.CANCELLED),
    (S.BOOKED, "cancel", S.CANCELLED),
    (S.BOOKED, "check_in", S.CHECKED_IN),
    (S.BOOKED, "mark_no_show", S.NO_SHOW),
    (S.CHECKED_IN, "complete", S.COMPLETED),
]
ACTIONS = [
    "confirm_payment",
    "accept",
    "expire",
    "late_payment",
    "cancel",
    "check_in",
    "mark_no_show",
    "complete",
    "reopen",
]
FORBIDDEN_TRANSITIONS = [
    (status, action)
    for status in S
    for action in ACTIONS
    if not any(s is status and a == action for s, a, _ in ALLOWED_TRANSITIONS)
]


class TestTransitions:
    def test_table_holds_exactly_the_allowed_pairs(self) -> None:
        assert {(s, a): new for s, a, new in ALLOWED_TRANSITIONS} == TRANSITIONS

    @pytest.mark.parametrize(
        ("status", "action", "expected"),
        ALLOWED_TRANSITIONS,
        ids=[f"{s}-{a}" for s, a, _ in ALLOWED_TRANSITIONS],
    )
    def test_allowed_transition(
        self, status: AppointmentStatus, action: str, expected: AppointmentStatus
    ) -> None:
        assert transition(status, action) is expected

    @pytest.mark.parametrize(
        ("status", "action"),
        FORBIDDEN_TRANSITIONS,
        ids=[f"{s}-{a}" for s, a in FORBIDDEN_TRANSITIONS],
    )
    def test_forbidden_transition_is_invalid_state(
        self, status: AppointmentStatus, action: str
    ) -> None:
        with pytest.raises(InvalidTransition) as caught:
            transition(status, action)

        assert caught.value.code == "invalid_state"
        assert caught.value.values == {"state": status.value, "action": action}

    def test_invalid_transition_sentence(self) -> None:
        error = InvalidTransition(state="cancelled", action="cancel")

        assert error.detail("zh-CN") == "当前状态为「cancelled」，不能执行「cancel」。"
        assert error.detail("en") == "This cannot be done (cancel) while the state is 'cancelled'."

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (S.HELD, True),
            (S.BOOKED, True),
            (S.CHECKED_IN, True),
            (S.CANCELLED, False),
            (S.EXPIRED, False),
            (S.COMPLETED, False),
            (S.NO_SHOW, False),
        ],
        ids=lambda value: str(value).lower(),
    )
    def test_only_held_booked_and_checked_in_occupy_a_place(
        self, status: AppointmentStatus, expected: bool
    ) -> None:
        assert is_active(status) is expected

    @pytest.mark.parametrize(
        ("fee_fen", "expected"),
        [case("free", 0, S.BOOKED), case("one-fen", 1, S.HELD), case("fifty-yuan", 5000, S.HELD)],
    )
    def test_free_level_books_at_once_and_a_fee_holds(
        self, fee_fen: int, expected: AppointmentStatus
    ) -> None:
        assert initial_status(fee_fen) is expected


def not_payable(state: str) -> Refusal:
    return InvalidTransition, {"state": state, "action": "confirm_payment"}


def mismatch(paid_fen: int) -> Refusal:
    return PaymentMismatch, {"paid_fen": paid_fen, "fee_fen": 5000}


class TestPayment:
    @pytest.mark.parametrize(
        ("status", "paid_fen", "expected"),
        [
            case("held", S.HELD, 5000, PaymentPath.HELD),
            case("expired-before-the-payment", S.EXPIRED, 5000, PaymentPath.RECLAIM),
            case("underpaid", S.HELD, 4999, mismatch(4999)),
            case("overpaid", S.HELD, 5001, mismatch(5001)),
            case("expired-and-underpaid", S.EXPIRED, 4999, mismatch(4999)),
            case("already-booked", S.BOOKED, 5000, not_payable("booked")),
            case("cancelled", S.CANCELLED, 5000, not_payable("cancelled")),
            case("checked-in", S.CHECKED_IN, 5000, not_payable("checked_in")),
        ],
    )
    def test_a_payment_books_a_hold_or_reclaims_an_expired_one_for_the_exact_fee(
        self,
        status: AppointmentStatus,
        paid_fen: int,
        expected: PaymentPath | Refusal,
    ) -> None:
        result = outcome(payment_path, status, fee_fen=5000, paid_fen=paid_fen)

        assert result == expected

    @pytest.mark.parametrize(
        ("status", "paid_fen", "refund_state", "new_fee", "expected"),
        [
            case("same-fee", S.BOOKED, 5000, "none", 5000, True),
            case("dearer-level", S.BOOKED, 5000, "none", 8000, False),
            case("free-level", S.BOOKED, 5000, "none", 0, False),
            case("unpaid-hold", S.HELD, None, "none", 5000, False),
            case("free-booking", S.BOOKED, None, "none", 0, False),
            case("refund-under-way", S.BOOKED, 5000, "pending", 5000, False),
        ],
    )
    def test_a_payment_follows_a_reschedule_only_to_the_same_fee(
        self,
        status: AppointmentStatus,
        paid_fen: int | None,
        refund_state: str,
        new_fee: int,
        expected: bool,
    ) -> None:
        assert (
            payment_follows(
                status, paid_fen=paid_fen, refund_state=refund_state, new_fee_fen=new_fee
            )
            is expected
        )

    def test_mismatch_sentence_gives_both_amounts(self) -> None:
        error = PaymentMismatch(paid_fen=4999, fee_fen=5000)

        assert error.code == "payment_mismatch"
        assert error.detail("zh-CN") == "支付金额 4999 分与应付 5000 分不一致。"
        assert error.detail("en") == "The amount paid (4999 fen) differs from the fee (5000 fen)."

    def test_hold_expired_sentence(self) -> None:
        assert HoldExpired().detail("en") == (
            "The hold expired and the place was released; please book again."
        )


class TestLowestFreeNumber:
    @pytest.mark.parametrize(
        ("first_number", "capacity", "used", "expected"),
        [
            case("empty-pool", 1, 5, [], 1),
            case("next-after-run", 1, 5, [1, 2, 3], 4),
            case("reuses-cancelled-gap", 1, 5, [1, 3, 4], 2),
            case("reuses-first-number", 1, 5, [2, 3, 4, 5], 1),
            case("last-place", 1, 5, [1, 2, 3, 4], 5),
            case("offset-pool-starts-at-first-number", 16, 8, [], 16),
            case("offset-pool-reuses-gap", 16, 8, [16, 17, 19], 18),
            case("other-pools-numbers-ignored", 16, 8, [1, 2, 3, 24], 16),
            case("offset-pool-last-place", 16, 8, [16, 17, 18, 19, 20, 21, 22], 23),
        ],
    )
    def test_lowest_number_not_held(
        self, first_number: int, capacity: int, used: list[int], expected: int
    ) -> None:
        assert lowest_free_number(first_number, capacity, used) == expected

    def test_full_pool_is_a_programming_error(self) -> None:
        with pytest.raises(AssertionError, match="free number"):
            lowest_free_number(16, 3, [16, 17, 18])


# --- error catalogue ---------------------------------------------------------------------


class TestErrorCatalogue:
    @pytest.mark.parametrize(
        ("error", "code", "status"),
        [
            (SoldOut, "sold_out", 409),
            (OutsideReleaseWindow, "outside_release_window", 409),
            (BookingClosed, "booking_closed", 409),
            (SessionStopped, "session_stopped", 409),
            (AgeNotAllowed, "age_not_allowed", 409),
            (SexNotAllowed, "sex_not_allowed", 409),
            (AlreadyBooked, "already_booked", 409),
            (LimitExceeded, "limit_exceeded", 409),
            (Blacklisted, "blacklisted", 403),
            (CancellationClosed, "cancellation_closed", 409),
            (HoldExpired, "hold_expired", 409),
            (InvalidTransition, "invalid_state", 409),
            (PaymentMismatch, "payment_mismatch", 409),
        ],
        ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
    )
    def test_every_error_has_a_stable_code_status_and_both_sentences(
        self, error: type[YuyueError], code: str, status: int
    ) -> None:
        assert error.code == code
        assert error.status == status
        for locale in i18n.LOCALES:
            assert f"title.{code}" in i18n.message_ids(locale)
            assert f"error.{code}" in i18n.message_ids(locale)

    def test_sold_out_lists_alternatives(self) -> None:
        alternatives = [{"kind": "same_doctor", "session_id": "s-2", "remaining": 3}]

        error = SoldOut(alternatives=alternatives)

        assert error.extensions() == {"alternatives": alternatives}
        assert SoldOut().extensions() == {"alternatives": []}
        assert error.detail("en") == (
            "No places are left for this session; see the suggested alternatives."
        )
