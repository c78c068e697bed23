"""T+1 reconciliation (对账): our records of one provider's business day against its statement.

Pure: plain values in, a result out; no database, no network, no clock. The caller loads our
charges and refunds, downloads the provider's statement (and, for the records that cross
midnight, its neighbouring days' statements) and acts on the result: a discrepancy whose
action is REFUND_AUTOMATICALLY becomes a refund of `refund_fen`, logged; the rest are listed
for finance.

The business day. Providers cut their statements by Asia/Shanghai calendar days: a payment
at 23:59:59 local belongs to that day, one at 00:00:00 to the next. Our instants are aware
UTC, so the day of a record is `business_day(instant)`, and the day's half-open window of
instants is `business_day_window(day)` (16:00 UTC the evening before to 16:00 UTC).

Records around midnight. A payment we stamp 23:59:59.900 may be settled by the provider at
00:00:00.200 and land in the next day's statement, or the other way round. So:

- every statement line is reconciled in the run of its own statement, against any record we
  pass, whatever that record's own day: pass our records of the day *and of its neighbours*
  (the rule keeps only what concerns this statement);
- a record of ours that no line of this statement matches is reported in the run of its own
  business day only, and not as LOCAL_ONLY when the caller shows it among the neighbouring
  days' lines (`also_seen`): the other day's run reconciles it against that line.

Each line or record therefore leads to at most one discrepancy across all runs.

Matching. A payment line matches our charge by `out_trade_no`; when both sides know the
provider's `transaction_id` and they differ, the line is another charge for the same order
(the patient paid twice) and is PROVIDER_ONLY. A refund line matches our refund by
`out_refund_no`, or by `refund_id` when the provider omits ours. A line repeating one already
matched (same kind, same provider id, same amount) is a DUPLICATE_LINE: money moved once and
the statement says twice, which finance takes up with the provider.

Actions. Money the provider took for an order that has no booking (provider-only, or ours but
the appointment is cancelled or gone and not yet refunded in full) is given back
automatically (the requirement: "a charge with no booking is refunded automatically and
logged"), less what is already given back: the provider's refund lines for that transaction
(this statement's and `also_seen`), or our refunds of the order (`refunded_fen`). The refund's
`out_refund_no` comes from `automatic_refund_no`, the same on every run, so running a day
again retries that refund rather than paying twice. Everything else — a record only we
have, an amount that differs, a refund only the provider has, a duplicated line — is for a
person to investigate: refunding on a guess could pay twice."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from yuyue.payments.gateway import Provider, Statement, StatementKind, StatementLine

PROVIDER_TIMEZONE = "Asia/Shanghai"

_Record = TypeVar("_Record")


def business_day(instant: datetime, tz: str = PROVIDER_TIMEZONE) -> date:
    """The provider's business day of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("business_day needs an aware datetime")
    return instant.astimezone(ZoneInfo(tz)).date()


def business_day_window(day: date, tz: str = PROVIDER_TIMEZONE) -> tuple[datetime, datetime]:
    """The day's instants as a half-open UTC window [start, end)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


@dataclass(frozen=True)
class LocalCharge:
    """A charge we hold as paid."""

    out_trade_no: str
    transaction_id: str | None  # the provider's id, when its notification or query gave it
    amount_fen: int
    paid_at: datetime  # aware UTC
    appointment_id: UUID | None  # None: the order's appointment is gone
    booked: bool  # False: the appointment was cancelled (or never confirmed)
    refunded_fen: int = 0  # refunded or being refunded, on any day


@dataclass(frozen=True)
class LocalRefund:
    """A refund we hold as succeeded."""

    out_refund_no: str
    out_trade_no: str
    refund_id: str | None
    amount_fen: int
    succeeded_at: datetime  # aware UTC


class DiscrepancyKind(StrEnum):
    LOCAL_ONLY = "local_only"  # we hold it as paid or refunded; the provider has no line
    PROVIDER_ONLY = "provider_only"  # the provider has a line; we have no record
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_LINE = "duplicate_line"  # the statement lists the same money twice
    NO_BOOKING = "no_booking"  # both agree it was paid, but the order has no booking


class Action(StrEnum):
    REFUND_AUTOMATICALLY = "refund_automatically"
    INVESTIGATE = "investigate"


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    action: Action
    line_kind: StatementKind  # a payment or a refund
    out_trade_no: str
    ours_fen: int | None  # our amount, when we have a record
    theirs_fen: int | None  # the provider's amount, when it has a line
    at: datetime  # the provider's time when it has a line, else ours
    out_refund_no: str | None = None
    provider_id: str | None = None  # transaction_id or refund_id
    appointment_id: UUID | None = None
    refund_fen: int = 0  # what REFUND_AUTOMATICALLY gives back


@dataclass(frozen=True)
class Totals:
    count: int = 0
    fen: int = 0

    def plus(self, amount_fen: int) -> Totals:
        return Totals(self.count + 1, self.fen + amount_fen)


@dataclass(frozen=True)
class Side:
    """One side's payments and refunds; net is what stays with the hospital."""

    payments: Totals = Totals()
    refunds: Totals = Totals()

    @property
    def net_fen(self) -> int:
        return self.payments.fen - self.refunds.fen


