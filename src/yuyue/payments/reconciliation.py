"""The T+1 reconciliation (对账) as a use case: one provider's statement for one business day
against our orders and refunds, stored as a run and its items, and the charges with no
booking given back.

The rule itself is pure and lives in `payments/reconcile.py`; this module feeds it and acts
on what it finds:

1. a first transaction records the run as running (one row per hospital, provider and
   business day);
2. outside any transaction the provider's statement for the day is downloaded through the
   gateway, and its neighbours' (the day before and after) as far as they exist, for the
   records that cross midnight;
3. a second transaction loads our paid charges and succeeded refunds of the day and its
   neighbours, runs the rule and stores what it found: the run's counts and totals, and one
   item per discrepancy. Running a day again replaces the items nobody handled yet and keeps
   the handled ones with their notes. A charge with no booking (provider-only, or paid on a
   cancelled or gone appointment with no refund) becomes a refund row that the refund job
   sends, numbered by `reconcile.automatic_refund_no`, so a rerun finds that refund and
   never pays twice; each is logged and audited.

A statement the provider has not produced yet (`StatementNotReady`) leaves the run waiting;
the job asks again later (`due_runs`). Finance marks an item handled with a note (audited).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import service as booking_service
from yuyue.booking.states import AppointmentStatus
from yuyue.kit import i18n
from yuyue.kit.clock import Clock
from yuyue.kit.db import Database
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.kit.ids import new_id
from yuyue.payments import gateway as gw
from yuyue.payments import reconcile
from yuyue.payments import service as payments
from yuyue.payments.models import (
    PaymentOrder,
    ReconciliationItem,
    ReconciliationRun,
    Refund,
)
from yuyue.payments.registry import Gateways
from yuyue.payments.states import (
    OrderState,
    ReconciliationRunState,
    RefundReason,
    RefundState,
)
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff, system_actor
from yuyue.staff.service import record_audit

log = logging.getLogger(__name__)

RunState = ReconciliationRunState
# A statement not ready yet (or a provider that failed) is asked for again after this.
RETRY_AFTER = timedelta(hours=1)
# Runs are retried for this long after their day; later a person looks.
RETRY_FOR = timedelta(days=7)
# What our records hold as paid (charged), whatever happened after.
CHARGED = (OrderState.PAID, OrderState.REFUNDING, OrderState.REFUNDED, OrderState.REFUND_FAILED)
# An appointment in these statuses has no booking left for its money.
NOT_BOOKED = (AppointmentStatus.CANCELLED, AppointmentStatus.EXPIRED)
NOTE_MAX = 500
# Discrepancies whose money goes back without a person (reconcile.Action.REFUND_AUTOMATICALLY).
AUTOMATIC_KINDS = (reconcile.DiscrepancyKind.PROVIDER_ONLY, reconcile.DiscrepancyKind.NO_BOOKING)


class NoteRequired(YuyueError):
    """Marking a discrepancy handled needs a note saying what was done."""

    code = "note_required"
    status = 422


class AlreadyHandled(YuyueError):
    code = "already_handled"
    status = 409


i18n.register(
    {
        "title.note_required": ("请填写处理说明", "A note is required"),
        "error.note_required": (
            "请说明如何处理了这条差异（最多 500 字）。",
            "Please say how this discrepancy was handled (at most 500 characters).",
        ),
        "title.already_handled": ("已处理", "Already handled"),
        "error.already_handled": (
            "这条差异已由 {by} 处理。",
            "This discrepancy was already handled by {by}.",
        ),
        "what.reconciliation_run": ("对账批次", "reconciliation run"),
        "what.reconciliation_item": ("对账差异", "reconciliation item"),
    }
)


@dataclass(frozen=True)
class RunReport:
    """What one run did, for the job's log, the CLI and the tests."""

    run_id: uuid.UUID
    provider: gw.Provider
    business_day: date
    state: RunState
    mismatches: int = 0
    refunds_started: list[uuid.UUID] = field(default_factory=list)
    error: str | None = None


def default_day(now: datetime) -> date:
    """Yesterday, on the providers' clock (Asia/Shanghai)."""
    return reconcile.business_day(now) - timedelta(days=1)


# --- running a day --------------------------------------------------------------------------


