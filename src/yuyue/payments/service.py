"""Payments use cases: start a payment, take a provider's notification, refund what a
cancellation owes, pay and refund at the window.

Two kinds of function live here:

- keyword-only use cases that run inside the caller's transaction and never commit
  (`open_order`, `apply_payment`, `pay_at_window`, the cancellation subscriber, …);
- the few flows that must talk to a provider (`start_payment`, `handle_notification`,
  `send_refunds`, `close_orders`), which take the `Database` and own their transactions,
  because **no network call may happen inside a transaction**: they write what they are
  about to do and commit, call the provider, then record the outcome in a second
  transaction. A crash between the two leaves a row a later pass (or the provider's
  retry) completes; nothing is lost and nothing is done twice, since every provider call
  is idempotent by our `out_trade_no` / `out_refund_no`.

Booking stays the only writer of appointments: payments calls `booking.service`
(`confirm_payment`, `note_refund`, `lock_appointment`) and hears of cancellations through
booking's in-transaction events, which it subscribes to when this module is imported."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import events
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus, CancelReason, RefundShown
from yuyue.kit.clock import Clock
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.db import Database
from yuyue.kit.errors import NotFound
from yuyue.kit.ids import new_id
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.service import enqueue
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.payments import gateway as gw
from yuyue.payments import rules
from yuyue.payments.models import PaymentAttempt, PaymentOrder, Refund
from yuyue.payments.registry import Gateways
from yuyue.payments.states import (
    AttemptKind,
    AttemptOutcome,
    OrderState,
    RefundReason,
    RefundState,
)
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff, system_actor
from yuyue.staff.service import record_audit

log = logging.getLogger(__name__)

OS = OrderState
RS = RefundState

# How a refund is sent at most per pass; the rest wait for the next pass.
REFUND_BATCH = 50


def body_digest(body: bytes) -> str:
    """What the log keeps of a notification: enough to match it, nothing to read."""
    return hashlib.sha256(body).hexdigest()


def new_out_trade_no() -> str:
    return new_id().hex  # 32 characters of [0-9a-f]: both providers' limits


def new_out_refund_no() -> str:
    return "R" + new_id().hex


def _fen_text(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def order_snapshot(order: PaymentOrder) -> dict[str, Any]:
    return {
        "state": str(order.state),
        "appointment_id": str(order.appointment_id),
        "amount_fen": order.amount_fen,
        "provider": order.provider,
        "method": order.method,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "receipt_no": order.receipt_no,
        "invoice_printed_at": order.invoice_printed_at.isoformat()
        if order.invoice_printed_at
        else None,
    }


def refund_snapshot(refund: Refund) -> dict[str, Any]:
    return {
        "state": str(refund.state),
        "order_id": str(refund.order_id),
        "amount_fen": refund.amount_fen,
        "reason": refund.reason,
        "out_refund_no": refund.out_refund_no,
        "tries": refund.tries,
        "provider_refund_id": refund.provider_refund_id,
        "last_error": refund.last_error,
    }


def _audit_order(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    order: PaymentOrder,
    before: dict[str, Any] | None,
    now: datetime,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="payment_order",
        entity_id=order.id,
        before=before,
        after=order_snapshot(order),
        now=now,
    )


def _audit_refund(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    refund: Refund,
    before: dict[str, Any] | None,
    now: datetime,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="refund",
        entity_id=refund.id,
        before=before,
        after=refund_snapshot(refund),
        now=now,
    )


def _attempt(
    session: AsyncSession,
    *,
    provider: str,
    kind: AttemptKind,
    outcome: AttemptOutcome,
    now: datetime,
    hospital_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
    refund_id: uuid.UUID | None = None,
    event_id: str | None = None,
    verified: bool = True,
    error_code: str | None = None,
    detail: str | None = None,
    digest: str | None = None,
) -> None:
    session.add(
        PaymentAttempt(
            hospital_id=hospital_id,
            order_id=order_id,
            refund_id=refund_id,
            provider=provider,
            kind=kind.value,
            event_id=event_id[:100] if event_id else None,
            verified=verified,
            outcome=outcome.value,
            error_code=error_code[:64] if error_code else None,
            detail=detail[:500] if detail else None,
            body_digest=digest,
            at=now,
        )
    )


def _tell(
    session: AsyncSession,
    *,
    kind: MessageKind,
    order: PaymentOrder,
    appointment_id: uuid.UUID,
    now: datetime,
) -> None:
    enqueue(
        session,
        hospital_id=order.hospital_id,
        kind=kind,
        patient_id=order.patient_id,
        appointment_id=appointment_id,
        payload={
            "appointment_id": str(appointment_id),
            "amount": _fen_text(order.amount_fen),
            "order_id": str(order.id),
        },
        now=now,
    )


async def _lock_order(session: AsyncSession, *, out_trade_no: str) -> PaymentOrder | None:
    return await session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.out_trade_no == out_trade_no)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _orders_of(
    session: AsyncSession, *, appointment_id: uuid.UUID, lock: bool = True
) -> Sequence[PaymentOrder]:
    query = (
        select(PaymentOrder)
        .where(PaymentOrder.appointment_id == appointment_id)
        .order_by(PaymentOrder.created_at, PaymentOrder.id)
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).all()


def _close_locally(
    session: AsyncSession, *, actor: Actor, order: PaymentOrder, now: datetime
) -> None:
    """Closes an unpaid order here; the provider is told after commit by `close_orders`
    (an offline order has nothing to tell)."""
    before = order_snapshot(order)
    order.state = rules.order_transition(OrderState(order.state), "close")
    order.closed_at = now
    if gw.Provider(order.provider) is gw.Provider.WINDOW:
        order.provider_closed_at = now
    order.updated_at = now
    _audit_order(session, actor=actor, action="close_order", order=order, before=before, now=now)


# --- starting a payment ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrderPlan:
    """What `open_order` decided: show an open order's cashier again, or ask the provider."""

    order_id: uuid.UUID
    out_trade_no: str
    checkout: gw.Checkout | None = None
    request: gw.PayRequest | None = None


def _checkout_json(checkout: gw.Checkout) -> dict[str, Any]:
    return {
        "method": checkout.method.value,
        "redirect_url": checkout.redirect_url,
        "qr_content": checkout.qr_content,
        "jsapi_params": dict(checkout.jsapi_params) if checkout.jsapi_params else None,
        "provider_reference": checkout.provider_reference,
    }


