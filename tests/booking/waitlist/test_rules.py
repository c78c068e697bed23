"""Pure waitlist rules, table-driven, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from yuyue.booking.rules import AlreadyBooked, LimitExceeded, Policy, SessionFacts
from yuyue.booking.waitlist import rules
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.kit import i18n
from yuyue.kit.errors import InvalidState
from yuyue.scheduling.enums import Channel, SessionStatus

W = WaitlistStatus
SESSION = SessionFacts(
    id=uuid.uuid4(),
    date=date(2026, 11, 23),
    start_time=time(13, 30),
    end_time=time(17, 30),
    department_id=uuid.uuid4(),
    doctor_id=None,
    status=SessionStatus.OPEN,
    timezone="Asia/Shanghai",
)
# 13:30 in Shanghai is 05:30 UTC; the default line closes 120 minutes before.
CLOSES = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


class TestClosing:
    @pytest.mark.parametrize(
        ("minutes", "expected"),
        [(120, CLOSES), (0, CLOSES + timedelta(hours=2)), (1440, CLOSES - timedelta(hours=22))],
    )
    def test_the_line_closes_the_configured_time_before_the_start(
        self, minutes: int, expected: datetime
    ) -> None:
        assert rules.closes_at(Policy(waitlist_closes_minutes=minutes), SESSION) == expected

    @pytest.mark.parametrize(
        ("policy", "now", "error"),
        [
            (Policy(), CLOSES - timedelta(seconds=1), None),
            (Policy(), CLOSES, rules.WaitlistClosed),
            (Policy(), CLOSES + timedelta(days=1), rules.WaitlistClosed),
            (Policy(waitlist_enabled=False), CLOSES - timedelta(days=1), rules.WaitlistDisabled),
        ],
    )
    def test_check_open(self, policy: Policy, now: datetime, error: type[Exception] | None) -> None:
        assert rules.is_open(policy, SESSION, now=now) is (error is None)
        if error is None:
            rules.check_open(policy, SESSION, now=now)
        else:
            with pytest.raises(error):
                rules.check_open(policy, SESSION, now=now)

    def test_the_closed_refusal_names_the_local_time(self) -> None:
        with pytest.raises(rules.WaitlistClosed) as refused:
            rules.check_open(Policy(), SESSION, now=CLOSES)
        assert "11月23日 周一 11:30" in refused.value.detail()
        assert refused.value.extensions() == {"closed_at": CLOSES.isoformat()}


OTHER = uuid.uuid4()


class TestJoining:
    @pytest.mark.parametrize(
        ("remaining", "entries", "maximum", "error"),
        [
            (0, [], 3, None),
            (1, [], 3, rules.WaitlistNotNeeded),
            (0, [(SESSION.id, W.WAITING)], 3, rules.AlreadyWaiting),
            (0, [(SESSION.id, W.OFFERED)], 3, rules.AlreadyWaiting),
            # Finished entries neither block a new one nor count against the cap.
            (0, [(SESSION.id, W.LEFT), (SESSION.id, W.LAPSED), (OTHER, W.DECLINED)], 1, None),
            (0, [(OTHER, W.WAITING)], 1, rules.WaitlistFull),
            (0, [(OTHER, W.WAITING), (OTHER, W.OFFERED)], 3, None),
            (
                0,
                [(OTHER, W.WAITING), (OTHER, W.OFFERED), (OTHER, W.WAITING)],
                3,
                rules.WaitlistFull,
            ),
        ],
    )
    def test_check_can_join(
        self,
        remaining: int,
        entries: list[tuple[uuid.UUID, WaitlistStatus]],
        maximum: int,
        error: type[Exception] | None,
    ) -> None:
        facts = [rules.EntryFacts(s, status) for s, status in entries]
        policy = Policy(waitlist_max_active=maximum)
        if error is None:
            rules.check_can_join(policy, SESSION, remaining_for_channel=remaining, entries=facts)
        else:
            with pytest.raises(error):
                rules.check_can_join(
                    policy, SESSION, remaining_for_channel=remaining, entries=facts
                )


ALLOWED = [
    (W.WAITING, "offer", W.OFFERED),
    (W.WAITING, "leave", W.LEFT),
    (W.WAITING, "skip", W.SKIPPED),
    (W.WAITING, "close", W.CLOSED),
    (W.OFFERED, "accept", W.ACCEPTED),
    (W.OFFERED, "decline", W.DECLINED),
    (W.OFFERED, "lapse", W.LAPSED),
    (W.OFFERED, "close", W.CLOSED),
    (W.ACCEPTED, "lapse", W.LAPSED),
]
ACTIONS = ["offer", "leave", "skip", "close", "accept", "decline", "lapse"]


class TestStates:
    def test_the_table_holds_exactly_the_allowed_pairs(self) -> None:
        assert {(s, a): new for s, a, new in ALLOWED} == rules.TRANSITIONS

    @pytest.mark.parametrize(
        ("status", "action"),
        [(s, a) for s in W for a in ACTIONS if not any(s is x and a == y for x, y, _ in ALLOWED)],
    )
    def test_every_other_pair_is_a_wrong_state(self, status: WaitlistStatus, action: str) -> None:
        with pytest.raises(InvalidState):
            rules.transition(status, action)

    def test_only_waiting_and_offered_entries_are_active(self) -> None:
        assert [s for s in W if rules.is_active(s)] == [W.WAITING, W.OFFERED]

    def test_every_status_has_a_sentence_in_both_languages(self) -> None:
        for locale in i18n.LOCALES:
            for status in W:
                key = f"waitlist_status.{status.value}"
                assert i18n.translate(key, locale) != key


class TestOffering:
    @pytest.mark.parametrize(
        ("pool", "channels"),
        [
            ("appointment", {c for c in Channel if c not in (Channel.WINDOW, Channel.KIOSK)}),
            ("onsite", {Channel.WINDOW, Channel.KIOSK}),
            ("wechat", {Channel.WECHAT}),
            ("reserved", set()),
        ],
    )
    def test_a_returned_place_goes_only_to_channels_that_could_book_it(
        self, pool: str, channels: set[Channel]
    ) -> None:
        assert set(rules.channels_for_pool(pool)) == channels

    def test_offer_deadline_and_the_hold_for_payment(self) -> None:
        now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        policy = Policy(waitlist_offer_minutes=45, hold_minutes=15)
        offer = rules.offer_expires_at(policy, now=now)
        assert offer == now + timedelta(minutes=45)
        # Accepted early, the offer's own deadline is longer than a hold.
        assert rules.paid_hold_expires_at(policy, offer_expires=offer, now=now) == offer
        late = offer - timedelta(minutes=1)
        assert rules.paid_hold_expires_at(policy, offer_expires=offer, now=late) == late + (
            timedelta(minutes=15)
        )

    @pytest.mark.parametrize(
        ("refusal", "reason"),
        [
            (LimitExceeded(limit="per_day", maximum=2), "limit_exceeded:per_day"),
            (AlreadyBooked(), "already_booked"),
        ],
    )
    def test_skip_reasons_are_refusal_codes(self, refusal: Exception, reason: str) -> None:
        assert rules.skip_reason(refusal) == reason  # type: ignore[arg-type]

    def test_position_in_line_orders_by_join_time_then_id(self) -> None:
        at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
        a, b = sorted([uuid.uuid4(), uuid.uuid4()])
        line = [(at, b), (at - timedelta(seconds=1), a), (at, a)]
        assert rules.position_in_line((at - timedelta(seconds=1), a), line) == 1
        assert rules.position_in_line((at, a), line) == 2
        assert rules.position_in_line((at, b), line) == 3