async def open_run(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    provider: gw.Provider,
    business_day: date,
    now: datetime,
) -> uuid.UUID:
    """The day's run row, created or taken up again, marked running."""
    run = await session.scalar(
        select(ReconciliationRun)
        .where(
            ReconciliationRun.hospital_id == hospital_id,
            ReconciliationRun.provider == provider.value,
            ReconciliationRun.business_day == business_day,
        )
        .with_for_update()
    )
    if run is None:
        run = ReconciliationRun(
            id=new_id(),
            hospital_id=hospital_id,
            provider=provider.value,
            business_day=business_day,
            state=RunState.RUNNING,
            local_count=0,
            provider_count=0,
            local_total_fen=0,
            provider_total_fen=0,
            local_refund_fen=0,
            provider_refund_fen=0,
            mismatches=0,
            tries=0,
            started_at=now,
        )
        session.add(run)
    run.state = RunState.RUNNING
    run.started_at = now
    run.tries += 1
    await session.flush()
    return run.id


async def _neighbours(gateway: gw.Gateway, day: date) -> list[gw.StatementLine]:
    """The lines of the day before and after, as far as the provider has them."""
    lines: list[gw.StatementLine] = []
    for other in (day - timedelta(days=1), day + timedelta(days=1)):
        try:
            lines.extend((await gateway.download_statement(other)).lines)
        except gw.GatewayError:
            continue  # not ready (tomorrow's, usually) or a quiet day: nothing to add
    return lines


async def reconcile_day(
    *,
    db: Database,
    gateways: Gateways,
    hospital_id: uuid.UUID,
    provider: gw.Provider,
    business_day: date,
    clock: Clock,
) -> RunReport:
    """Runs (or runs again) one provider's business day. Network calls happen between the
    two transactions, never inside one."""
    gateway = gateways.get(provider)

    async def first(session: AsyncSession) -> uuid.UUID:
        return await open_run(
            session,
            hospital_id=hospital_id,
            provider=provider,
            business_day=business_day,
            now=clock.now(),
        )

    run_id = await db.transact(first)
    statement: gw.Statement | None = None
    failure: gw.GatewayError | None = None
    try:
        statement = await gateway.download_statement(business_day)
    except gw.GatewayError as error:
        failure = error
    if statement is None:
        assert failure is not None
        waiting = isinstance(failure, gw.StatementNotReady)

        async def unfinished(session: AsyncSession) -> None:
            await record_unfinished(
                session, run_id=run_id, error=failure, waiting=waiting, now=clock.now()
            )

        await db.transact(unfinished)
        state = RunState.WAITING if waiting else RunState.FAILED
        log.info("reconciliation %s %s: %s (%s)", provider.value, business_day, state, failure)
        return RunReport(run_id, provider, business_day, state, error=str(failure))
    also_seen = await _neighbours(gateway, business_day)

    async def second(session: AsyncSession) -> RunReport:
        return await record_statement(
            session,
            run_id=run_id,
            statement=statement,
            also_seen=also_seen,
            now=clock.now(),
        )

    report = await db.transact(second)
    log.info(
        "reconciliation %s %s: %d discrepancies, %d refunds started",
        provider.value,
        business_day,
        report.mismatches,
        len(report.refunds_started),
    )
    return report


async def record_unfinished(
    session: AsyncSession,
    *,
    run_id: uuid.UUID,
    error: gw.GatewayError,
    waiting: bool,
    now: datetime,
) -> None:
    run = await session.get(ReconciliationRun, run_id, with_for_update=True)
    assert run is not None
    run.state = RunState.WAITING if waiting else RunState.FAILED
    run.error = f"{error.code}: {error.message}"[:500]
    run.finished_at = None
    in_time = reconcile.business_day_window(run.business_day)[1] + RETRY_FOR > now
    run.next_try_at = now + RETRY_AFTER if (error.retryable and in_time) else None


