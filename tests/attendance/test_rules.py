"""Pure no-show rules, table-driven: when a booking is a no-show, when no-shows make a ban,
how long it lasts, and what an appeal may say."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from yuyue.attendance import rules
from yuyue.attendance.rules import NoShow, Policy, PriorBan

# 2026-11-20 10:00 in Shanghai.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
TZ = "Asia/Shanghai"


def no_shows(*days: date) -> list[NoShow]:
    return [NoShow(uuid.uuid4(), d) for d in days]


class TestWhenABookingIsANoShow:
    @pytest.mark.parametrize(
        ("session_date", "end", "grace", "due"),
        [
            (date(2026, 11, 19), time(17, 0), 30, True),  # yesterday
            (date(2026, 11, 20), time(9, 30), 30, True),  # ended 30 minutes ago: exactly due
            (date(2026, 11, 20), time(9, 31), 30, False),  # 29 minutes ago: within grace
            (date(2026, 11, 20), time(9, 59), 0, True),  # no grace
            (date(2026, 11, 20), time(12, 0), 30, False),  # still running
            (date(2026, 11, 21), time(8, 0), 0, False),  # tomorrow
        ],
    )
    def test_due_once_the_session_ended_plus_the_grace(
        self, session_date: date, end: time, grace: int, due: bool
    ) -> None:
        cutoff = rules.due_cutoff(NOW, grace_minutes=grace, tz=TZ)
        assert rules.is_due(session_date, end, cutoff) is due

    def test_the_cutoff_is_the_hospitals_local_time(self) -> None:
        assert rules.due_cutoff(NOW, grace_minutes=30, tz=TZ) == (TODAY, time(9, 30))
        # 00:10 local minus 30 minutes is the evening before.
        just_after_midnight = datetime(2026, 11, 20, 16, 10, tzinfo=UTC)
        assert rules.due_cutoff(just_after_midnight, grace_minutes=30, tz=TZ) == (
            date(2026, 11, 20),
            time(23, 40),
        )


class TestWhenNoShowsMakeABan:
    @pytest.mark.parametrize(
        ("days_ago", "banned"),
        [
            ((1, 2), False),  # below the threshold
            ((1, 2, 3), True),  # at the threshold
            ((1, 2, 364), True),  # the oldest just inside the window
            ((1, 2, 365), False),  # the oldest just outside
            ((1, 2, 3, 4), True),
        ],
    )
    def test_threshold_within_the_rolling_window(
        self, days_ago: tuple[int, ...], banned: bool
    ) -> None:
        found = no_shows(*(TODAY - timedelta(days=n) for n in days_ago))
        decision = rules.decide_ban(Policy(), found, [], today=TODAY, now=NOW)
        assert (decision is not None) is banned

    def test_a_first_ban_starts_now_and_lasts_the_first_length(self) -> None:
        found = no_shows(date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16))
        decision = rules.decide_ban(Policy(), found, [], today=TODAY, now=NOW)
        assert decision is not None
        assert (decision.step, decision.days) == (1, 180)
        assert decision.starts_at == NOW
        assert decision.ends_at == NOW + timedelta(days=180)
        assert decision.visit_dates == [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]

    def test_no_shows_an_earlier_ban_counted_never_count_again(self) -> None:
        found = no_shows(date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16))
        decision = rules.decide_ban(Policy(), found, [], today=TODAY, now=NOW)
        assert decision is not None
        earlier = PriorBan(
            decision.starts_at,
            decision.ends_at,
            None,
            frozenset(n.appointment_id for n in decision.counted),
        )
        assert rules.decide_ban(Policy(), found, [earlier], today=TODAY, now=NOW) is None

    @pytest.mark.parametrize(
        ("ban_days", "earlier_bans", "expected_days"),
        [
            ((180, 360), 0, 180),
            ((180, 360), 1, 360),
            ((180, 360), 2, 360),  # the last length repeats
            ((90,), 3, 90),
            ((30, 60, 120), 2, 120),
        ],
    )
    def test_escalation_within_the_window(
        self, ban_days: tuple[int, ...], earlier_bans: int, expected_days: int
    ) -> None:
        policy = Policy(ban_days=ban_days)
        prior = [
            PriorBan(
                NOW - timedelta(days=300 - i),
                NOW - timedelta(days=200 - i),
                None,
                frozenset({uuid.uuid4()}),
            )
            for i in range(earlier_bans)
        ]
        decision = rules.decide_ban(
            policy, no_shows(TODAY, TODAY, TODAY), prior, today=TODAY, now=NOW
        )
        assert decision is not None
        assert decision.days == expected_days
        assert decision.step == earlier_bans + 1

    def test_a_ban_older_than_the_window_or_lifted_on_appeal_does_not_escalate(self) -> None:
        old = PriorBan(NOW - timedelta(days=400), NOW - timedelta(days=220), None)
        lifted = PriorBan(NOW - timedelta(days=10), NOW + timedelta(days=170), NOW)
        decision = rules.decide_ban(
            Policy(), no_shows(TODAY, TODAY, TODAY), [old, lifted], today=TODAY, now=NOW
        )
        assert decision is not None
        assert (decision.step, decision.days) == (1, 180)
        assert decision.starts_at == NOW  # the lifted ban is not in force

    def test_a_ban_made_during_another_starts_when_that_one_ends(self) -> None:
        current = PriorBan(NOW - timedelta(days=10), NOW + timedelta(days=170), None)
        decision = rules.decide_ban(
            Policy(), no_shows(TODAY, TODAY, TODAY), [current], today=TODAY, now=NOW
        )
        assert decision is not None
        assert decision.starts_at == current.ends_at
        assert decision.ends_at == current.ends_at + timedelta(days=360)

    def test_the_reason_names_the_missed_days_in_both_languages(self) -> None:
        found = no_shows(date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16))
        decision = rules.decide_ban(Policy(), found, [], today=TODAY, now=NOW)
        assert decision is not None
        assert rules.ban_reason(decision, Policy()) == (
            "365 天内爽约 3 次（11月2日 周一、11月9日 周一、11月16日 周一）"
        )
        assert rules.ban_reason(decision, Policy(), "en") == (
            "3 missed visits within 365 days (Mon 2 Nov, Mon 9 Nov, Mon 16 Nov)"
        )


class TestPolicyInput:
    @pytest.mark.parametrize("days", [[], [0], [3651], [180, 90], [1, 2, 3, 4, 5, 6]])
    def test_bad_ban_lengths_are_refused(self, days: list[int]) -> None:
        with pytest.raises(ValueError, match="ban"):
            rules.check_ban_days(days)

    @pytest.mark.parametrize("days", [[1], [180, 360], [90, 90, 180, 365, 3650]])
    def test_good_ban_lengths(self, days: list[int]) -> None:
        assert rules.check_ban_days(days) == tuple(days)


class TestAppeals:
    @pytest.mark.parametrize(
        ("text", "ok"),
        [
            ("那天急诊住院了", True),
            ("  I was admitted to hospital that day.  ", True),
            ("line one\nline two", True),
            ("短", False),
            ("    ", False),
            ("x" * 1001, False),
            ("x" * 1000, True),
            ("bad\x00text here", False),
            ("bell\x07 in it", False),
        ],
    )
    def test_appeal_text(self, text: str, ok: bool) -> None:
        if ok:
            assert rules.check_appeal_text(text) == text.strip()
        else:
            with pytest.raises(rules.InvalidAppeal):
                rules.check_appeal_text(text)

    @pytest.mark.parametrize(
        ("accept", "note", "result"),
        [(True, None, None), (True, " ok ", "ok"), (False, "证明不清晰", "证明不清晰")],
    )
    def test_decision_notes(self, accept: bool, note: str | None, result: str | None) -> None:
        assert rules.check_decision(accept=accept, note=note) == result

    @pytest.mark.parametrize("note", [None, "", "   "])
    def test_a_rejection_needs_a_reason(self, note: str | None) -> None:
        with pytest.raises(rules.DecisionNoteRequired):
            rules.check_decision(accept=False, note=note)
