"""The T+1 reconciliation rule, table-driven and without a database."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from yuyue.payments.gateway import Provider, Statement, StatementKind, StatementLine
from yuyue.payments.reconcile import (
    Action,
    DiscrepancyKind,
    LocalCharge,
    LocalRefund,
    ReconciliationResult,
    Side,
    Totals,
    automatic_refund_no,
    business_day,
    business_day_window,
    reconcile,
)

DAY = date(2026, 11, 20)
# 10:00 in Shanghai on DAY.
MORNING = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# The day's last and the next day's first instant, as UTC.
LAST_SECOND = datetime(2026, 11, 20, 15, 59, 59, 900_000, tzinfo=UTC)
NEXT_MIDNIGHT = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
APPOINTMENT = uuid.UUID(int=1)


def charge(
    no: str,
    fen: int = 5000,
    *,
    txn: str | None = "default",
    at: datetime = MORNING,
    booked: bool = True,
    appointment: uuid.UUID | None = APPOINTMENT,
    refunded: int = 0,
) -> LocalCharge:
    return LocalCharge(
        out_trade_no=no,
        transaction_id=f"T-{no}" if txn == "default" else txn,
        amount_fen=fen,
        paid_at=at,
        appointment_id=appointment,
        booked=booked,
        refunded_fen=refunded,
    )


def refund(
    no: str, order: str, fen: int, *, rid: str | None = "default", at: datetime = MORNING
) -> LocalRefund:
    return LocalRefund(
        out_refund_no=no,
        out_trade_no=order,
        refund_id=f"R-{no}" if rid == "default" else rid,
        amount_fen=fen,
        succeeded_at=at,
    )


def paid(
    no: str, fen: int = 5000, *, txn: str | None = None, at: datetime = MORNING
) -> StatementLine:
    return StatementLine(
        kind=StatementKind.PAYMENT,
        out_trade_no=no,
        transaction_id=txn or f"T-{no}",
        amount_fen=fen,
        at=at,
    )


def refunded(
    no: str,
    order: str,
    fen: int,
    *,
    rid: str | None = None,
    ours: str | None = "default",
    txn: str | None = None,
    at: datetime = MORNING,
) -> StatementLine:
    return StatementLine(
        kind=StatementKind.REFUND,
        out_trade_no=order,
        transaction_id=txn or f"T-{order}",
        amount_fen=fen,
        at=at,
        out_refund_no=no if ours == "default" else ours,
        refund_id=rid or f"R-{no}",
    )


def run(
    lines: list[StatementLine],
    charges: list[LocalCharge] = [],  # noqa: B006 - never mutated
    refunds: list[LocalRefund] = [],  # noqa: B006
    also_seen: list[StatementLine] = [],  # noqa: B006
    bill_date: date = DAY,
) -> ReconciliationResult:
    return reconcile(
        statement=Statement(provider=Provider.WECHATPAY, bill_date=bill_date, lines=tuple(lines)),
        charges=charges,
        refunds=refunds,
        also_seen=also_seen,
    )


class TestBusinessDay:
    @pytest.mark.parametrize(
        ("instant", "day"),
        [
            (LAST_SECOND, DAY),  # 23:59:59.9 in Shanghai
            (datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC), DAY),  # 23:59:59
            (NEXT_MIDNIGHT, DAY + timedelta(days=1)),  # 00:00:00 the next day
            (datetime(2026, 11, 19, 16, 0, tzinfo=UTC), DAY),  # 00:00:00 on DAY
            (datetime(2026, 11, 19, 15, 59, 59, tzinfo=UTC), DAY - timedelta(days=1)),
        ],
    )
    def test_instants_fall_on_shanghai_calendar_days(self, instant: datetime, day: date) -> None:
        assert business_day(instant) == day

    def test_window_is_half_open_from_local_midnight_to_local_midnight(self) -> None:
        start, end = business_day_window(DAY)
        assert start == datetime(2026, 11, 19, 16, 0, tzinfo=UTC)
        assert end == NEXT_MIDNIGHT
        assert business_day(start) == DAY
        assert business_day(end) == DAY + timedelta(days=1)
        assert business_day(end - timedelta(microseconds=1)) == DAY

    def test_naive_instants_are_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            business_day(datetime(2026, 11, 20, 12, 0))


@dataclass(frozen=True)
class Case:
    lines: list[StatementLine]
    charges: list[LocalCharge] = field(default_factory=list)
    refunds: list[LocalRefund] = field(default_factory=list)
    also_seen: list[StatementLine] = field(default_factory=list)
    # (kind, action, out_trade_no, out_refund_no, refund_fen) for each discrepancy, in order
    expected: list[tuple[DiscrepancyKind, Action, str, str | None, int]] = field(
        default_factory=list
    )
    elsewhere: tuple[str, ...] = ()


LOCAL_ONLY = DiscrepancyKind.LOCAL_ONLY
PROVIDER_ONLY = DiscrepancyKind.PROVIDER_ONLY
MISMATCH = DiscrepancyKind.AMOUNT_MISMATCH
DUPLICATE = DiscrepancyKind.DUPLICATE_LINE
NO_BOOKING = DiscrepancyKind.NO_BOOKING
REFUND = Action.REFUND_AUTOMATICALLY
LOOK = Action.INVESTIGATE

CASES: dict[str, Case] = {
    "all matched": Case(
        lines=[paid("A"), paid("B", 700), refunded("A1", "A", 5000)],
        charges=[charge("A"), charge("B", 700)],
        refunds=[refund("A1", "A", 5000)],
    ),
    "nothing on either side": Case(lines=[]),
    "we hold it paid, the provider has no line": Case(
        lines=[], charges=[charge("A")], expected=[(LOCAL_ONLY, LOOK, "A", None, 0)]
    ),
    "the provider charged an order we have no record of": Case(
        lines=[paid("X", 3300)], expected=[(PROVIDER_ONLY, REFUND, "X", None, 3300)]
    ),
    "provider-only charge the provider already refunded in part": Case(
        lines=[paid("X", 3300), refunded("X1", "X", 1000)],
        expected=[
            (PROVIDER_ONLY, REFUND, "X", None, 2300),
            (PROVIDER_ONLY, LOOK, "X", "X1", 0),
        ],
    ),
    "provider-only charge the provider refunded in full": Case(
        lines=[paid("X", 3300), refunded("X1", "X", 3300)],
        expected=[(PROVIDER_ONLY, LOOK, "X", None, 0), (PROVIDER_ONLY, LOOK, "X", "X1", 0)],
    ),
    "provider-only charge refunded on the next day's statement": Case(
        lines=[paid("X", 3300)],
        also_seen=[refunded("X1", "X", 3300, at=NEXT_MIDNIGHT)],
        expected=[(PROVIDER_ONLY, LOOK, "X", None, 0)],
    ),
    "amounts differ on a charge": Case(
        lines=[paid("A", 5001)],
        charges=[charge("A", 5000)],
        expected=[(MISMATCH, LOOK, "A", None, 0)],
    ),
    "paid, but the appointment was cancelled and nothing refunded": Case(
        lines=[paid("A")],
        charges=[charge("A", booked=False)],
        expected=[(NO_BOOKING, REFUND, "A", None, 5000)],
    ),
    "paid, but the appointment is gone": Case(
        lines=[paid("A")],
        charges=[charge("A", appointment=None, booked=False)],
        expected=[(NO_BOOKING, REFUND, "A", None, 5000)],
    ),
    "cancelled and refunded in part: the rest goes back": Case(
        lines=[paid("A"), refunded("A1", "A", 2000)],
        charges=[charge("A", booked=False, refunded=2000)],
        refunds=[refund("A1", "A", 2000)],
        expected=[(NO_BOOKING, REFUND, "A", None, 3000)],
    ),
    "cancelled and refunded in full: nothing to do": Case(
        lines=[paid("A"), refunded("A1", "A", 5000)],
        charges=[charge("A", booked=False, refunded=5000)],
        refunds=[refund("A1", "A", 5000)],
    ),
    "a charge listed twice": Case(
        lines=[paid("A"), paid("A")],
        charges=[charge("A")],
        expected=[(DUPLICATE, LOOK, "A", None, 0)],
    ),
    "a charge we don't know, listed twice, is refunded once": Case(
        lines=[paid("X", 800), paid("X", 800)],
        expected=[(PROVIDER_ONLY, REFUND, "X", None, 800), (DUPLICATE, LOOK, "X", None, 0)],
    ),
    "the patient paid twice for one order": Case(
        lines=[paid("A"), paid("A", txn="T-A-second")],
        charges=[charge("A")],
        expected=[(PROVIDER_ONLY, REFUND, "A", None, 5000)],
    ),
    "paid twice, the second charge already refunded by the provider": Case(
        lines=[paid("A"), paid("A", txn="T-2"), refunded("A9", "A", 5000, txn="T-2")],
        charges=[charge("A")],
        expected=[(PROVIDER_ONLY, LOOK, "A", None, 0), (PROVIDER_ONLY, LOOK, "A", "A9", 0)],
    ),
    "our charge without the provider's id still matches by order": Case(
        lines=[paid("A")], charges=[charge("A", txn=None)]
    ),
    "two refunds in part, both matched": Case(
        lines=[paid("A", 10000), refunded("A1", "A", 2500), refunded("A2", "A", 7500)],
        charges=[charge("A", 10000)],
        refunds=[refund("A1", "A", 2500), refund("A2", "A", 7500)],
    ),
    "refund amounts differ": Case(
        lines=[paid("A"), refunded("A1", "A", 1500)],
        charges=[charge("A")],
        refunds=[refund("A1", "A", 2000)],
        expected=[(MISMATCH, LOOK, "A", "A1", 0)],
    ),
    "we hold a refund as succeeded, the provider has no line": Case(
        lines=[paid("A")],
        charges=[charge("A")],
        refunds=[refund("A1", "A", 2000)],
        expected=[(LOCAL_ONLY, LOOK, "A", "A1", 0)],
    ),
    "the provider refunded what we never asked": Case(
        lines=[paid("A"), refunded("Z1", "A", 2000)],
        charges=[charge("A")],
        expected=[(PROVIDER_ONLY, LOOK, "A", "Z1", 0)],
    ),
    "a refund line without our number matches by the provider's id": Case(
        lines=[paid("A"), refunded("A1", "A", 2000, ours=None)],
        charges=[charge("A")],
        refunds=[refund("A1", "A", 2000)],
    ),
    "a refund listed twice": Case(
        lines=[paid("A"), refunded("A1", "A", 2000), refunded("A1", "A", 2000)],
        charges=[charge("A")],
        refunds=[refund("A1", "A", 2000)],
        expected=[(DUPLICATE, LOOK, "A", "A1", 0)],
    ),
    "paid at 23:59:59.9, settled on the next day's statement": Case(
        lines=[],
        charges=[charge("A", at=LAST_SECOND)],
        also_seen=[paid("A", at=NEXT_MIDNIGHT)],
        elsewhere=("A",),
    ),
    "late settlement without the neighbour's lines is local-only": Case(
        lines=[],
        charges=[charge("A", at=LAST_SECOND)],
        expected=[(LOCAL_ONLY, LOOK, "A", None, 0)],
    ),
    "refund settled on the next day's statement": Case(
        lines=[paid("A")],
        charges=[charge("A")],
        refunds=[refund("A1", "A", 5000, at=LAST_SECOND)],
        also_seen=[refunded("A1", "A", 5000, at=NEXT_MIDNIGHT)],
        elsewhere=("A1",),
    ),
    "our records of neighbouring days are not this day's local-only": Case(
        lines=[paid("A")],
        charges=[
            charge("A"),
            charge("B", at=NEXT_MIDNIGHT),
            charge("C", at=MORNING - timedelta(days=1)),
        ],
        refunds=[refund("B1", "B", 100, at=NEXT_MIDNIGHT)],
    ),
    "a line for yesterday's record of ours matches it": Case(
        lines=[paid("C", at=datetime(2026, 11, 19, 16, 0, 0, 300_000, tzinfo=UTC))],
        charges=[charge("C", at=datetime(2026, 11, 19, 15, 59, 59, 800_000, tzinfo=UTC))],
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_discrepancies(case: Case) -> None:
    result = run(case.lines, case.charges, case.refunds, case.also_seen)
    found = [
        (item.kind, item.action, item.out_trade_no, item.out_refund_no, item.refund_fen)
        for item in result.discrepancies
    ]
    assert found == case.expected
    assert result.balanced is (not case.expected)
    assert result.settled_on_neighbouring_day == case.elsewhere
    assert result.to_refund == tuple(item for item in result.discrepancies if item.action is REFUND)
    assert all(item.refund_fen > 0 for item in result.to_refund)


class TestTotals:
    def test_exact_fen_totals_for_each_side_and_the_net(self) -> None:
        amounts = [1, 99, 100, 5000, 12345, 999_999]
        lines = [paid(f"P{i}", fen) for i, fen in enumerate(amounts)]
        lines += [refunded("P4-1", "P4", 45), refunded("P5-1", "P5", 999_998)]
        charges = [charge(f"P{i}", fen) for i, fen in enumerate(amounts)]
        refunds = [refund("P4-1", "P4", 45), refund("P5-1", "P5", 999_998)]

        result = run(lines, charges, refunds)

        expected = Side(Totals(6, 1_017_544), Totals(2, 1_000_043))
        assert result.ours == expected
        assert result.theirs == expected
        assert result.matched == expected
        assert result.ours.net_fen == result.theirs.net_fen == 17_501
        assert result.balanced

    def test_theirs_counts_every_line_matched_counts_pairs(self) -> None:
        result = run(
            [paid("A", 5000), paid("A", 5000), paid("X", 300), refunded("A1", "A", 1000)],
            [charge("A", 5000), charge("L", 200)],
            [refund("A1", "A", 900)],
        )
        assert result.theirs == Side(Totals(3, 10_300), Totals(1, 1000))
        assert result.ours == Side(Totals(2, 5200), Totals(1, 900))
        assert result.matched == Side(Totals(1, 5000), Totals(1, 1000))
        assert result.theirs.net_fen == 9300
        assert result.ours.net_fen == 4300
        kinds = sorted(item.kind for item in result.discrepancies)
        assert kinds == sorted([DUPLICATE, PROVIDER_ONLY, MISMATCH, LOCAL_ONLY])

    def test_amount_mismatch_carries_both_amounts(self) -> None:
        (item,) = run([paid("A", 5001)], [charge("A", 5000)]).discrepancies
        assert (item.ours_fen, item.theirs_fen) == (5000, 5001)
        assert item.provider_id == "T-A"
        assert item.appointment_id == APPOINTMENT

    def test_local_only_carries_our_instant_and_ids(self) -> None:
        (item,) = run([], [charge("A", 4200, at=LAST_SECOND)]).discrepancies
        assert (item.ours_fen, item.theirs_fen, item.at) == (4200, None, LAST_SECOND)
        assert item.line_kind is StatementKind.PAYMENT


class TestAroundMidnight:
    def test_a_late_settlement_is_reported_once_across_both_days(self) -> None:
        ours = [charge("A", at=LAST_SECOND)]
        next_day = [paid("A", at=NEXT_MIDNIGHT)]
        today = run([], ours, also_seen=next_day)
        tomorrow = run(next_day, ours, bill_date=DAY + timedelta(days=1))
        assert today.discrepancies == tomorrow.discrepancies == ()
        assert today.ours.payments == Totals(1, 5000)
        assert today.theirs.payments == Totals()
        assert tomorrow.matched.payments == Totals(1, 5000)
        assert tomorrow.ours.payments == Totals()  # ours belongs to the day we stamped it

    def test_an_amount_that_differs_across_midnight_is_reported_by_the_line_s_day(self) -> None:
        ours = [charge("A", 5000, at=LAST_SECOND)]
        next_day = [paid("A", 4000, at=NEXT_MIDNIGHT)]
        assert run([], ours, also_seen=next_day).discrepancies == ()
        (item,) = run(next_day, ours, bill_date=DAY + timedelta(days=1)).discrepancies
        assert item.kind is MISMATCH


class TestAutomaticRefundNumber:
    def test_same_line_same_number_within_the_providers_format(self) -> None:
        first = run([paid("X", 300)]).discrepancies[0]
        again = run([paid("X", 300)]).discrepancies[0]
        other = run([paid("Y", 300)]).discrepancies[0]
        assert automatic_refund_no(first) == automatic_refund_no(again)
        assert automatic_refund_no(first) != automatic_refund_no(other)
        assert re.fullmatch(r"[0-9A-Za-z_-]{6,32}", automatic_refund_no(first))

    def test_a_second_charge_gets_its_own_number(self) -> None:
        result = run([paid("A"), paid("A", txn="T-2"), paid("A", txn="T-3")], [charge("A")])
        numbers = {automatic_refund_no(item) for item in result.to_refund}
        assert len(numbers) == 2


def test_two_local_records_with_one_number_are_refused() -> None:
    with pytest.raises(ValueError, match="out_trade_no"):
        run([], [charge("A"), charge("A")])