async def _charges(
    session: AsyncSession, *, hospital_id: uuid.UUID, provider: gw.Provider, day: date
) -> list[reconcile.LocalCharge]:
    start = reconcile.business_day_window(day - timedelta(days=1))[0]
    end = reconcile.business_day_window(day + timedelta(days=1))[1]
    rows = (
        await session.execute(
            select(PaymentOrder, Refund.amount_fen)
            .outerjoin(Refund, Refund.order_id == PaymentOrder.id)
            .where(
                PaymentOrder.hospital_id == hospital_id,
                PaymentOrder.provider == provider.value,
                PaymentOrder.state.in_(CHARGED),
                PaymentOrder.paid_at >= start,
                PaymentOrder.paid_at < end,
            )
        )
    ).all()
    statuses = await booking_service.appointment_statuses(
        session, hospital_id=hospital_id, appointment_ids=[row[0].appointment_id for row in rows]
    )
    charges: list[reconcile.LocalCharge] = []
    for order, refunded in rows:
        assert order.paid_at is not None
        status = statuses.get(order.appointment_id)
        charges.append(
            reconcile.LocalCharge(
                out_trade_no=order.out_trade_no,
                transaction_id=order.transaction_id,
                amount_fen=order.amount_fen,
                paid_at=order.paid_at,
                appointment_id=order.appointment_id if status is not None else None,
                booked=status is not None and status not in NOT_BOOKED,
                # A refund in any state counts: one that failed online sends the patient to
                # the window, so giving the money back again could pay twice.
                refunded_fen=refunded or 0,
            )
        )
    return charges


async def _refunds(
    session: AsyncSession, *, hospital_id: uuid.UUID, provider: gw.Provider, day: date
) -> list[reconcile.LocalRefund]:
    """Our refunds the provider made (not those handed back at the window)."""
    start = reconcile.business_day_window(day - timedelta(days=1))[0]
    end = reconcile.business_day_window(day + timedelta(days=1))[1]
    rows = (
        await session.execute(
            select(Refund, PaymentOrder.out_trade_no)
            .outerjoin(PaymentOrder, Refund.order_id == PaymentOrder.id)
            .where(
                Refund.hospital_id == hospital_id,
                func.coalesce(PaymentOrder.provider, Refund.provider) == provider.value,
                Refund.state == RefundState.SUCCEEDED,
                Refund.handled_by.is_(None),
                Refund.finished_at >= start,
                Refund.finished_at < end,
            )
        )
    ).all()
    refunds: list[reconcile.LocalRefund] = []
    for refund, out_trade_no in rows:
        assert refund.finished_at is not None
        refunds.append(
            reconcile.LocalRefund(
                out_refund_no=refund.out_refund_no,
                out_trade_no=out_trade_no or refund.out_trade_no or "",
                refund_id=refund.provider_refund_id,
                amount_fen=refund.amount_fen,
                succeeded_at=refund.finished_at,
            )
        )
    return refunds


def _item_key(
    kind: str, line_kind: str, out_trade_no: str, out_refund_no: str | None, provider_id: str | None
) -> tuple[str, str, str, str, str]:
    return (kind, line_kind, out_trade_no, out_refund_no or "", provider_id or "")