def _checkout_from(data: Mapping[str, Any]) -> gw.Checkout:
    return gw.Checkout(
        method=gw.PayMethod(data["method"]),
        redirect_url=data.get("redirect_url"),
        qr_content=data.get("qr_content"),
        jsapi_params=data.get("jsapi_params"),
        provider_reference=data.get("provider_reference"),
    )


async def open_order(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    provider: gw.Provider,
    method: gw.PayMethod,
    notify_url: str,
    return_url: str | None,
    now: datetime,
    payer_openid: str | None = None,
    client_ip: str | None = None,
) -> OrderPlan:
    """The first transaction of `start_payment`. The appointment's lock serialises two
    "pay" clicks: the second finds the first's open order and shows the same cashier."""
    rules.check_online_method(provider, method)
    appointment = await booking_service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    rules.check_payable(AppointmentStatus(appointment.status), fee_fen=appointment.fee_fen)
    for order in await _orders_of(session, appointment_id=appointment.id):
        if (
            OrderState(order.state) is not OS.CREATED
            or order.provider != provider.value
            or order.method != method.value
        ):
            continue
        if order.checkout is not None and rules.reusable(
            OS.CREATED,
            expires_at=order.expires_at,
            hold_ends=appointment.hold_expires_at,
            now=now,
        ):
            return OrderPlan(order.id, order.out_trade_no, checkout=_checkout_from(order.checkout))
        _close_locally(session, actor=actor, order=order, now=now)
    await session.flush()
    info, _ = await booking_service.session_facts(
        session,
        hospital_id=actor.hospital_id,
        session_id=appointment.session_id,
        caches=booking_service.NO_CACHE,
    )
    order = PaymentOrder(
        hospital_id=actor.hospital_id,
        appointment_id=appointment.id,
        patient_id=appointment.patient_id,
        amount_fen=appointment.fee_fen,
        currency="CNY",
        provider=provider.value,
        method=method.value,
        out_trade_no=new_out_trade_no(),
        state=OS.CREATED,
        expires_at=appointment.hold_expires_at,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    _audit_order(session, actor=actor, action="create_order", order=order, before=None, now=now)
    description = f"{info.department_name} {info.level_name}".strip()[:120]
    assert appointment.hold_expires_at is not None, "a held appointment has an end"
    request = gw.PayRequest(
        out_trade_no=order.out_trade_no,
        amount_fen=order.amount_fen,
        description=description,
        method=method,
        expires_at=appointment.hold_expires_at,
        notify_url=notify_url,
        return_url=return_url,
        payer_openid=payer_openid,
        client_ip=client_ip,
    )
    return OrderPlan(order.id, order.out_trade_no, request=request)


async def record_checkout(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    provider: gw.Provider,
    checkout: gw.Checkout | None,
    error: gw.GatewayError | None,
    now: datetime,
) -> None:
    """The second transaction: what the provider answered. An order the provider refused
    (or that may not exist there after a timeout) is closed, and the close job tells the
    provider, so the patient never pays an order we no longer show."""
    order = await session.get(PaymentOrder, order_id, with_for_update=True)
    if order is None:
        raise NotFound(what="payment_order")
    _attempt(
        session,
        provider=provider.value,
        kind=AttemptKind.CREATE,
        outcome=AttemptOutcome.OK if error is None else AttemptOutcome.ERROR,
        hospital_id=order.hospital_id,
        order_id=order.id,
        error_code=error.code if error else None,
        detail=error.message if error else None,
        now=now,
    )
    if checkout is not None:
        order.checkout = _checkout_json(checkout)
        order.updated_at = now
    elif OrderState(order.state) is OS.CREATED:
        _close_locally(
            session, actor=system_actor(order.hospital_id, "payments"), order=order, now=now
        )


async def start_payment(
    *,
    db: Database,
    gateways: Gateways,
    actor: Actor,
    appointment_id: uuid.UUID,
    provider: gw.Provider,
    method: gw.PayMethod,
    notify_url: str,
    return_url: str | None,
    clock: Clock,
    payer_openid: str | None = None,
    client_ip: str | None = None,
) -> gw.Checkout:
    """Opens (or shows again) the provider's cashier for a held appointment: the order row
    is committed first, then the provider is asked, then its answer is recorded."""
    rules.check_online_method(provider, method)
    gateway = gateways.get(provider)

    async def first(session: AsyncSession) -> OrderPlan:
        return await open_order(
            session,
            actor=actor,
            appointment_id=appointment_id,
            provider=provider,
            method=method,
            notify_url=notify_url,
            return_url=return_url,
            payer_openid=payer_openid,
            client_ip=client_ip,
            now=clock.now(),
        )

    plan = await db.transact(first)
    if plan.checkout is not None:
        return plan.checkout
    assert plan.request is not None
    checkout: gw.Checkout | None = None
    failure: gw.GatewayError | None = None
    try:
        checkout = await gateway.create(plan.request)
    except gw.GatewayError as error:
        failure = error

    async def second(session: AsyncSession) -> None:
        await record_checkout(
            session,
            order_id=plan.order_id,
            provider=provider,
            checkout=checkout,
            error=failure,
            now=clock.now(),
        )

    await db.transact(second)
    if failure is not None:
        raise rules.GatewayUnavailable(reason=failure.code)
    assert checkout is not None
    return checkout


# --- notifications ---------------------------------------------------------------------------


# What a notification did, for logs and tests.
PAID = "paid"
DUPLICATE = "duplicate"
ANOMALY = "anomaly"
IGNORED = "ignored"
REJECTED = "rejected"
REFUND_UPDATED = "refund_updated"


@dataclass
class Handled:
    reply: gw.NotificationReply
    result: str
    # Refunds created while handling it (a late payment): the caller rings the refund job.
    refunds: list[uuid.UUID] = field(default_factory=list)


async def handle_notification(
    *,
    db: Database,
    gateways: Gateways,
    provider: gw.Provider,
    headers: Mapping[str, str],
    body: bytes,
    clock: Clock,
) -> Handled:
    """A provider's asynchronous notification: verified outside any transaction, then
    applied in one, and answered only after the commit. A crash before the answer loses
    nothing: the provider retries and finds the order paid (answered as accepted again)."""
    gateway = gateways.get(provider)
    digest = body_digest(body)
    try:
        note = await gateway.verify_notification(headers, body)
    except gw.InvalidNotification as error:
        reason = str(error)

        async def rejected(session: AsyncSession) -> None:
            _attempt(
                session,
                provider=provider.value,
                kind=AttemptKind.NOTIFICATION,
                outcome=AttemptOutcome.REJECTED,
                verified=False,
                detail=reason,
                digest=digest,
                now=clock.now(),
            )

        await db.transact(rejected)
        log.warning("%s notification rejected: %s", provider.value, reason)
        return Handled(gateway.reply(accepted=False), REJECTED)

    async def apply(session: AsyncSession) -> tuple[str, list[uuid.UUID]]:
        if note.kind is gw.NotificationKind.PAYMENT:
            return await apply_payment(
                session, provider=provider, note=note, digest=digest, now=clock.now()
            )
        return await apply_refund_notification(
            session, provider=provider, note=note, digest=digest, now=clock.now()
        )

    result, refunds = await db.transact(apply)
    return Handled(gateway.reply(accepted=True), result, refunds)


async def apply_payment(
    session: AsyncSession,
    *,
    provider: gw.Provider,
    note: gw.Notification,
    digest: str | None,
    now: datetime,
    kind: AttemptKind = AttemptKind.NOTIFICATION,
) -> tuple[str, list[uuid.UUID]]:
    """A verified payment notification, in the caller's transaction. The order's row lock
    makes concurrent duplicates wait; the first marks it paid and books, the others find
    it paid and change nothing. A wrong amount or an unknown order is recorded for finance
    and changes nothing. `sync_order` applies a provider's answer to a query the same way
    (`kind` QUERY, no body)."""
    trade = note.trade
    if trade is None:
        _attempt(
            session,
            provider=provider.value,
            kind=kind,
            outcome=AttemptOutcome.ANOMALY,
            event_id=note.event_id,
            detail="payment notification without a trade",
            digest=digest,
            now=now,
        )
        return ANOMALY, []
    order = await _lock_order(session, out_trade_no=trade.out_trade_no)
    if order is None or order.provider != provider.value:
        _attempt(
            session,
            provider=provider.value,
            kind=kind,
            outcome=AttemptOutcome.ANOMALY,
            event_id=note.event_id,
            detail=f"unknown order {trade.out_trade_no}",
            digest=digest,
            now=now,
        )
        return ANOMALY, []

    def attempt(outcome: AttemptOutcome, detail: str | None = None) -> None:
        assert order is not None
        _attempt(
            session,
            provider=provider.value,
            kind=kind,
            outcome=outcome,
            hospital_id=order.hospital_id,
            order_id=order.id,
            event_id=note.event_id,
            detail=detail,
            digest=digest,
            now=now,
        )

    if trade.state is not gw.TradeState.PAID:
        attempt(AttemptOutcome.OK, f"trade {trade.state.value}")
        return IGNORED, []
    if OrderState(order.state) not in (OS.CREATED, OS.CLOSED):
        attempt(AttemptOutcome.DUPLICATE)
        return DUPLICATE, []
    if trade.amount_fen != order.amount_fen:
        attempt(
            AttemptOutcome.ANOMALY, f"amount {trade.amount_fen} differs from {order.amount_fen}"
        )
        return ANOMALY, []
    actor = system_actor(order.hospital_id, f"{provider.value}-notify")
    before = order_snapshot(order)
    order.state = rules.order_transition(OrderState(order.state), "pay")
    order.transaction_id = trade.transaction_id
    order.paid_at = trade.paid_at or now
    order.updated_at = now
    _audit_order(session, actor=actor, action="pay", order=order, before=before, now=now)
    attempt(AttemptOutcome.OK)
    refunds = await settle_paid_order(session, actor=actor, order=order, now=now)
    return PAID, refunds


async def settle_paid_order(
    session: AsyncSession, *, actor: Actor, order: PaymentOrder, now: datetime
) -> list[uuid.UUID]:
    """A just-paid order books its appointment through booking's `confirm_payment`; the
    other open orders of the appointment are closed. When booking cannot take it (the hold
    expired and the place is gone, the appointment was cancelled meanwhile, or another
    payment came first) the order stays paid and is refunded, and the patient is told."""
    for other in await _orders_of(session, appointment_id=order.appointment_id):
        if other.id != order.id and OrderState(other.state) is OS.CREATED:
            _close_locally(session, actor=actor, order=other, now=now)
    try:
        await booking_service.confirm_payment(
            session,
            actor=actor,
            appointment_id=order.appointment_id,
            paid_fen=order.amount_fen,
            payment_reference=(order.transaction_id or order.receipt_no or order.out_trade_no),
            payment_provider=order.provider,
            now=now,
        )
        return []
    except (
        booking_rules.PlaceGone,
        booking_rules.InvalidTransition,
        booking_rules.PaymentMismatch,
    ) as refusal:
        appointment = await booking_service.lock_appointment(
            session, hospital_id=order.hospital_id, appointment_id=order.appointment_id
        )
        status = AppointmentStatus(appointment.status)
        duplicate = booking_rules.is_active(status)
        reason = RefundReason.DUPLICATE if duplicate else RefundReason.LATE_PAYMENT
        log.info("paid order %s cannot book (%s): refunding", order.out_trade_no, refusal.code)
        refund = request_refund(session, actor=actor, order=order, reason=reason, now=now)
        await session.flush()
        if not duplicate:
            await booking_service.note_refund(
                session,
                actor=actor,
                appointment_id=appointment.id,
                state=rules.shown_state(RefundState(refund.state)),
                now=now,
                paid=(
                    order.amount_fen,
                    order.provider,
                    order.transaction_id or order.receipt_no or order.out_trade_no,
                ),
            )
        _tell(
            session,
            kind=MessageKind.LATE_PAYMENT_REFUND
            if RefundState(refund.state) is RS.REQUESTED
            else MessageKind.REFUND_AT_WINDOW,
            order=order,
            appointment_id=appointment.id,
            now=now,
        )
        return [refund.id]


def request_refund(
    session: AsyncSession,
    *,
    actor: Actor,
    order: PaymentOrder,
    reason: RefundReason,
    now: datetime,
    out_refund_no: str | None = None,
) -> Refund:
    """The one way a refund starts: online through the provider for an online payment with
    no printed invoice (the job sends it), at the window otherwise (seed 003)."""
    route = rules.refund_route(
        gw.PayMethod(order.method), invoice_printed=order.invoice_printed_at is not None
    )
    before = order_snapshot(order)
    order.state = rules.order_transition(OrderState(order.state), "refund")
    order.updated_at = now
    _audit_order(session, actor=actor, action="refund_order", order=order, before=before, now=now)
    state = rules.initial_refund_state(route)
    refund = Refund(
        id=new_id(),
        hospital_id=order.hospital_id,
        order_id=order.id,
        appointment_id=order.appointment_id,
        out_refund_no=out_refund_no or new_out_refund_no(),
        amount_fen=order.amount_fen,
        reason=reason.value,
        state=state,
        tries=0,
        next_try_at=now if state is RS.REQUESTED else None,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    _audit_refund(
        session, actor=actor, action="request_refund", refund=refund, before=None, now=now
    )
    return refund


# --- booking's events ------------------------------------------------------------------------


async def on_booking_event(session: AsyncSession, event: events.BookingEvent) -> None:
    """Booking's cancellations, expiries and carried-over payments, in booking's
    transaction: a paid booking cancelled is refunded (online or at the window), an open
    order of a cancelled or expired hold is closed, a payment follows a reschedule."""
    if isinstance(event, events.PaymentCarriedOver):
        await _carry_over(session, event)
        return
    if isinstance(event, events.AppointmentCancelled) and event.payment_follows:
        return
    if isinstance(event, (events.AppointmentCompleted, events.AppointmentMissed)):
        return  # only a fee held rather than taken moves then (payments.insurance_service)
    orders = await _orders_of(session, appointment_id=event.appointment_id)
    if not orders:
        return
    actor = system_actor(event.hospital_id, "payments")
    refunds: list[Refund] = []
    for order in orders:
        state = OrderState(order.state)
        if state is OS.CREATED:
            _close_locally(session, actor=actor, order=order, now=event.at)
        elif state is OS.PAID and isinstance(event, events.AppointmentCancelled):
            refunds.append(
                request_refund(
                    session,
                    actor=actor,
                    order=order,
                    reason=rules.refund_reason(event.reason),
                    now=event.at,
                )
            )
    if not refunds:
        return
    await session.flush()
    shown = [rules.shown_state(RefundState(r.state)) for r in refunds]
    await booking_service.note_refund(
        session,
        actor=actor,
        appointment_id=event.appointment_id,
        state=RefundShown.AT_WINDOW if RefundShown.AT_WINDOW in shown else shown[0],
        now=event.at,
    )
    by_order = {o.id: o for o in orders}
    for refund in refunds:
        assert refund.order_id is not None
        order = by_order[refund.order_id]
        if RefundState(refund.state) is RS.AT_WINDOW:
            # The patient must act: they are told where to go.
            _tell(
                session,
                kind=MessageKind.REFUND_AT_WINDOW,
                order=order,
                appointment_id=event.appointment_id,
                now=event.at,
            )
        elif (
            isinstance(event, events.AppointmentCancelled)
            and event.reason is CancelReason.RESCHEDULED
        ):
            # The reschedule's own message says nothing of money: this one does.
            _tell(
                session,
                kind=MessageKind.REFUND_STARTED,
                order=order,
                appointment_id=event.appointment_id,
                now=event.at,
            )


async def _carry_over(session: AsyncSession, event: events.PaymentCarriedOver) -> None:
    actor = event.actor
    for order in await _orders_of(session, appointment_id=event.from_appointment_id):
        if OrderState(order.state) is not OS.PAID:
            continue
        before = order_snapshot(order)
        order.appointment_id = event.to_appointment_id
        order.updated_at = event.at
        _audit_order(
            session, actor=actor, action="move_order", order=order, before=before, now=event.at
        )
        if event.told:
            continue
        _tell(
            session,
            kind=MessageKind.PAYMENT_CARRIED_OVER,
            order=order,
            appointment_id=event.to_appointment_id,
            now=event.at,
        )


events.subscribe(on_booking_event)


# --- sending refunds ------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundCall:
    refund_id: uuid.UUID
    provider: gw.Provider
    request: gw.RefundRequest


async def claim_refund(
    session: AsyncSession, *, refund_id: uuid.UUID, notify_url: str, now: datetime
) -> RefundCall | None:
    """Marks a due refund as being sent and pushes its next try out (a lease: a worker
    that dies mid-call leaves it to be sent again later, with the same out_refund_no)."""
    refund = await session.scalar(
        select(Refund)
        .where(
            Refund.id == refund_id,
            Refund.state.in_((RS.REQUESTED, RS.PROCESSING)),
            Refund.next_try_at <= now,
        )
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if refund is None:
        return None
    before = refund_snapshot(refund)
    refund.state = rules.refund_transition(RefundState(refund.state), "send")
    refund.tries += 1
    refund.next_try_at = rules.next_try(refund.tries, now=now)
    refund.updated_at = now
    if RefundState(before["state"]) is RS.REQUESTED:
        _audit_refund(
            session,
            actor=system_actor(refund.hospital_id, "refunds"),
            action="send_refund",
            refund=refund,
            before=before,
            now=now,
        )
    provider, out_trade_no, total_fen = await refund_target(session, refund=refund)
    return RefundCall(
        refund.id,
        gw.Provider(provider),
        gw.RefundRequest(
            out_trade_no=out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_fen=refund.amount_fen,
            total_fen=total_fen,
            reason=refund.reason,
            notify_url=notify_url,
        ),
    )


async def apply_refund_status(
    session: AsyncSession,
    *,
    refund: Refund,
    status: gw.RefundStatus,
    actor: Actor,
    now: datetime,
) -> bool:
    """The provider's word on a refund (an answer or a notification). Returns whether the
    refund reached an end (succeeded or failed) now."""
    state = RefundState(refund.state)
    if state not in (RS.REQUESTED, RS.PROCESSING):
        return False
    if status.refund_id:
        refund.provider_refund_id = status.refund_id
    if status.state is gw.RefundState.PROCESSING:
        refund.next_try_at = now + rules.PROCESSING_POLL
        refund.updated_at = now
        return False
    before = refund_snapshot(refund)
    if refund.order_id is None:
        # A provider-only charge given back: no order, no appointment, nobody to tell.
        succeeded = status.state is gw.RefundState.SUCCEEDED
        refund.state = rules.refund_transition(state, "succeed" if succeeded else "fail")
        if not succeeded:
            refund.last_error = status.failure or "refund failed"
        refund.finished_at = status.finished_at or now
        refund.next_try_at = None
        refund.updated_at = now
        action = "refunded" if succeeded else "refund_failed"
        _audit_refund(session, actor=actor, action=action, refund=refund, before=before, now=now)
        return True
    order = await session.get(PaymentOrder, refund.order_id, with_for_update=True)
    assert order is not None
    assert refund.appointment_id is not None
    order_before = order_snapshot(order)
    if status.state is gw.RefundState.SUCCEEDED:
        refund.state = rules.refund_transition(state, "succeed")
        order.state = rules.order_transition(OrderState(order.state), "refunded")
        shown, kind, action = RefundShown.REFUNDED, MessageKind.REFUND_SUCCEEDED, "refunded"
    else:
        refund.state = rules.refund_transition(state, "fail")
        refund.last_error = status.failure or "refund failed"
        order.state = rules.order_transition(OrderState(order.state), "refund_failed")
        shown, kind, action = RefundShown.FAILED, MessageKind.REFUND_FAILED, "refund_failed"
    refund.finished_at = status.finished_at or now
    refund.next_try_at = None
    refund.updated_at = now
    order.updated_at = now
    _audit_refund(session, actor=actor, action=action, refund=refund, before=before, now=now)
    _audit_order(session, actor=actor, action=action, order=order, before=order_before, now=now)
    await booking_service.note_refund(
        session, actor=actor, appointment_id=refund.appointment_id, state=shown, now=now
    )
    _tell(session, kind=kind, order=order, appointment_id=refund.appointment_id, now=now)
    return True


async def record_refund_outcome(
    session: AsyncSession,
    *,
    call: RefundCall,
    status: gw.RefundStatus | None,
    error: gw.GatewayError | None,
    now: datetime,
) -> None:
    refund = await session.get(Refund, call.refund_id, with_for_update=True, populate_existing=True)
    assert refund is not None
    actor = system_actor(refund.hospital_id, "refunds")
    _attempt(
        session,
        provider=call.provider.value,
        kind=AttemptKind.REFUND,
        outcome=AttemptOutcome.OK if error is None else AttemptOutcome.ERROR,
        hospital_id=refund.hospital_id,
        order_id=refund.order_id,
        refund_id=refund.id,
        error_code=error.code if error else None,
        detail=error.message if error else None,
        now=now,
    )
    if status is not None:
        await apply_refund_status(session, refund=refund, status=status, actor=actor, now=now)
        return
    assert error is not None
    refund.last_error = f"{error.code}: {error.message}"[:500]
    refund.updated_at = now
    if error.retryable:
        refund.next_try_at = rules.next_try(refund.tries, now=now)
        return
    await apply_refund_status(
        session,
        refund=refund,
        status=gw.RefundStatus(
            call.request.out_refund_no, gw.RefundState.FAILED, failure=refund.last_error
        ),
        actor=actor,
        now=now,
    )


@dataclass
class RefundPass:
    sent: int = 0
    finished: int = 0
    waiting: int = 0


async def send_refunds(
    *, db: Database, gateways: Gateways, clock: Clock, notify_url_for: Mapping[gw.Provider, str]
) -> RefundPass:
    """The refund job: every due refund is sent to its provider outside any transaction
    and its outcome recorded; retryable failures back off (1 min, 5 min, 30 min, 2 h, then
    every 6 h) until the provider confirms; a final failure sends the patient to the window."""
    now = clock.now()
    async with db.read() as session:
        due = (
            await session.scalars(
                select(Refund.id)
                .where(
                    Refund.state.in_((RS.REQUESTED, RS.PROCESSING)),
                    Refund.next_try_at <= now,
                )
                .order_by(Refund.next_try_at)
                .limit(REFUND_BATCH)
            )
        ).all()
    report = RefundPass()
    for refund_id in due:
        provider = await _refund_provider(db, refund_id)
        if provider is None or provider not in gateways:
            report.waiting += 1
            continue

        async def claim(
            session: AsyncSession,
            refund_id: uuid.UUID = refund_id,
            notify_url: str = notify_url_for.get(provider, ""),
        ) -> Any:
            return await claim_refund(
                session,
                refund_id=refund_id,
                notify_url=notify_url,
                now=clock.now(),
            )

        call: RefundCall | None = await db.transact(claim)
        if call is None:
            continue
        report.sent += 1
        status: gw.RefundStatus | None = None
        failure: gw.GatewayError | None = None
        try:
            status = await gateways.get(call.provider).refund(call.request)
        except gw.GatewayError as error:
            failure = error

        async def record(
            session: AsyncSession,
            call: RefundCall = call,
            status: gw.RefundStatus | None = status,
            failure: gw.GatewayError | None = failure,
        ) -> None:
            await record_refund_outcome(
                session, call=call, status=status, error=failure, now=clock.now()
            )

        await db.transact(record)
        if (status is not None and status.state is not gw.RefundState.PROCESSING) or (
            failure is not None and not failure.retryable
        ):
            report.finished += 1
    return report


async def _refund_provider(db: Database, refund_id: uuid.UUID) -> gw.Provider | None:
    async with db.read() as session:
        provider = await session.scalar(
            select(func.coalesce(PaymentOrder.provider, Refund.provider))
            .select_from(Refund)
            .outerjoin(PaymentOrder, Refund.order_id == PaymentOrder.id)
            .where(Refund.id == refund_id)
        )
    return gw.Provider(provider) if provider else None


async def apply_refund_notification(
    session: AsyncSession,
    *,
    provider: gw.Provider,
    note: gw.Notification,
    digest: str,
    now: datetime,
) -> tuple[str, list[uuid.UUID]]:
    status = note.refund
    refund = (
        await session.scalar(
            select(Refund)
            .where(Refund.out_refund_no == status.out_refund_no)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if status is not None
        else None
    )
    if refund is None or status is None:
        _attempt(
            session,
            provider=provider.value,
            kind=AttemptKind.NOTIFICATION,
            outcome=AttemptOutcome.ANOMALY,
            event_id=note.event_id,
            detail="unknown refund",
            digest=digest,
            now=now,
        )
        return ANOMALY, []
    finished = await apply_refund_status(
        session,
        refund=refund,
        status=status,
        actor=system_actor(refund.hospital_id, f"{provider.value}-notify"),
        now=now,
    )
    _attempt(
        session,
        provider=provider.value,
        kind=AttemptKind.NOTIFICATION,
        outcome=AttemptOutcome.OK if finished else AttemptOutcome.DUPLICATE,
        hospital_id=refund.hospital_id,
        order_id=refund.order_id,
        refund_id=refund.id,
        event_id=note.event_id,
        digest=digest,
        now=now,
    )
    return REFUND_UPDATED if finished else DUPLICATE, []


# --- closing orders and the safety net ------------------------------------------------------


async def close_expired(session: AsyncSession, *, hospital_id: uuid.UUID, now: datetime) -> int:
    """Unpaid orders past their end are closed here (the provider refuses them anyway)."""
    actor = system_actor(hospital_id, "payments")
    orders = (
        await session.scalars(
            select(PaymentOrder)
            .where(
                PaymentOrder.hospital_id == hospital_id,
                PaymentOrder.state == OS.CREATED,
                PaymentOrder.expires_at <= now,
            )
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for order in orders:
        _close_locally(session, actor=actor, order=order, now=now)
    return len(orders)


async def close_orders(*, db: Database, gateways: Gateways, clock: Clock) -> int:
    """Tells each provider about the orders closed here (after commit, outside any
    transaction), so a cashier left open in a phone can no longer take money."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(PaymentOrder.id, PaymentOrder.provider, PaymentOrder.out_trade_no)
                .where(PaymentOrder.state == OS.CLOSED, PaymentOrder.provider_closed_at.is_(None))
                .limit(100)
            )
        ).all()
    told = 0
    for order_id, provider_name, out_trade_no in rows:
        provider = gw.Provider(provider_name)
        if provider not in gateways:
            continue
        failure: gw.GatewayError | None = None
        try:
            await gateways.get(provider).close(out_trade_no)
        except gw.GatewayError as error:
            failure = error

        async def record(
            session: AsyncSession,
            order_id: uuid.UUID = order_id,
            provider: gw.Provider = provider,
            failure: gw.GatewayError | None = failure,
        ) -> None:
            order = await session.get(PaymentOrder, order_id, with_for_update=True)
            assert order is not None
            _attempt(
                session,
                provider=provider.value,
                kind=AttemptKind.CLOSE,
                outcome=AttemptOutcome.OK if failure is None else AttemptOutcome.ERROR,
                hospital_id=order.hospital_id,
                order_id=order.id,
                error_code=failure.code if failure else None,
                detail=failure.message if failure else None,
                now=clock.now(),
            )
            # A final refusal (the order was paid meanwhile, or never existed there) ends
            # the matter: the payment's notification or reconciliation takes it from there.
            if failure is None or not failure.retryable:
                order.provider_closed_at = clock.now()

        await db.transact(record)
        told += 1 if failure is None else 0
    return told


async def refund_unclaimed(
    session: AsyncSession, *, hospital_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """The safety net: a paid order whose appointment is cancelled or expired and which
    has no refund (a path that forgot, a crash repaired by hand) is refunded now."""
    orders = (
        await session.scalars(
            select(PaymentOrder)
            .join(Appointment, Appointment.id == PaymentOrder.appointment_id)
            .where(
                PaymentOrder.hospital_id == hospital_id,
                PaymentOrder.state == OS.PAID,
                Appointment.status.in_((AppointmentStatus.CANCELLED, AppointmentStatus.EXPIRED)),
            )
            .limit(100)
            .with_for_update(of=PaymentOrder, skip_locked=True)
        )
    ).all()
    actor = system_actor(hospital_id, "refund-sweep")
    created: list[uuid.UUID] = []
    for order in orders:
        refund = request_refund(
            session, actor=actor, order=order, reason=RefundReason.UNCLAIMED, now=now
        )
        await session.flush()
        await booking_service.note_refund(
            session,
            actor=actor,
            appointment_id=order.appointment_id,
            state=rules.shown_state(RefundState(refund.state)),
            now=now,
        )
        _tell(
            session,
            kind=MessageKind.REFUND_STARTED
            if RefundState(refund.state) is RS.REQUESTED
            else MessageKind.REFUND_AT_WINDOW,
            order=order,
            appointment_id=order.appointment_id,
            now=now,
        )
        created.append(refund.id)
    return created


# --- the window ------------------------------------------------------------------------------


async def pay_at_window(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    method: gw.PayMethod,
    receipt_no: str,
    now: datetime,
) -> PaymentOrder:
    """A registrar takes the fee in cash, by bank card or insurance card, with the receipt
    number; the hold is booked at once. Open online orders of the appointment are closed."""
    require_staff(actor, Role.REGISTRAR)
    provider = rules.window_provider(method)
    appointment = await booking_service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    rules.check_payable(AppointmentStatus(appointment.status), fee_fen=appointment.fee_fen)
    order = PaymentOrder(
        id=new_id(),
        hospital_id=actor.hospital_id,
        appointment_id=appointment.id,
        patient_id=appointment.patient_id,
        amount_fen=appointment.fee_fen,
        currency="CNY",
        provider=provider.value,
        method=method.value,
        out_trade_no=new_out_trade_no(),
        state=OS.CREATED,
        receipt_no=receipt_no,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    order.state = rules.order_transition(OS.CREATED, "pay")
    order.paid_at = now
    session.add(order)
    await session.flush()
    _audit_order(session, actor=actor, action="pay_at_window", order=order, before=None, now=now)
    await settle_paid_order(session, actor=actor, order=order, now=now)
    return order


async def mark_invoice_printed(
    session: AsyncSession, *, actor: Actor, order_id: uuid.UUID, now: datetime
) -> PaymentOrder:
    """A paper invoice was printed: from now on a refund happens at the window only."""
    require_staff(actor, Role.REGISTRAR, Role.FINANCE)
    order = await _get_order(session, actor=actor, order_id=order_id)
    rules.check_invoice(OrderState(order.state))
    if order.invoice_printed_at is None:
        before = order_snapshot(order)
        order.invoice_printed_at = now
        order.updated_at = now
        _audit_order(
            session, actor=actor, action="print_invoice", order=order, before=before, now=now
        )
    return order


async def refund_at_window(
    session: AsyncSession,
    *,
    actor: Actor,
    refund_id: uuid.UUID,
    receipt_no: str | None,
    now: datetime,
) -> Refund:
    """The registrar hands the money back (a refund at the window, or an online refund that
    failed): recorded as done, with who did it."""
    require_staff(actor, Role.REGISTRAR)
    refund = await session.scalar(
        select(Refund)
        .where(Refund.id == refund_id, Refund.hospital_id == actor.hospital_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if refund is None:
        raise NotFound(what="refund")
    before = refund_snapshot(refund)
    refund.state = rules.refund_transition(RefundState(refund.state), "refund_at_window")
    refund.window_receipt_no = receipt_no
    refund.handled_by = actor.audit_name
    refund.finished_at = now
    refund.next_try_at = None
    refund.updated_at = now
    if refund.order_id is None or refund.appointment_id is None:
        # A provider-only charge handed back by hand: no order or appointment to update.
        _audit_refund(
            session, actor=actor, action="refund_at_window", refund=refund, before=before, now=now
        )
        return refund
    order = await _get_order(session, actor=actor, order_id=refund.order_id)
    order_before = order_snapshot(order)
    order.state = rules.order_transition(OrderState(order.state), "refunded")
    order.updated_at = now
    _audit_refund(
        session, actor=actor, action="refund_at_window", refund=refund, before=before, now=now
    )
    _audit_order(session, actor=actor, action="refunded", order=order, before=order_before, now=now)
    await booking_service.note_refund(
        session,
        actor=actor,
        appointment_id=refund.appointment_id,
        state=RefundShown.REFUNDED,
        now=now,
    )
    _tell(
        session,
        kind=MessageKind.REFUND_SUCCEEDED,
        order=order,
        appointment_id=refund.appointment_id,
        now=now,
    )
    return refund


async def _get_order(session: AsyncSession, *, actor: Actor, order_id: uuid.UUID) -> PaymentOrder:
    order = await session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.id == order_id, PaymentOrder.hospital_id == actor.hospital_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(what="payment_order")
    return order


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentShown:
    """What an appointment's answer shows of its money."""

    state: str
    amount_fen: int
    provider: str
    refund_state: str | None
    refund_id: uuid.UUID | None
    order_id: uuid.UUID
    method: str | None = None
    paid_at: datetime | None = None
    invoice_printed: bool = False
    # The window's receipt numbers: the fee taken, and the money handed back.
    receipt_no: str | None = None
    refund_receipt_no: str | None = None
    refund_amount_fen: int | None = None


async def payment_of(session: AsyncSession, *, appointment_id: uuid.UUID) -> PaymentShown | None:
    """The appointment's payment as the patient sees it: the paid (or refunding) order if
    any, else the latest open one."""
    orders = await _orders_of(session, appointment_id=appointment_id, lock=False)
    if not orders:
        return None
    rank = {OS.PAID: 0, OS.REFUNDING: 0, OS.REFUNDED: 0, OS.REFUND_FAILED: 0, OS.CREATED: 1}
    candidates = [o for o in orders if OrderState(o.state) in rank]
    if not candidates:
        return None
    order = sorted(
        candidates, key=lambda o: (rank[OrderState(o.state)], -o.created_at.timestamp())
    )[0]
    refund = await session.scalar(select(Refund).where(Refund.order_id == order.id))
    return PaymentShown(
        state=str(order.state),
        amount_fen=order.amount_fen,
        provider=order.provider,
        refund_state=str(refund.state) if refund else None,
        refund_id=refund.id if refund else None,
        order_id=order.id,
        method=order.method,
        paid_at=order.paid_at,
        invoice_printed=order.invoice_printed_at is not None,
        receipt_no=order.receipt_no,
        refund_receipt_no=refund.window_receipt_no if refund else None,
        refund_amount_fen=refund.amount_fen if refund else None,
    )


async def find_orders(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: FieldCipher,
    voucher: str | None = None,
    phone: str | None = None,
    transaction_id: str | None = None,
    limit: int = 100,
) -> list[tuple[PaymentOrder, Refund | None]]:
    """Finance's search: by the voucher code, the patient's phone or the provider's
    transaction id (or our out_trade_no)."""
    require_staff(actor, Role.FINANCE)
    query = (
        select(PaymentOrder, Refund)
        .outerjoin(Refund, Refund.order_id == PaymentOrder.id)
        .where(PaymentOrder.hospital_id == actor.hospital_id)
        .order_by(PaymentOrder.created_at.desc())
        .limit(limit)
    )
    if voucher:
        query = query.join(Appointment, Appointment.id == PaymentOrder.appointment_id).where(
            Appointment.voucher_code == voucher.strip()
        )
    if phone:
        query = query.join(Patient, Patient.id == PaymentOrder.patient_id).where(
            Patient.phone_index.in_(patient_service.phone_indexes(cipher, phone.strip()[-11:]))
        )
    if transaction_id:
        text = transaction_id.strip()
        query = query.where(
            or_(PaymentOrder.transaction_id == text, PaymentOrder.out_trade_no == text)
        )
    rows = (await session.execute(query)).all()
    return [(row[0], row[1]) for row in rows]


async def refund_target(session: AsyncSession, *, refund: Refund) -> tuple[str, str, int]:
    """Where a refund goes: (provider, out_trade_no, the charge's total) from its order, or
    from the refund itself when the charge had no order (a provider-only charge)."""
    if refund.order_id is None:
        assert refund.provider is not None
        assert refund.out_trade_no is not None
        assert refund.total_fen is not None
        return refund.provider, refund.out_trade_no, refund.total_fen
    order = await session.get(PaymentOrder, refund.order_id)
    assert order is not None
    return order.provider, order.out_trade_no, order.amount_fen


async def refund_order(
    session: AsyncSession,
    *,
    actor: Actor,
    order: PaymentOrder,
    reason: RefundReason,
    now: datetime,
    out_refund_no: str | None = None,
) -> Refund:
    """A paid order refunded outside a cancellation (the safety net's way, for the T+1
    reconciliation): the refund row the job sends, what the appointment shows of it, and a
    message telling the patient."""
    refund = request_refund(
        session, actor=actor, order=order, reason=reason, now=now, out_refund_no=out_refund_no
    )
    await session.flush()
    await booking_service.note_refund(
        session,
        actor=actor,
        appointment_id=order.appointment_id,
        state=rules.shown_state(RefundState(refund.state)),
        now=now,
    )
    _tell(
        session,
        kind=MessageKind.REFUND_STARTED
        if RefundState(refund.state) is RS.REQUESTED
        else MessageKind.REFUND_AT_WINDOW,
        order=order,
        appointment_id=order.appointment_id,
        now=now,
    )
    return refund


# --- finance's pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSearch:
    """Finance's search: any of the voucher code, the patient's phone (matched by its blind
    index, never stored or shown in full), the provider's transaction id or our
    out_trade_no, a range of local days (by when the order was created), provider, state."""

    voucher: str | None = None
    phone: str | None = None
    reference: str | None = None
    date_from: datetime | None = None  # aware instants: the caller turns local days into them
    date_to: datetime | None = None  # exclusive
    provider: gw.Provider | None = None
    state: OrderState | None = None


@dataclass(frozen=True)
class FoundOrder:
    order: PaymentOrder
    refund: Refund | None
    patient_name: str
    phone_masked: str
    voucher_code: str


async def search_orders(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: FieldCipher,
    search: OrderSearch,
    limit: int = 200,
) -> list[FoundOrder]:
    require_staff(actor, Role.FINANCE)
    query = (
        select(PaymentOrder, Refund, Patient.name, Patient.phone_masked, Appointment.voucher_code)
        .outerjoin(Refund, Refund.order_id == PaymentOrder.id)
        .join(Patient, Patient.id == PaymentOrder.patient_id)
        .join(Appointment, Appointment.id == PaymentOrder.appointment_id)
        .where(PaymentOrder.hospital_id == actor.hospital_id)
        .order_by(PaymentOrder.created_at.desc(), PaymentOrder.id)
        .limit(limit)
    )
    if search.voucher:
        query = query.where(Appointment.voucher_code == search.voucher.strip())
    if search.phone:
        digits = "".join(ch for ch in search.phone if ch.isdigit())[-11:]
        query = query.where(Patient.phone_index.in_(patient_service.phone_indexes(cipher, digits)))
    if search.reference:
        text = search.reference.strip()
        query = query.where(
            or_(PaymentOrder.transaction_id == text, PaymentOrder.out_trade_no == text)
        )
    if search.date_from is not None:
        query = query.where(PaymentOrder.created_at >= search.date_from)
    if search.date_to is not None:
        query = query.where(PaymentOrder.created_at < search.date_to)
    if search.provider is not None:
        query = query.where(PaymentOrder.provider == search.provider.value)
    if search.state is not None:
        query = query.where(PaymentOrder.state == search.state.value)
    rows = (await session.execute(query)).all()
    return [FoundOrder(row[0], row[1], row[2], row[3], row[4]) for row in rows]


@dataclass(frozen=True)
class OrderDetail:
    found: FoundOrder
    attempts: list[PaymentAttempt]  # calls to the provider and notifications, oldest first


async def order_detail(session: AsyncSession, *, actor: Actor, order_id: uuid.UUID) -> OrderDetail:
    """One order for finance: the patient masked, its refund, every call and notification."""
    require_staff(actor, Role.FINANCE)
    row = (
        await session.execute(
            select(
                PaymentOrder, Refund, Patient.name, Patient.phone_masked, Appointment.voucher_code
            )
            .outerjoin(Refund, Refund.order_id == PaymentOrder.id)
            .join(Patient, Patient.id == PaymentOrder.patient_id)
            .join(Appointment, Appointment.id == PaymentOrder.appointment_id)
            .where(PaymentOrder.id == order_id, PaymentOrder.hospital_id == actor.hospital_id)
        )
    ).first()
    if row is None:
        raise NotFound(what="payment_order")
    attempts = (
        await session.scalars(
            select(PaymentAttempt)
            .where(PaymentAttempt.order_id == order_id)
            .order_by(PaymentAttempt.at, PaymentAttempt.id)
        )
    ).all()
    return OrderDetail(FoundOrder(row[0], row[1], row[2], row[3], row[4]), list(attempts))


# --- asking the provider ----------------------------------------------------------------------


@dataclass(frozen=True)
class Synced:
    """What `sync_order` learnt: the result of applying the provider's answer (`PAID`,
    `DUPLICATE`, `IGNORED`, `ANOMALY`) or None when nothing could be asked or answered, and
    the refunds a late payment started (the caller rings the refund job)."""

    result: str | None
    refunds: list[uuid.UUID] = field(default_factory=list)


async def sync_order(
    *,
    db: Database,
    gateways: Gateways,
    hospital_id: uuid.UUID,
    appointment_id: uuid.UUID,
    clock: Clock,
) -> Synced:
    """Asks the providers about the appointment's unpaid online orders (the patient is back
    from the cashier and the notification has not arrived yet), newest first; closed ones
    too, since a cashier left open may have taken the money after the hold ended (a late
    payment). A PAID answer is applied exactly like a verified notification, through
    `apply_payment`, so a notification arriving at the same moment finds the order paid and
    changes nothing. Each provider is asked outside any transaction; its answer (or
    failure) is recorded."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(PaymentOrder.id, PaymentOrder.provider, PaymentOrder.out_trade_no)
                .where(
                    PaymentOrder.hospital_id == hospital_id,
                    PaymentOrder.appointment_id == appointment_id,
                    PaymentOrder.state.in_((OS.CREATED, OS.CLOSED)),
                    PaymentOrder.provider.in_([p.value for p in gateways]),
                )
                .order_by(PaymentOrder.created_at.desc(), PaymentOrder.id.desc())
                .limit(3)
            )
        ).all()
    synced = Synced(None)
    for order_id, provider_name, out_trade_no in rows:
        provider = gw.Provider(provider_name)
        status: gw.TradeStatus | None = None
        failure: gw.GatewayError | None = None
        try:
            status = await gateways.get(provider).query(out_trade_no)
        except gw.GatewayError as error:
            failure = error

        async def record(
            session: AsyncSession,
            order_id: uuid.UUID = order_id,
            provider: gw.Provider = provider,
            out_trade_no: str = out_trade_no,
            status: gw.TradeStatus | None = status,
            failure: gw.GatewayError | None = failure,
        ) -> tuple[str | None, list[uuid.UUID]]:
            now = clock.now()
            if status is None or status.out_trade_no != out_trade_no:
                _attempt(
                    session,
                    provider=provider.value,
                    kind=AttemptKind.QUERY,
                    outcome=AttemptOutcome.ERROR,
                    hospital_id=hospital_id,
                    order_id=order_id,
                    error_code=failure.code if failure else "WRONG_TRADE",
                    detail=failure.message if failure else "the answer names another trade",
                    now=now,
                )
                return None, []
            note = gw.Notification(
                kind=gw.NotificationKind.PAYMENT, event_id=f"query:{out_trade_no}", trade=status
            )
            return await apply_payment(
                session,
                provider=provider,
                note=note,
                digest=None,
                now=now,
                kind=AttemptKind.QUERY,
            )

        result, refunds = await db.transact(record)
        synced = Synced(result or synced.result, [*synced.refunds, *refunds])
        if result in (PAID, DUPLICATE):
            break
    return synced