@dataclass(frozen=True)
class ReconciliationResult:
    provider: Provider
    bill_date: date
    ours: Side  # our records whose business day is bill_date
    theirs: Side  # every line of the statement, duplicates included
    matched: Side  # line-and-record pairs, counted at the provider's amount
    discrepancies: tuple[Discrepancy, ...]
    # Our records of bill_date that the provider put on a neighbouring day (`also_seen`).
    settled_on_neighbouring_day: tuple[str, ...] = field(default=())

    @property
    def balanced(self) -> bool:
        return not self.discrepancies

    @property
    def to_refund(self) -> tuple[Discrepancy, ...]:
        return tuple(
            item for item in self.discrepancies if item.action is Action.REFUND_AUTOMATICALLY
        )


class _GivenBack:
    """The provider's refund lines (this statement and its neighbours'), spent once each
    against charges that only the provider has, so nothing is given back twice."""

    def __init__(self, lines: Iterable[StatementLine]) -> None:
        self._by_transaction: dict[str, int] = defaultdict(int)
        self._by_order: dict[str, int] = defaultdict(int)  # lines without a transaction id
        for line in lines:
            if line.kind is StatementKind.REFUND:
                if line.transaction_id:
                    self._by_transaction[line.transaction_id] += line.amount_fen
                else:
                    self._by_order[line.out_trade_no] += line.amount_fen

    def take(self, line: StatementLine, *, whole_order: bool) -> int:
        """What the provider already gave back of a charge line, at most its amount."""
        wanted = line.amount_fen
        taken = 0
        for pool, key in (
            (self._by_transaction, line.transaction_id),
            (self._by_order, line.out_trade_no if whole_order else None),
        ):
            if key is None or key not in pool:
                continue
            part = min(pool[key], wanted - taken)
            pool[key] -= part
            taken += part
        return taken


def _unique(records: Sequence[_Record], key: str) -> dict[str, _Record]:
    by_key: dict[str, _Record] = {}
    for record in records:
        value = getattr(record, key)
        if value in by_key:
            raise ValueError(f"two local records share {key}={value!r}")
        by_key[value] = record
    return by_key