async def record_statement(
    session: AsyncSession,
    *,
    run_id: uuid.UUID,
    statement: gw.Statement,
    also_seen: Sequence[gw.StatementLine],
    now: datetime,
) -> RunReport:
    """The second transaction: our records against the statement, the run's figures, its
    items (handled ones kept) and the automatic refunds."""
    run = await session.get(ReconciliationRun, run_id, with_for_update=True)
    assert run is not None
    provider = gw.Provider(run.provider)
    day = run.business_day
    hospital_id = run.hospital_id
    result = reconcile.reconcile(
        statement=statement,
        charges=await _charges(session, hospital_id=hospital_id, provider=provider, day=day),
        refunds=await _refunds(session, hospital_id=hospital_id, provider=provider, day=day),
        also_seen=also_seen,
    )

    kept = (
        await session.scalars(
            select(ReconciliationItem).where(
                ReconciliationItem.run_id == run.id, ReconciliationItem.handled_at.is_not(None)
            )
        )
    ).all()
    handled = {
        _item_key(i.kind, i.line_kind, i.out_trade_no, i.out_refund_no, i.transaction_id)
        for i in kept
    }
    await session.execute(
        delete(ReconciliationItem).where(
            ReconciliationItem.run_id == run.id, ReconciliationItem.handled_at.is_(None)
        )
    )

    actor = system_actor(hospital_id, "reconciliation")
    started: list[uuid.UUID] = []
    for found in result.discrepancies:
        refund: Refund | None = None
        if found.action is reconcile.Action.REFUND_AUTOMATICALLY:
            refund, new = await _refund_automatically(
                session, actor=actor, provider=provider, found=found, now=now
            )
            if new:
                started.append(refund.id)
        elif found.kind in AUTOMATIC_KINDS and found.line_kind is gw.StatementKind.PAYMENT:
            # Given back already by an earlier run (the provider's refund line is known now).
            refund = await session.scalar(
                select(Refund).where(Refund.out_refund_no == reconcile.automatic_refund_no(found))
            )
        key = _item_key(
            found.kind, found.line_kind, found.out_trade_no, found.out_refund_no, found.provider_id
        )
        if key in handled:
            continue
        handled.add(key)
        session.add(
            ReconciliationItem(
                id=new_id(),
                run_id=run.id,
                kind=found.kind.value,
                line_kind=found.line_kind.value,
                out_trade_no=found.out_trade_no[:32],
                out_refund_no=found.out_refund_no,
                transaction_id=found.provider_id,
                local_fen=found.ours_fen,
                provider_fen=found.theirs_fen,
                action=(
                    reconcile.Action.REFUND_AUTOMATICALLY if refund is not None else found.action
                ).value,
                at=found.at,
                appointment_id=found.appointment_id,
                refund_fen=refund.amount_fen if refund is not None else found.refund_fen,
                refund_id=refund.id if refund is not None else None,
                # An automatic refund is the system handling it: kept across reruns, with
                # the refund's own state to follow.
                handled_by=actor.audit_name if refund is not None else None,
                handled_at=now if refund is not None else None,
                created_at=now,
            )
        )

    run.state = RunState.DONE
    run.local_count = result.ours.payments.count + result.ours.refunds.count
    run.provider_count = result.theirs.payments.count + result.theirs.refunds.count
    run.local_total_fen = result.ours.payments.fen
    run.provider_total_fen = result.theirs.payments.fen
    run.local_refund_fen = result.ours.refunds.fen
    run.provider_refund_fen = result.theirs.refunds.fen
    run.mismatches = len(result.discrepancies)
    run.error = None
    run.next_try_at = None
    run.finished_at = now
    await session.flush()
    return RunReport(
        run.id,
        provider,
        day,
        RunState.DONE,
        mismatches=len(result.discrepancies),
        refunds_started=started,
    )


