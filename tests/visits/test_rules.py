"""Pure visit-day rules: the check-in window, voucher checks, ordering, late arrivals,
priorities, manual moves and the estimated wait. No database."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from yuyue.booking.states import AppointmentStatus as S
from yuyue.visits import rules
from yuyue.visits.states import PriorityClass as P
from yuyue.visits.states import VisitStatus as V

DAY = date(2026, 11, 23)
TZ = "Asia/Shanghai"
POLICY = rules.Policy()
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai


def local(hh: int, mm: int = 0, *, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def facts(status: S = S.BOOKED, *, slot: time = time(9, 0), day: date = DAY) -> rules.CheckInFacts:
    return rules.CheckInFacts(
        status=status, visit_date=day, slot_start=slot, session_end=time(12, 0), timezone=TZ
    )


class TestCheckInWindow:
    @pytest.mark.parametrize(
        ("now", "outcome"),
        [
            (local(7, 59), rules.CheckInTooEarly),
            (local(8, 0), True),  # exactly 60 minutes before the 09:00 slot
            (local(9, 30), True),  # after the slot: late, but welcome
            (local(11, 59), True),
            (local(12, 0), rules.CheckInClosed),  # the session has ended
        ],
    )
    def test_window_opens_60_minutes_before_the_slot_and_closes_with_the_session(
        self, now: datetime, outcome: object
    ) -> None:
        if outcome is True:
            assert rules.check_can_check_in(POLICY, facts(), today=DAY, now=now) is True
        else:
            assert isinstance(outcome, type)
            with pytest.raises(outcome):
                rules.check_can_check_in(POLICY, facts(), today=DAY, now=now)

    def test_too_early_says_when_it_opens(self) -> None:
        with pytest.raises(rules.CheckInTooEarly) as caught:
            rules.check_can_check_in(POLICY, facts(), today=DAY, now=local(7, 0))
        assert "Mon 23 Nov 08:00" in caught.value.detail("en")
        assert caught.value.extensions() == {"opens_at": local(8, 0).isoformat()}

    def test_a_walk_in_is_never_too_early(self) -> None:
        assert rules.check_can_check_in(
            POLICY, facts(slot=time(11, 30)), today=DAY, now=local(8, 0), walk_in=True
        )

    def test_a_shorter_window_by_policy(self) -> None:
        policy = rules.Policy(check_in_minutes_before=15)
        with pytest.raises(rules.CheckInTooEarly):
            rules.check_can_check_in(policy, facts(), today=DAY, now=local(8, 44))
        assert rules.check_can_check_in(policy, facts(), today=DAY, now=local(8, 45))

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (S.CANCELLED, rules.AppointmentCancelled),
            (S.EXPIRED, rules.AppointmentCancelled),
            (S.HELD, rules.AppointmentUnpaid),
            (S.COMPLETED, rules.VoucherUsed),
            (S.NO_SHOW, rules.CheckInClosed),
        ],
    )
    def test_statuses_that_cannot_check_in(self, status: S, error: type[Exception]) -> None:
        with pytest.raises(error):
            rules.check_can_check_in(POLICY, facts(status), today=DAY, now=local(9))

    def test_already_checked_in_is_harmless_at_any_time(self) -> None:
        for now in (local(9), local(13)):
            assert (
                rules.check_can_check_in(POLICY, facts(S.CHECKED_IN), today=DAY, now=now) is False
            )

    @pytest.mark.parametrize("day", [DAY - timedelta(days=1), DAY + timedelta(days=1)])
    def test_another_days_voucher_is_refused(self, day: date) -> None:
        with pytest.raises(rules.VoucherOtherDay) as caught:
            rules.check_can_check_in(POLICY, facts(day=day), today=DAY, now=local(9))
        assert f"{day.month}月{day.day}日" in caught.value.detail("zh-CN")


class TestVoucherAndCode:
    def test_payload_of_another_hospital_is_invalid(self) -> None:
        aid = uuid.uuid4()
        hid = uuid.uuid4()
        assert (
            rules.voucher_appointment_id({"aid": str(aid), "hid": str(hid)}, hospital_id=hid) == aid
        )
        with pytest.raises(rules.VoucherInvalid):
            rules.voucher_appointment_id({"aid": str(aid), "hid": "x"}, hospital_id=hid)
        with pytest.raises(rules.VoucherInvalid):
            rules.voucher_appointment_id({"aid": "not-a-uuid", "hid": str(hid)}, hospital_id=hid)

    @pytest.mark.parametrize(
        ("typed", "ok"), [("5678", True), ("1234", False), ("678", False), ("56 78", False)]
    )
    def test_phone_digits(self, typed: str, ok: bool) -> None:
        assert rules.phone_digits_match("139****5678", typed) is ok

    def test_five_wrong_digits_for_one_code_lock_that_code_for_a_while(self) -> None:
        now = T0
        four = [now - timedelta(minutes=m) for m in (1, 2, 3, 4)]
        rules.check_attempts(POLICY, client_failures=[], code_failures=four, now=now)
        five = [*four, now - timedelta(minutes=14)]
        with pytest.raises(rules.CodeLocked) as caught:
            rules.check_attempts(POLICY, client_failures=[], code_failures=five, now=now)
        assert caught.value.extensions() == {"retry_after": 60}
        # The oldest failure ages out of the 15-minute lockout.
        later = now + timedelta(minutes=1, seconds=1)
        rules.check_attempts(POLICY, client_failures=[], code_failures=five, now=later)

    @pytest.mark.parametrize(
        ("failures", "since_last", "refused_for"),
        [
            (4, 0.0, None),  # under the limit: no wait at all
            (5, 0.0, 1),  # at the limit: one second after the latest failure
            (5, 1.0, None),
            (6, 1.5, 1),  # then 2 s
            (7, 3.0, 1),  # 4 s
            (8, 0.0, 8),
            (20, 30.0, 30),  # capped at a minute
            (20, 60.0, None),
        ],
    )
    def test_a_kiosk_with_many_wrong_codes_is_slowed_never_locked(
        self, failures: int, since_last: float, refused_for: int | None
    ) -> None:
        latest = T0
        seen = [latest - timedelta(seconds=10 * i) for i in range(failures)]
        now = latest + timedelta(seconds=since_last)
        if refused_for is None:
            rules.check_attempts(POLICY, client_failures=seen, code_failures=[], now=now)
            return
        with pytest.raises(rules.TooManyAttempts) as caught:
            rules.check_attempts(POLICY, client_failures=seen, code_failures=[], now=now)
        assert caught.value.extensions() == {"retry_after": refused_for}


class TestPriorityAndBatches:
    @pytest.mark.parametrize(
        ("birth", "expected"),
        [(date(1956, 11, 23), P.ELDERLY), (date(1956, 11, 24), None), (date(1990, 1, 1), None)],
    )
    def test_elderly_from_the_configured_age(self, birth: date, expected: P | None) -> None:
        assert rules.automatic_priority(POLICY, birth_date=birth, visit_date=DAY) is expected

    def test_elderly_off_by_policy(self) -> None:
        policy = rules.Policy(priority_classes=(P.EMERGENCY,))
        assert rules.automatic_priority(policy, birth_date=date(1930, 1, 1), visit_date=DAY) is None
        with pytest.raises(rules.PriorityNotEnabled):
            rules.check_priority(policy, P.MILITARY)

    @pytest.mark.parametrize(
        ("own", "late", "being_called", "expected"),
        [
            (0, False, 3, 0),  # on time keeps its own batch
            (0, True, None, 0),  # nobody called yet: nothing to lose
            (0, True, 3, 3),  # late: the end of the batch being called
            (5, True, 3, 5),  # never pushed back before its own batch
        ],
    )
    def test_joining_batch(
        self, own: int, late: bool, being_called: int | None, expected: int
    ) -> None:
        assert rules.joining_batch(own, late=late, being_called=being_called) == expected

    def test_the_batch_being_called_ignores_priority_calls(self) -> None:
        assert rules.current_batch([]) is None
        assert rules.current_batch([(1, None), (2, None), (7, P.EMERGENCY)]) == 2

    @pytest.mark.parametrize(
        ("slots", "ordinal", "batch"), [(1, 0, 0), (1, 3, 3), (2, 3, 1), (2, 4, 2)]
    )
    def test_batch_of_slots(self, slots: int, ordinal: int, batch: int) -> None:
        assert rules.batch_of(rules.Policy(batch_slots=slots), ordinal) == batch

    @pytest.mark.parametrize(
        ("grace", "now", "late"),
        [(0, local(9, 29), False), (0, local(9, 30), True), (10, local(9, 35), False)],
    )
    def test_late_after_the_slot_and_the_grace(self, grace: int, now: datetime, late: bool) -> None:
        policy = rules.Policy(late_grace_minutes=grace)
        assert rules.is_late(policy, slot_end=local(9, 30), now=now) is late


def entry(
    name: str, batch: int, minute: int, number: int, priority: P | None = None
) -> rules.QueueEntry:
    return rules.QueueEntry(
        visit_id=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        batch=batch,
        queued_at=T0 + timedelta(minutes=minute),
        queue_number=number,
        priority=priority,
    )


def names(line: list[rules.QueueEntry], cast: dict[uuid.UUID, str]) -> list[str]:
    return [cast[e.visit_id] for e in line]


def test_at_the_same_instant_a_booked_visit_goes_before_a_walk_in_numbered_lower() -> None:
    # Walk-in 现1 and booked no. 2 join the same batch at the same instant: the walk-in's
    # own series says nothing against booked numbers.
    booked = entry("booked", 0, 0, 2)
    walk_in = replace(entry("walk-in", 0, 0, 1), walk_in=True)
    line = rules.order(rules.Policy(), [walk_in, booked])
    assert [e.visit_id for e in line] == [booked.visit_id, walk_in.visit_id]


ORDER_CASES = [
    pytest.param(
        [("a", 1, 5, 3), ("b", 0, 9, 2), ("c", 0, 1, 1)],
        ["c", "b", "a"],
        id="by slot, then check-in time",
    ),
    pytest.param(
        [("a", 0, 5, 2), ("b", 0, 5, 1)], ["b", "a"], id="same instant: the queue number decides"
    ),
    pytest.param(
        [("a", 0, 1, 1), ("old", 3, 9, 9, P.ELDERLY), ("er", 5, 20, 12, P.EMERGENCY)],
        ["er", "old", "a"],
        id="priority classes first, highest class first",
    ),
    pytest.param(
        [("a", 0, 1, 1), ("b", 1, 2, 5), ("late", 0, 40, 2), ("c", 1, 3, 6)],
        ["a", "late", "b", "c"],
        id="late, nobody called: keeps its own batch",
    ),
    pytest.param(
        [("walk", 2, 1, 20), ("booked", 2, 2, 7)],
        ["walk", "booked"],
        id="walk-ins and booked patients share one line",
    ),
]


class TestOrdering:
    @pytest.mark.parametrize(("entries", "expected"), ORDER_CASES)
    def test_order(self, entries: list[tuple[object, ...]], expected: list[str]) -> None:
        made = [entry(*e) for e in entries]  # type: ignore[arg-type]
        cast = {e.visit_id: str(row[0]) for e, row in zip(made, entries, strict=True)}
        assert names(rules.order(POLICY, made), cast) == expected

    def test_late_arrival_joins_the_end_of_the_batch_being_called_not_the_end_of_the_day(
        self,
    ) -> None:
        # Batch 2 is being called; batches 2..5 wait. A patient of batch 0 arrives late.
        waiting = [entry(f"w{b}", b, b, 10 + b) for b in (2, 2, 3, 4, 5)]
        waiting[1] = entry("w2b", 2, 3, 13)
        line = rules.order(POLICY, waiting)
        batch = rules.joining_batch(0, late=True, being_called=2)
        late = entry("late", batch, 50, 1)
        joined = rules.join(POLICY, line, late)
        assert rules.people_ahead(joined, late.visit_id) == 2
        assert [e.batch for e in joined] == [2, 2, 2, 3, 4, 5]

    def test_a_later_arrival_never_overtakes_someone_ahead_by_rule_after_a_move(self) -> None:
        a, b, c = entry("a", 0, 1, 1), entry("b", 1, 2, 2), entry("c", 5, 3, 3)
        line = rules.move(rules.order(POLICY, [a, b, c]), c.visit_id, before=a.visit_id)
        assert line == [c, a, b]
        d = entry("d", 0, 9, 4)
        assert rules.join(POLICY, line, d) == [c, a, d, b]

    def test_skipped_patient_rejoins_behind_the_batch(self) -> None:
        a, b, c = entry("a", 2, 1, 1), entry("b", 2, 2, 2), entry("c", 3, 3, 3)
        skipped = rules.requeue(entry("s", 1, 0, 9), batch=2, at=T0 + timedelta(minutes=30))
        assert rules.join(POLICY, [a, b, c], skipped) == [a, b, skipped, c]


class TestMoves:
    def test_before_and_after(self) -> None:
        a, b, c, d = (entry(n, 0, i, i) for i, n in enumerate("abcd"))
        line = [a, b, c, d]
        assert rules.move(line, d.visit_id, before=b.visit_id) == [a, d, b, c]
        assert rules.move(line, a.visit_id, after=c.visit_id) == [b, c, a, d]
        assert rules.move(line, b.visit_id, after=a.visit_id) == line

    @pytest.mark.parametrize("how", ["self", "stranger", "both", "neither", "absent"])
    def test_invalid_moves(self, how: str) -> None:
        a, b = entry("a", 0, 1, 1), entry("b", 0, 2, 2)
        stranger = uuid.uuid4()
        kwargs: dict[str, uuid.UUID | None] = {
            "self": {"before": a.visit_id},
            "stranger": {"before": stranger},
            "both": {"before": b.visit_id, "after": b.visit_id},
            "neither": {},
            "absent": {"before": a.visit_id},
        }[how]  # type: ignore[assignment]
        moving = stranger if how == "absent" else a.visit_id
        with pytest.raises(rules.InvalidMove):
            rules.move([a, b], moving, **kwargs)


class TestEstimate:
    @pytest.mark.parametrize(
        ("ahead", "durations", "minutes"),
        [
            (0, [], 0),
            (3, [], 23),  # fallback: 30-minute slots of 4 places, 7.5 minutes each, rounded up
            (3, [5, 6], 23),  # two consultations are not enough to trust
            (3, [5, 6, 100], 18),  # the median, not the mean: one long case does not count
            (2, [4, 8, 10, 12], 18),
        ],
    )
    def test_estimated_wait(self, ahead: int, durations: list[int], minutes: int) -> None:
        wait = rules.estimated_wait(
            POLICY,
            ahead=ahead,
            durations=[timedelta(minutes=m) for m in durations],
            slot_minutes=30,
            places_per_slot=4,
        )
        assert rules.whole_minutes(wait) == minutes


class TestVisitStateMachine:
    @pytest.mark.parametrize(
        ("status", "action", "after"),
        [
            (V.WAITING, "call", V.CALLED),
            (V.CALLED, "recall", V.CALLED),
            (V.CALLED, "skip", V.SKIPPED),
            (V.SKIPPED, "recall", V.CALLED),
            (V.CALLED, "start", V.IN_CONSULTATION),
            (V.IN_CONSULTATION, "finish", V.FINISHED),
        ],
    )
    def test_allowed(self, status: V, action: str, after: V) -> None:
        assert rules.visit_transition(status, action) is after

    @pytest.mark.parametrize(
        ("status", "action"),
        [(V.WAITING, "finish"), (V.WAITING, "skip"), (V.FINISHED, "call"), (V.CALLED, "move")],
    )
    def test_refused_with_a_readable_sentence(self, status: V, action: str) -> None:
        with pytest.raises(rules.InvalidVisitTransition) as caught:
            rules.visit_transition(status, action)
        assert "'" in caught.value.detail("en")
        assert "不能" in caught.value.detail("zh-CN")


class TestWalkInNumbers:
    @pytest.mark.parametrize(
        ("taken", "expected"), [([], 1), ([1], 2), ([2, 1, 3], 4), ([1, 2, 5], 6)]
    )
    def test_the_next_walk_in_follows_the_highest_given(
        self, taken: list[int], expected: int
    ) -> None:
        assert rules.next_walk_in_number(taken) == expected

    def test_walk_in_numbers_are_marked_and_booked_numbers_are_not(self) -> None:
        assert rules.queue_label(3, walk_in=False, locale="zh-CN") == "3"
        assert rules.queue_label(3, walk_in=True, locale="zh-CN") == "现3"
        assert rules.queue_label(3, walk_in=True, locale="en") == "W3"


class TestOnScreen:
    @pytest.mark.parametrize(
        ("now", "busy", "shown"),
        [
            (time(7, 0), False, True),  # an hour before 08:00: check-in opens
            (time(6, 59), False, False),
            (time(11, 59), False, True),
            (time(12, 0), False, False),  # over, nobody left
            (time(13, 0), True, True),  # over, but someone still waits or is called
        ],
    )
    def test_a_session_is_on_the_screen_while_it_runs_or_anyone_waits(
        self, now: time, busy: bool, shown: bool
    ) -> None:
        assert rules.on_screen(start=time(8, 0), end=time(12, 0), now=now, busy=busy) is shown