def reconcile(
    *,
    statement: Statement,
    charges: Sequence[LocalCharge],
    refunds: Sequence[LocalRefund],
    also_seen: Iterable[StatementLine] = (),
    tz: str = PROVIDER_TIMEZONE,
) -> ReconciliationResult:
    """Reconciles `statement` (one provider, one business day) with our records.

    `charges` and `refunds` are our paid charges and succeeded refunds of the statement's
    provider for the business day and its neighbours; `also_seen` are the lines of the
    neighbouring days' statements, as far as they are known."""
    day = statement.bill_date
    neighbours = tuple(also_seen)
    charge_by_no = _unique(charges, "out_trade_no")
    refund_by_no = _unique(refunds, "out_refund_no")
    refund_by_id = {item.refund_id: item for item in refunds if item.refund_id}
    given_back = _GivenBack((*statement.lines, *neighbours))

    discrepancies: list[Discrepancy] = []
    theirs_pay, theirs_ref = Totals(), Totals()
    matched_pay, matched_ref = Totals(), Totals()
    matched_charges: set[str] = set()
    matched_refunds: set[str] = set()
    earlier_lines: set[tuple[StatementKind, str, str | None, str | None, int]] = set()

    for line in statement.lines:
        identity = (
            line.kind,
            line.out_trade_no,
            line.out_refund_no,
            line.transaction_id if line.kind is StatementKind.PAYMENT else line.refund_id,
            line.amount_fen,
        )
        duplicate = identity in earlier_lines
        earlier_lines.add(identity)
        if line.kind is StatementKind.PAYMENT:
            theirs_pay = theirs_pay.plus(line.amount_fen)
            if duplicate:
                discrepancies.append(_discrepancy(DiscrepancyKind.DUPLICATE_LINE, line))
                continue
            charge = charge_by_no.get(line.out_trade_no)
            if (
                charge is None
                or line.out_trade_no in matched_charges
                or _other_charge(charge, line)
            ):
                # No record of ours, or a second charge for an order we hold as paid once.
                already = given_back.take(line, whole_order=charge is None)
                discrepancies.append(
                    _discrepancy(
                        DiscrepancyKind.PROVIDER_ONLY,
                        line,
                        refund_fen=line.amount_fen - already,
                    )
                )
                continue
            matched_charges.add(line.out_trade_no)
            matched_pay = matched_pay.plus(line.amount_fen)
            outstanding = charge.amount_fen - charge.refunded_fen
            if charge.amount_fen != line.amount_fen:
                discrepancies.append(
                    _discrepancy(
                        DiscrepancyKind.AMOUNT_MISMATCH,
                        line,
                        ours_fen=charge.amount_fen,
                        appointment_id=charge.appointment_id,
                    )
                )
            elif (not charge.booked or charge.appointment_id is None) and outstanding > 0:
                discrepancies.append(
                    _discrepancy(
                        DiscrepancyKind.NO_BOOKING,
                        line,
                        ours_fen=charge.amount_fen,
                        appointment_id=charge.appointment_id,
                        refund_fen=outstanding,
                    )
                )
        else:
            theirs_ref = theirs_ref.plus(line.amount_fen)
            if duplicate:
                discrepancies.append(_discrepancy(DiscrepancyKind.DUPLICATE_LINE, line))
                continue
            refund = _our_refund(line, refund_by_no, refund_by_id)
            if refund is None or refund.out_refund_no in matched_refunds:
                discrepancies.append(_discrepancy(DiscrepancyKind.PROVIDER_ONLY, line))
                continue
            matched_refunds.add(refund.out_refund_no)
            matched_ref = matched_ref.plus(line.amount_fen)
            if refund.amount_fen != line.amount_fen:
                discrepancies.append(
                    _discrepancy(DiscrepancyKind.AMOUNT_MISMATCH, line, ours_fen=refund.amount_fen)
                )

    seen_charges = {line.out_trade_no for line in neighbours if line.kind is StatementKind.PAYMENT}
    seen_refunds = {
        key
        for line in neighbours
        if line.kind is StatementKind.REFUND
        for key in (line.out_refund_no, line.refund_id)
        if key
    }
    elsewhere: list[str] = []
    ours_pay, ours_ref = Totals(), Totals()

    for charge in charges:
        if business_day(charge.paid_at, tz) != day:
            continue
        ours_pay = ours_pay.plus(charge.amount_fen)
        if charge.out_trade_no in matched_charges:
            continue
        if charge.out_trade_no in seen_charges:
            elsewhere.append(charge.out_trade_no)
            continue
        discrepancies.append(
            Discrepancy(
                kind=DiscrepancyKind.LOCAL_ONLY,
                action=Action.INVESTIGATE,
                line_kind=StatementKind.PAYMENT,
                out_trade_no=charge.out_trade_no,
                ours_fen=charge.amount_fen,
                theirs_fen=None,
                at=charge.paid_at,
                provider_id=charge.transaction_id,
                appointment_id=charge.appointment_id,
            )
        )

    for refund in refunds:
        if business_day(refund.succeeded_at, tz) != day:
            continue
        ours_ref = ours_ref.plus(refund.amount_fen)
        if refund.out_refund_no in matched_refunds:
            continue
        if refund.out_refund_no in seen_refunds or refund.refund_id in seen_refunds:
            elsewhere.append(refund.out_refund_no)
            continue
        discrepancies.append(
            Discrepancy(
                kind=DiscrepancyKind.LOCAL_ONLY,
                action=Action.INVESTIGATE,
                line_kind=StatementKind.REFUND,
                out_trade_no=refund.out_trade_no,
                ours_fen=refund.amount_fen,
                theirs_fen=None,
                at=refund.succeeded_at,
                out_refund_no=refund.out_refund_no,
                provider_id=refund.refund_id,
            )
        )

    return ReconciliationResult(
        provider=statement.provider,
        bill_date=day,
        ours=Side(ours_pay, ours_ref),
        theirs=Side(theirs_pay, theirs_ref),
        matched=Side(matched_pay, matched_ref),
        discrepancies=tuple(discrepancies),
        settled_on_neighbouring_day=tuple(elsewhere),
    )


def automatic_refund_no(item: Discrepancy) -> str:
    """The out_refund_no for a discrepancy's automatic refund: the same on every run over
    the same line, so a rerun of a day's reconciliation retries the refund instead of
    paying it twice (providers treat a repeated out_refund_no as the same refund)."""
    digest = hashlib.sha256(
        "|".join((item.kind, item.out_trade_no, item.provider_id or "")).encode()
    ).hexdigest()
    return "RC" + digest[:30]


def _other_charge(charge: LocalCharge, line: StatementLine) -> bool:
    """A line for our order but another transaction: a second charge."""
    return (
        charge.transaction_id is not None
        and line.transaction_id is not None
        and charge.transaction_id != line.transaction_id
    )


def _our_refund(
    line: StatementLine,
    by_no: dict[str, LocalRefund],
    by_id: dict[str, LocalRefund],
) -> LocalRefund | None:
    if line.out_refund_no:
        return by_no.get(line.out_refund_no)
    if line.refund_id:
        return by_id.get(line.refund_id)
    return None


def _discrepancy(
    kind: DiscrepancyKind,
    line: StatementLine,
    *,
    ours_fen: int | None = None,
    appointment_id: UUID | None = None,
    refund_fen: int = 0,
) -> Discrepancy:
    automatic = refund_fen > 0 and line.kind is StatementKind.PAYMENT
    return Discrepancy(
        kind=kind,
        action=Action.REFUND_AUTOMATICALLY if automatic else Action.INVESTIGATE,
        line_kind=line.kind,
        out_trade_no=line.out_trade_no,
        ours_fen=ours_fen,
        theirs_fen=line.amount_fen,
        at=line.at,
        out_refund_no=line.out_refund_no,
        provider_id=line.transaction_id if line.kind is StatementKind.PAYMENT else line.refund_id,
        appointment_id=appointment_id,
        refund_fen=refund_fen,
    )