async def _refund_automatically(
    session: AsyncSession,
    *,
    actor: Actor,
    provider: gw.Provider,
    found: reconcile.Discrepancy,
    now: datetime,
) -> tuple[Refund, bool]:
    """The refund of a charge with no booking: the one already started for it (by an
    earlier run: same number), or a new refund row for the refund job. Returns it and
    whether it is new."""
    number = reconcile.automatic_refund_no(found)
    existing = await session.scalar(select(Refund).where(Refund.out_refund_no == number))
    if existing is not None:
        return existing, False
    order = await session.scalar(
        select(PaymentOrder)
        .where(
            PaymentOrder.hospital_id == actor.hospital_id,
            PaymentOrder.out_trade_no == found.out_trade_no,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if (
        found.kind is reconcile.DiscrepancyKind.NO_BOOKING
        and order is not None
        and OrderState(order.state) is OrderState.PAID
        and order.amount_fen == found.refund_fen
    ):
        refund = await payments.refund_order(
            session,
            actor=actor,
            order=order,
            reason=RefundReason.RECONCILIATION,
            now=now,
            out_refund_no=number,
        )
    else:
        # Money the provider took for no order of ours (or a second charge, or one on an
        # order we closed): given back by the provider's own order number.
        assert found.theirs_fen is not None
        refund = Refund(
            id=new_id(),
            hospital_id=actor.hospital_id,
            order_id=None,
            appointment_id=None,
            provider=provider.value,
            out_trade_no=found.out_trade_no,
            total_fen=found.theirs_fen,
            out_refund_no=number,
            amount_fen=found.refund_fen,
            reason=RefundReason.RECONCILIATION.value,
            state=RefundState.REQUESTED,
            tries=0,
            next_try_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        await session.flush()
        record_audit(
            session,
            actor=actor,
            action="request_refund",
            entity_type="refund",
            entity_id=refund.id,
            before=None,
            after=payments.refund_snapshot(refund)
            | {"provider": provider.value, "out_trade_no": found.out_trade_no},
            now=now,
        )
    log.warning(
        "reconciliation: %s charge %s (%s fen) with no booking is refunded as %s",
        provider.value,
        found.out_trade_no,
        found.refund_fen,
        number,
    )
    return refund, True


async def due_runs(
    session: AsyncSession, *, hospital_id: uuid.UUID, now: datetime
) -> list[tuple[gw.Provider, date]]:
    """Runs waiting for their statement (or failed on a passing error) whose time to ask
    again has come."""
    rows = await session.execute(
        select(ReconciliationRun.provider, ReconciliationRun.business_day).where(
            ReconciliationRun.hospital_id == hospital_id,
            ReconciliationRun.state.in_((RunState.WAITING, RunState.FAILED)),
            ReconciliationRun.next_try_at <= now,
        )
    )
    return [(gw.Provider(provider), day) for provider, day in rows]


# --- finance: reading and marking handled ---------------------------------------------------


def require_finance(actor: Actor) -> None:
    """Finance reads and handles reconciliation; administrators hold every role."""
    require_staff(actor, Role.FINANCE)


async def list_runs(
    session: AsyncSession,
    *,
    actor: Actor,
    date_from: date | None = None,
    date_to: date | None = None,
    provider: gw.Provider | None = None,
    limit: int = 200,
) -> list[ReconciliationRun]:
    require_finance(actor)
    query = (
        select(ReconciliationRun)
        .where(ReconciliationRun.hospital_id == actor.hospital_id)
        .order_by(ReconciliationRun.business_day.desc(), ReconciliationRun.provider)
        .limit(limit)
    )
    if date_from is not None:
        query = query.where(ReconciliationRun.business_day >= date_from)
    if date_to is not None:
        query = query.where(ReconciliationRun.business_day <= date_to)
    if provider is not None:
        query = query.where(ReconciliationRun.provider == provider.value)
    return list((await session.scalars(query)).all())


async def get_run(session: AsyncSession, *, actor: Actor, run_id: uuid.UUID) -> ReconciliationRun:
    require_finance(actor)
    run = await session.get(ReconciliationRun, run_id)
    if run is None or run.hospital_id != actor.hospital_id:
        raise NotFound(what="reconciliation_run")
    return run


async def run_items(
    session: AsyncSession, *, actor: Actor, run_id: uuid.UUID
) -> list[ReconciliationItem]:
    run = await get_run(session, actor=actor, run_id=run_id)
    return list(
        (
            await session.scalars(
                select(ReconciliationItem)
                .where(ReconciliationItem.run_id == run.id)
                .order_by(
                    ReconciliationItem.handled_at.is_not(None),
                    ReconciliationItem.kind,
                    ReconciliationItem.at,
                    ReconciliationItem.out_trade_no,
                )
            )
        ).all()
    )


def item_snapshot(item: ReconciliationItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "out_trade_no": item.out_trade_no,
        "out_refund_no": item.out_refund_no,
        "action": item.action,
        "handled_by": item.handled_by,
        "handled_at": item.handled_at.isoformat() if item.handled_at else None,
        "note": item.note,
    }


async def mark_handled(
    session: AsyncSession,
    *,
    actor: Actor,
    item_id: uuid.UUID,
    note: str | None,
    now: datetime,
) -> ReconciliationItem:
    """Finance says what was done about a discrepancy; kept across reruns, audited."""
    require_finance(actor)
    text = (note or "").strip()
    if not text or len(text) > NOTE_MAX:
        raise NoteRequired()
    item = await session.scalar(
        select(ReconciliationItem)
        .join(ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id)
        .where(
            ReconciliationItem.id == item_id,
            ReconciliationRun.hospital_id == actor.hospital_id,
        )
        .with_for_update(of=ReconciliationItem)
        .execution_options(populate_existing=True)
    )
    if item is None:
        raise NotFound(what="reconciliation_item")
    if item.handled_at is not None:
        raise AlreadyHandled(by=item.handled_by or "-")
    before = item_snapshot(item)
    item.handled_by = actor.audit_name
    item.handled_at = now
    item.note = text
    record_audit(
        session,
        actor=actor,
        action="reconciliation_handled",
        entity_type="reconciliation_item",
        entity_id=item.id,
        before=before,
        after=item_snapshot(item),
        now=now,
    )
    return item


async def refunds_of_items(
    session: AsyncSession, *, items: Sequence[ReconciliationItem]
) -> dict[uuid.UUID, Refund]:
    """The automatic refunds the items started, to show their state."""
    ids = [item.refund_id for item in items if item.refund_id is not None]
    if not ids:
        return {}
    refunds = await session.scalars(select(Refund).where(Refund.id.in_(ids)))
    return {refund.id: refund for refund in refunds}
