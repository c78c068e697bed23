"""Medical insurance (医保移动支付) in the payments context: a held appointment is paid by
pre-authorisation, then settled or released.

- `start_insurance_payment`: the patient gives their insurance number; an order and its
  `InsuranceHold` are committed, the platform is asked to hold the full fee (outside any
  transaction), and once it does the order is `authorized` and the appointment booked
  through booking's `confirm_payment`.
- The hospital's payment setting (`PaymentSettings.insurance_settlement`, default after the
  visit) says when the hold is settled: at booking (in the same request) or when the visit
  completes (booking's `AppointmentCompleted`). Settling records the insurer's share (pool
  and personal account) and the patient's own share on the order and the appointment, and
  the rest of the hold is released.
- A cancellation or a no-show (`AppointmentMissed`) before settlement releases the hold:
  nothing was taken, nothing is refunded. A cancellation after settlement is a refund
  through the one refund path (`service.request_refund`, by the common subscriber); this
  module sends it to the platform (`refund_settlement`) and records the answer with
  `service.record_refund_outcome`.
- The platform's notifications are verified with the insurance adapter and applied with
  the same functions, so a settlement we missed (a timeout) is recorded once.

As everywhere in payments: decisions are written in a transaction as intents
(`settle_due_at`, `release_due_at`), the platform is called after the commit, and its
answer is recorded in a second transaction; every platform call is idempotent, so the
insurance pass (`run_insurance_pass`, a job) finishes whatever a crash left due."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import events
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.states import AppointmentStatus, CancelReason
from yuyue.kit import i18n
from yuyue.kit.clock import Clock
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.db import Database
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.kit.ids import new_id
from yuyue.kit.rekey import SealedColumn
from yuyue.payments import gateway as gw
from yuyue.payments import rules
from yuyue.payments import service as payments
from yuyue.payments.insurance import (
    InsuranceEvent,
    InsuranceGateway,
    InsuranceNotification,
    Preauthorization,
    Settlement,
    SettlementRefund,
)
from yuyue.payments.models import InsuranceHold, PaymentOrder, PaymentSettings, Refund
from yuyue.payments.rules import (
    AppointmentMoment,
    InsuranceSettlement,
    InsuranceStep,
    Split,
)
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
PROVIDER = gw.Provider.INSURANCE
METHOD = gw.PayMethod.INSURANCE_MOBILE
# Holds worked on per pass at most; the rest wait for the next pass.
PASS_BATCH = 50


class NoReceipt(YuyueError):
    """Nothing was paid (or held) for this appointment: there is no receipt yet."""

    code = "no_receipt"
    status = 409


i18n.register(
    {
        "title.no_receipt": ("暂无收据", "No receipt"),
        "error.no_receipt": (
            "该预约尚未支付，没有收据。",
            "This appointment has not been paid; there is no receipt.",
        ),
    }
)


# --- the hospital's setting -----------------------------------------------------------------


def sealed_columns() -> list[SealedColumn]:
    """The insured person's number, sealed on the hold (for `yuyue keys rotate`)."""
    return [SealedColumn(InsuranceHold, "insured_cipher")]


async def settlement_of(session: AsyncSession, *, hospital_id: uuid.UUID) -> InsuranceSettlement:
    value = await session.scalar(
        select(PaymentSettings.insurance_settlement).where(
            PaymentSettings.hospital_id == hospital_id
        )
    )
    return InsuranceSettlement(value) if value else rules.DEFAULT_INSURANCE_SETTLEMENT


async def set_settlement(
    session: AsyncSession, *, actor: Actor, settlement: InsuranceSettlement, now: datetime
) -> InsuranceSettlement:
    """A hospital administrator chooses when pre-authorised fees are settled. Holds
    already granted follow the setting in force when their moment comes."""
    require_staff(actor, Role.ADMIN)
    row = await session.get(PaymentSettings, actor.hospital_id, with_for_update=True)
    before = {"insurance_settlement": row.insurance_settlement} if row else None
    if row is None:
        row = PaymentSettings(hospital_id=actor.hospital_id)
        session.add(row)
    row.insurance_settlement = settlement.value
    row.updated_by = actor.audit_name
    row.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="payment_settings",
        entity_type="payment_settings",
        entity_id=actor.hospital_id,
        before=before,
        after={"insurance_settlement": settlement.value},
        now=now,
    )
    return settlement


# --- shared pieces --------------------------------------------------------------------------


def _split_of(order: PaymentOrder) -> Split | None:
    if order.pool_fen is None or order.account_fen is None or order.self_pay_fen is None:
        return None
    return Split(order.pool_fen, order.account_fen, order.self_pay_fen)


async def _lock_hold(session: AsyncSession, *, order_id: uuid.UUID) -> InsuranceHold | None:
    return await session.scalar(
        select(InsuranceHold)
        .where(InsuranceHold.order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _lock_order_by_id(session: AsyncSession, order_id: uuid.UUID) -> PaymentOrder:
    order = await session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(what="payment_order")
    return order


def _transition(
    session: AsyncSession,
    *,
    actor: Actor,
    order: PaymentOrder,
    action: str,
    now: datetime,
) -> None:
    before = payments.order_snapshot(order)
    order.state = rules.order_transition(OrderState(order.state), action)
    order.updated_at = now
    payments._audit_order(
        session, actor=actor, action=f"insurance_{action}", order=order, before=before, now=now
    )


def _due(
    hold: InsuranceHold, *, settle: bool = False, release: bool = False, now: datetime
) -> None:
    """Writes an intent; the pass (or the request) calls the platform after commit."""
    if settle and hold.settle_due_at is None:
        hold.settle_due_at = now
    if release and hold.release_due_at is None:
        hold.release_due_at = now
    hold.next_try_at = now
    hold.tries = 0
    hold.updated_at = now


def _release_locally(
    session: AsyncSession,
    *,
    actor: Actor,
    order: PaymentOrder,
    hold: InsuranceHold,
    now: datetime,
) -> None:
    _transition(session, actor=actor, order=order, action="release", now=now)
    _due(hold, release=True, now=now)


# --- paying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldPlan:
    order_id: uuid.UUID
    out_trade_no: str
    amount_fen: int


@dataclass(frozen=True)
class InsurancePayment:
    """What the patient's client learns: the order, its state and, once settled, the split."""

    order_id: uuid.UUID
    appointment_id: uuid.UUID
    state: OrderState
    amount_fen: int
    insured_masked: str
    booked: bool
    split: Split | None


async def open_hold(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: FieldCipher,
    appointment_id: uuid.UUID,
    insured_number: str,
    now: datetime,
) -> HoldPlan:
    """The first transaction: the order and its hold row, committed before the platform is
    asked, so a crash in between leaves a row the pass can release."""
    rules.check_online_method(PROVIDER, METHOD)
    appointment = await booking_service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    rules.check_payable(AppointmentStatus(appointment.status), fee_fen=appointment.fee_fen)
    for order in await payments._orders_of(session, appointment_id=appointment.id):
        if (
            OrderState(order.state) is OS.CREATED
            and order.provider == PROVIDER.value
            and order.method == METHOD.value
        ):
            # An earlier attempt whose answer never came: closed, and released at the
            # platform should it have been held after all.
            payments._close_locally(session, actor=actor, order=order, now=now)
            order.provider_closed_at = now
            hold = await _lock_hold(session, order_id=order.id)
            if hold is not None:
                _due(hold, release=True, now=now)
    order = PaymentOrder(
        id=new_id(),
        hospital_id=actor.hospital_id,
        appointment_id=appointment.id,
        patient_id=appointment.patient_id,
        amount_fen=appointment.fee_fen,
        currency="CNY",
        provider=PROVIDER.value,
        method=METHOD.value,
        out_trade_no=payments.new_out_trade_no(),
        state=OS.CREATED,
        expires_at=appointment.hold_expires_at,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    session.add(
        InsuranceHold(
            hospital_id=actor.hospital_id,
            order_id=order.id,
            insured_cipher=cipher.encrypt(insured_number),
            insured_masked=rules.mask_insurance_id(insured_number),
            held_fen=order.amount_fen,
            tries=0,
            created_at=now,
            updated_at=now,
        )
    )
    payments._audit_order(
        session, actor=actor, action="create_order", order=order, before=None, now=now
    )
    return HoldPlan(order.id, order.out_trade_no, order.amount_fen)


async def record_preauth(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    auth: Preauthorization | None,
    error: gw.GatewayError | None,
    now: datetime,
) -> None:
    """The second transaction: the platform's answer. A hold books the appointment (and,
    when the hospital settles at booking, makes the settlement due); a hold the booking
    can no longer use (the place is gone, the appointment was cancelled meanwhile) is
    released. A refusal closes the order; an unknown outcome (a timeout) closes it too and
    makes a release due, which the pass completes by asking the platform again."""
    order = await _lock_order_by_id(session, order_id)
    hold = await _lock_hold(session, order_id=order.id)
    assert hold is not None
    actor = system_actor(order.hospital_id, "insurance")
    payments._attempt(
        session,
        provider=PROVIDER.value,
        kind=AttemptKind.PREAUTHORIZE,
        outcome=AttemptOutcome.OK if error is None else AttemptOutcome.ERROR,
        hospital_id=order.hospital_id,
        order_id=order.id,
        error_code=error.code if error else None,
        detail=error.message if error else None,
        now=now,
    )
    if auth is None:
        assert error is not None
        hold.last_error = f"{error.code}: {error.message}"[:500]
        hold.updated_at = now
        if OrderState(order.state) is OS.CREATED:
            payments._close_locally(session, actor=actor, order=order, now=now)
        order.provider_closed_at = now  # nothing for the common close job to tell
        if error.retryable:
            _due(hold, release=True, now=now)
        return
    hold.auth_no = auth.auth_no
    hold.held_fen = auth.held_fen
    hold.updated_at = now
    _transition(session, actor=actor, order=order, action="authorize", now=now)
    order.provider_closed_at = None
    if auth.held_fen < order.amount_fen:
        log.warning(
            "insurance hold %s covers %d of %d", auth.auth_no, auth.held_fen, order.amount_fen
        )
        _release_locally(session, actor=actor, order=order, hold=hold, now=now)
        return
    try:
        await booking_service.confirm_payment(
            session,
            actor=actor,
            appointment_id=order.appointment_id,
            paid_fen=order.amount_fen,
            payment_reference=auth.auth_no,
            payment_provider=PROVIDER.value,
            now=now,
        )
    except (
        booking_rules.PlaceGone,
        booking_rules.InvalidTransition,
        booking_rules.PaymentMismatch,
    ) as refusal:
        log.info("insurance hold %s cannot book (%s): releasing", auth.auth_no, refusal.code)
        _release_locally(session, actor=actor, order=order, hold=hold, now=now)
        return
    for other in await payments._orders_of(session, appointment_id=order.appointment_id):
        if other.id != order.id and OrderState(other.state) is OS.CREATED:
            payments._close_locally(session, actor=actor, order=other, now=now)
    settlement = await settlement_of(session, hospital_id=order.hospital_id)
    step = rules.insurance_step(OS.AUTHORIZED, AppointmentMoment.BOOKED, settlement=settlement)
    if step is InsuranceStep.SETTLE:
        _due(hold, settle=True, now=now)


async def payment_view(session: AsyncSession, *, order_id: uuid.UUID) -> InsurancePayment:
    order = await session.get(PaymentOrder, order_id, populate_existing=True)
    if order is None:
        raise NotFound(what="payment_order")
    hold = await session.scalar(select(InsuranceHold).where(InsuranceHold.order_id == order_id))
    state = OrderState(order.state)
    return InsurancePayment(
        order_id=order.id,
        appointment_id=order.appointment_id,
        state=state,
        amount_fen=order.amount_fen,
        insured_masked=hold.insured_masked if hold else "",
        booked=state in (OS.AUTHORIZED, OS.PAID),
        split=_split_of(order),
    )


async def start_insurance_payment(
    *,
    db: Database,
    insurance: InsuranceGateway | None,
    cipher: FieldCipher,
    actor: Actor,
    appointment_id: uuid.UUID,
    insured_number: str | None,
    clock: Clock,
) -> InsurancePayment:
    """Pays a held appointment by pre-authorisation: order first (committed), then the
    platform, then its answer; settles at once when the hospital settles at booking."""
    number = rules.insurance_id(insured_number)
    if insurance is None:
        raise rules.ProviderUnavailable(provider=PROVIDER.value)

    async def first(session: AsyncSession) -> HoldPlan:
        return await open_hold(
            session,
            actor=actor,
            cipher=cipher,
            appointment_id=appointment_id,
            insured_number=number,
            now=clock.now(),
        )

    plan = await db.transact(first)
    auth: Preauthorization | None = None
    failure: gw.GatewayError | None = None
    try:
        auth = await insurance.preauthorize(
            out_trade_no=plan.out_trade_no, insured_token=number, total_fen=plan.amount_fen
        )
    except gw.GatewayError as error:
        failure = error

    async def second(session: AsyncSession) -> None:
        await record_preauth(
            session, order_id=plan.order_id, auth=auth, error=failure, now=clock.now()
        )

    await db.transact(second)
    if failure is not None:
        if failure.retryable:
            raise rules.GatewayUnavailable(reason=failure.code)
        raise rules.InsuranceRefused(reason=failure.code)
    # Settlement at booking, and any release the booking's refusal made due.
    await work_hold(db=db, insurance=insurance, order_id=plan.order_id, clock=clock, cipher=cipher)
    async with db.read() as session:
        return await payment_view(session, order_id=plan.order_id)


# --- settling and releasing -----------------------------------------------------------------


async def apply_settlement(
    session: AsyncSession,
    *,
    order: PaymentOrder,
    hold: InsuranceHold,
    settlement: Settlement,
    actor: Actor,
    now: datetime,
) -> list[uuid.UUID]:
    """Records a settlement (our call's answer or the platform's notification), once: the
    split on the order and the appointment, the order paid, the rest of the hold due for
    release. A settlement that crossed a release (the booking was cancelled or missed
    meanwhile) took the money all the same: the order is paid and refunded at once.
    Returns the refunds created. The caller holds the order's and the hold's locks."""
    split = rules.check_split(
        Split(settlement.pool_fen, settlement.account_fen, settlement.self_pay_fen),
        fee_fen=order.amount_fen,
    )
    state = OrderState(order.state)
    before = payments.order_snapshot(order)
    order.state = rules.order_transition(state, "settle")
    order.pool_fen, order.account_fen, order.self_pay_fen = (
        split.pool_fen,
        split.account_fen,
        split.self_pay_fen,
    )
    order.transaction_id = settlement.settlement_no
    order.paid_at = settlement.settled_at
    order.updated_at = now
    payments._audit_order(
        session, actor=actor, action="insurance_settle", order=order, before=before, now=now
    )
    hold.settled_at = settlement.settled_at
    _due(hold, release=True, now=now)  # whatever the settlement left of the hold
    await booking_service.note_payment_split(
        session,
        actor=actor,
        appointment_id=order.appointment_id,
        pool_fen=split.pool_fen,
        account_fen=split.account_fen,
        self_pay_fen=split.self_pay_fen,
        now=now,
    )
    if state is not OS.RELEASED:
        return []
    appointment = await booking_service.lock_appointment(
        session, hospital_id=order.hospital_id, appointment_id=order.appointment_id
    )
    reason = (
        rules.refund_reason(CancelReason(appointment.cancel_reason))
        if appointment.cancel_reason
        else RefundReason.UNCLAIMED
    )
    refund = payments.request_refund(session, actor=actor, order=order, reason=reason, now=now)
    await session.flush()
    await booking_service.note_refund(
        session,
        actor=actor,
        appointment_id=order.appointment_id,
        state=rules.shown_state(RefundState(refund.state)),
        now=now,
    )
    return [refund.id]


class _Work(StrEnum):
    SETTLE = "settle"
    RELEASE = "release"
    # The hold's number is unknown (a pre-authorisation whose answer was lost): ask again
    # (idempotent by out_trade_no), then release.
    FIND_AND_RELEASE = "find_and_release"


@dataclass(frozen=True)
class _Claim:
    order_id: uuid.UUID
    work: _Work
    out_trade_no: str
    amount_fen: int
    auth_no: str | None
    insured_number: str | None


def _work_of(order: PaymentOrder, hold: InsuranceHold) -> _Work | None:
    state = OrderState(order.state)
    if hold.settle_due_at is not None and hold.settled_at is None and state is OS.AUTHORIZED:
        return _Work.SETTLE
    if hold.release_due_at is not None and hold.released_at is None:
        return _Work.RELEASE if hold.auth_no else _Work.FIND_AND_RELEASE
    return None


async def _claim(
    session: AsyncSession, *, order_id: uuid.UUID, cipher: FieldCipher | None, now: datetime
) -> _Claim | None:
    hold = await session.scalar(
        select(InsuranceHold)
        .where(InsuranceHold.order_id == order_id, InsuranceHold.next_try_at <= now)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if hold is None:
        return None
    order = await session.get(PaymentOrder, order_id, populate_existing=True)
    assert order is not None
    work = _work_of(order, hold)
    if work is None:
        hold.next_try_at = None
        hold.updated_at = now
        return None
    if work is _Work.FIND_AND_RELEASE and cipher is None:
        return None
    # A lease: a worker that dies mid-call leaves it to the next pass after the back-off.
    hold.tries += 1
    hold.next_try_at = rules.next_try(hold.tries, now=now)
    hold.updated_at = now
    return _Claim(
        order_id=order.id,
        work=work,
        out_trade_no=order.out_trade_no,
        amount_fen=order.amount_fen,
        auth_no=hold.auth_no,
        insured_number=cipher.decrypt(hold.insured_cipher)
        if work is _Work.FIND_AND_RELEASE and cipher is not None
        else None,
    )


async def _record(
    session: AsyncSession,
    *,
    claim: _Claim,
    settlement: Settlement | None,
    released: bool,
    auth_no: str | None,
    error: gw.GatewayError | None,
    now: datetime,
) -> list[uuid.UUID]:
    order = await _lock_order_by_id(session, claim.order_id)
    hold = await _lock_hold(session, order_id=order.id)
    assert hold is not None
    actor = system_actor(order.hospital_id, "insurance")
    payments._attempt(
        session,
        provider=PROVIDER.value,
        kind=AttemptKind.SETTLE if claim.work is _Work.SETTLE else AttemptKind.RELEASE,
        outcome=AttemptOutcome.OK if error is None else AttemptOutcome.ERROR,
        hospital_id=order.hospital_id,
        order_id=order.id,
        error_code=error.code if error else None,
        detail=error.message if error else None,
        now=now,
    )
    if auth_no and hold.auth_no is None:
        hold.auth_no = auth_no
    if error is not None:
        hold.last_error = f"{error.code}: {error.message}"[:500]
        hold.updated_at = now
        if not error.retryable:
            # A final refusal (the platform has no such hold, or it is settled or released
            # already): the notification or the T+1 statement tells what happened.
            hold.next_try_at = None
            log.warning(
                "insurance %s of %s refused: %s", claim.work, order.out_trade_no, error.code
            )
        return []
    hold.last_error = None
    if settlement is not None:
        if hold.settled_at is not None:
            return []  # the notification came first
        refunds = await apply_settlement(
            session, order=order, hold=hold, settlement=settlement, actor=actor, now=now
        )
        return refunds
    if released:
        hold.released_at = now
        hold.updated_at = now
        # Anything else due (a settlement crossed by a cancellation) is done; nothing left.
        hold.next_try_at = now if _work_of(order, hold) is not None else None
    return []


async def work_hold(
    *,
    db: Database,
    insurance: InsuranceGateway,
    order_id: uuid.UUID,
    clock: Clock,
    cipher: FieldCipher | None = None,
) -> list[uuid.UUID]:
    """Does what is due for one hold (settle, then release what is left), each call to the
    platform between two transactions. Returns refunds created (a settlement that crossed
    a cancellation)."""
    refunds: list[uuid.UUID] = []
    for _ in range(3):  # settle, then release the rest; at most one more for a crossing

        async def claim(session: AsyncSession) -> _Claim | None:
            return await _claim(session, order_id=order_id, cipher=cipher, now=clock.now())

        claimed = await db.transact(claim)
        if claimed is None:
            return refunds
        settlement: Settlement | None = None
        released = False
        auth_no: str | None = None
        failure: gw.GatewayError | None = None
        try:
            if claimed.work is _Work.SETTLE:
                assert claimed.auth_no is not None
                settlement = await insurance.settle(
                    auth_no=claimed.auth_no, total_fen=claimed.amount_fen
                )
            else:
                auth_no = claimed.auth_no
                if auth_no is None:
                    assert claimed.insured_number is not None
                    auth_no = (
                        await insurance.preauthorize(
                            out_trade_no=claimed.out_trade_no,
                            insured_token=claimed.insured_number,
                            total_fen=claimed.amount_fen,
                        )
                    ).auth_no
                await insurance.release(auth_no)
                released = True
        except gw.GatewayError as error:
            if claimed.work is _Work.FIND_AND_RELEASE and auth_no is None and not error.retryable:
                # The platform never held it (it refuses the same pre-authorisation now):
                # nothing to release.
                released, failure = True, None
            else:
                failure = error

        async def record(
            session: AsyncSession,
            claimed: _Claim = claimed,
            settlement: Settlement | None = settlement,
            released: bool = released,
            auth_no: str | None = auth_no,
            failure: gw.GatewayError | None = failure,
        ) -> list[uuid.UUID]:
            return await _record(
                session,
                claim=claimed,
                settlement=settlement,
                released=released,
                auth_no=auth_no,
                error=failure,
                now=clock.now(),
            )

        try:
            refunds += await db.transact(record)
        except rules.SplitMismatch:
            log.error("insurance settlement of %s does not add up", claimed.out_trade_no)
            return refunds
        if failure is not None:
            return refunds
    return refunds


@dataclass
class InsurancePass:
    worked: int = 0
    refunds_sent: int = 0
    refunds_created: list[uuid.UUID] | None = None


async def run_insurance_pass(
    *, db: Database, insurance: InsuranceGateway, cipher: FieldCipher, clock: Clock
) -> InsurancePass:
    """The job: every hold with a settlement or release due, then every insurance refund
    due, each call outside any transaction."""
    now = clock.now()
    async with db.read() as session:
        due = (
            await session.scalars(
                select(InsuranceHold.order_id)
                .where(
                    InsuranceHold.next_try_at <= now,
                    or_(
                        and_(
                            InsuranceHold.settle_due_at.is_not(None),
                            InsuranceHold.settled_at.is_(None),
                        ),
                        and_(
                            InsuranceHold.release_due_at.is_not(None),
                            InsuranceHold.released_at.is_(None),
                        ),
                    ),
                )
                .order_by(InsuranceHold.next_try_at)
                .limit(PASS_BATCH)
            )
        ).all()
    report = InsurancePass(refunds_created=[])
    for order_id in due:
        assert report.refunds_created is not None
        report.refunds_created += await work_hold(
            db=db, insurance=insurance, order_id=order_id, clock=clock, cipher=cipher
        )
        report.worked += 1
    report.refunds_sent = await send_insurance_refunds(db=db, insurance=insurance, clock=clock)
    return report


# --- refunds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RefundCall:
    call: payments.RefundCall
    settlement_no: str | None


async def send_insurance_refunds(*, db: Database, insurance: InsuranceGateway, clock: Clock) -> int:
    """Insurance refunds created by the one refund path (`service.request_refund`): each is
    claimed with `service.claim_refund`, sent as the reversal of its settlement, and its
    outcome recorded with `service.record_refund_outcome` (back-off, failure to the window,
    the patient told), as the other providers' refunds are."""
    now = clock.now()
    async with db.read() as session:
        due = (
            await session.scalars(
                select(Refund.id)
                .join(PaymentOrder, PaymentOrder.id == Refund.order_id)
                .where(
                    PaymentOrder.provider == PROVIDER.value,
                    Refund.state.in_((payments.RS.REQUESTED, payments.RS.PROCESSING)),
                    Refund.next_try_at <= now,
                )
                .order_by(Refund.next_try_at)
                .limit(payments.REFUND_BATCH)
            )
        ).all()
    sent = 0
    for refund_id in due:

        async def claim(
            session: AsyncSession, refund_id: uuid.UUID = refund_id
        ) -> _RefundCall | None:
            call = await payments.claim_refund(
                session, refund_id=refund_id, notify_url="", now=clock.now()
            )
            if call is None:
                return None
            refund = await session.get(Refund, refund_id)
            assert refund is not None
            order = await session.get(PaymentOrder, refund.order_id)
            assert order is not None
            return _RefundCall(call, order.transaction_id)

        claimed = await db.transact(claim)
        if claimed is None:
            continue
        sent += 1
        status: gw.RefundStatus | None = None
        failure: gw.GatewayError | None = None
        if claimed.settlement_no is None:
            failure = gw.GatewayError("NOT_SETTLED", "no settlement to reverse", retryable=False)
        else:
            try:
                reversal = await insurance.refund_settlement(
                    settlement_no=claimed.settlement_no, reason=claimed.call.request.reason
                )
                status = _refund_status(claimed.call.request.out_refund_no, reversal)
            except gw.GatewayError as error:
                failure = error

        async def record(
            session: AsyncSession,
            claimed: _RefundCall = claimed,
            status: gw.RefundStatus | None = status,
            failure: gw.GatewayError | None = failure,
        ) -> None:
            await payments.record_refund_outcome(
                session, call=claimed.call, status=status, error=failure, now=clock.now()
            )

        await db.transact(record)
    return sent


def _refund_status(out_refund_no: str, reversal: SettlementRefund) -> gw.RefundStatus:
    """The platform reverses a settlement whole at once: our refund succeeded."""
    return gw.RefundStatus(
        out_refund_no=out_refund_no,
        state=gw.RefundState.SUCCEEDED,
        refund_fen=reversal.total_fen,
        refund_id=reversal.refund_no,
        finished_at=reversal.refunded_at,
    )


# --- booking's events -----------------------------------------------------------------------


_MOMENTS: Mapping[type, AppointmentMoment] = {
    events.AppointmentCancelled: AppointmentMoment.CANCELLED,
    events.AppointmentCompleted: AppointmentMoment.COMPLETED,
    events.AppointmentMissed: AppointmentMoment.NO_SHOW,
}


async def on_booking_event(session: AsyncSession, event: events.BookingEvent) -> None:
    """In booking's transaction: a hold still unsettled is settled when the visit completes
    and released when the booking is cancelled or missed (the platform is called by the
    pass after commit); a reschedule that carries the payment over takes the hold along.
    Settled orders are the common subscriber's (a cancellation refunds them)."""
    if isinstance(event, events.PaymentCarriedOver):
        await _carry_over(session, event)
        return
    moment = _MOMENTS.get(type(event))
    if moment is None:
        return
    if isinstance(event, events.AppointmentCancelled) and event.payment_follows:
        return
    orders = [
        o
        for o in await payments._orders_of(session, appointment_id=event.appointment_id)
        if o.provider == PROVIDER.value and OrderState(o.state) is OS.AUTHORIZED
    ]
    if not orders:
        return
    settlement = await settlement_of(session, hospital_id=event.hospital_id)
    actor = system_actor(event.hospital_id, "insurance")
    for order in orders:
        hold = await _lock_hold(session, order_id=order.id)
        if hold is None:
            continue
        step = rules.insurance_step(OrderState(order.state), moment, settlement=settlement)
        if step is InsuranceStep.SETTLE:
            _due(hold, settle=True, now=event.at)
        elif step is InsuranceStep.RELEASE:
            _release_locally(session, actor=actor, order=order, hold=hold, now=event.at)


async def _carry_over(session: AsyncSession, event: events.PaymentCarriedOver) -> None:
    for order in await payments._orders_of(session, appointment_id=event.from_appointment_id):
        if OrderState(order.state) is not OS.AUTHORIZED:
            continue
        before = payments.order_snapshot(order)
        order.appointment_id = event.to_appointment_id
        order.updated_at = event.at
        payments._audit_order(
            session,
            actor=event.actor,
            action="move_order",
            order=order,
            before=before,
            now=event.at,
        )


events.subscribe(on_booking_event)


# --- notifications --------------------------------------------------------------------------


def notification_reply(*, accepted: bool) -> gw.NotificationReply:
    """The platform reads the status code; the body says why for its logs."""
    document = {"code": "SUCCESS"} if accepted else {"code": "FAIL", "message": "not recorded"}
    return gw.NotificationReply(
        status_code=200 if accepted else 500,
        body=json.dumps(document).encode(),
        content_type="application/json",
    )


async def handle_insurance_notification(
    *,
    db: Database,
    insurance: InsuranceGateway | None,
    headers: Mapping[str, str],
    body: bytes,
    clock: Clock,
) -> payments.Handled:
    """Verified with the insurance adapter outside any transaction, then applied in one:
    a settlement is recorded once (whichever of our call's answer and this comes first),
    a reversal finishes the order's refund. A notification that fails verification is
    logged and changes nothing."""
    digest = payments.body_digest(body)
    note: InsuranceNotification | None = None
    reason = "medical insurance is not configured"
    if insurance is not None:
        try:
            note = await insurance.verify_notification(headers, body)
        except gw.InvalidNotification as error:
            reason = str(error)
    if note is None:

        async def rejected(session: AsyncSession) -> None:
            payments._attempt(
                session,
                provider=PROVIDER.value,
                kind=AttemptKind.NOTIFICATION,
                outcome=AttemptOutcome.REJECTED,
                verified=False,
                detail=reason,
                digest=digest,
                now=clock.now(),
            )

        await db.transact(rejected)
        log.warning("insurance notification rejected: %s", reason)
        return payments.Handled(notification_reply(accepted=False), payments.REJECTED)
    verified = note

    async def apply(session: AsyncSession) -> tuple[str, list[uuid.UUID]]:
        return await apply_insurance_notification(
            session, note=verified, digest=digest, now=clock.now()
        )

    result, refunds = await db.transact(apply)
    return payments.Handled(notification_reply(accepted=True), result, refunds)


async def apply_insurance_notification(
    session: AsyncSession, *, note: InsuranceNotification, digest: str, now: datetime
) -> tuple[str, list[uuid.UUID]]:
    settlement = note.settlement
    order = await payments._lock_order(session, out_trade_no=settlement.out_trade_no)
    hold = await _lock_hold(session, order_id=order.id) if order is not None else None

    def attempt(outcome: AttemptOutcome, detail: str | None = None) -> None:
        payments._attempt(
            session,
            provider=PROVIDER.value,
            kind=AttemptKind.NOTIFICATION,
            outcome=outcome,
            hospital_id=order.hospital_id if order else None,
            order_id=order.id if order else None,
            event_id=note.event_id,
            detail=detail,
            digest=digest,
            now=now,
        )

    if (
        order is None
        or hold is None
        or order.provider != PROVIDER.value
        or (hold.auth_no is not None and hold.auth_no != settlement.auth_no)
    ):
        order = None
        attempt(AttemptOutcome.ANOMALY, f"unknown hold {settlement.out_trade_no}")
        return payments.ANOMALY, []
    actor = system_actor(order.hospital_id, "insurance-notify")
    if note.event is InsuranceEvent.SETTLED:
        if hold.settled_at is not None or order.transaction_id == settlement.settlement_no:
            attempt(AttemptOutcome.DUPLICATE)
            return payments.DUPLICATE, []
        if OrderState(order.state) not in (OS.AUTHORIZED, OS.RELEASED):
            attempt(AttemptOutcome.ANOMALY, f"settled while {order.state}")
            return payments.ANOMALY, []
        if settlement.total_fen != order.amount_fen:
            attempt(
                AttemptOutcome.ANOMALY,
                f"split adds up to {settlement.total_fen}, not {order.amount_fen}",
            )
            return payments.ANOMALY, []
        hold.auth_no = hold.auth_no or settlement.auth_no
        refunds = await apply_settlement(
            session, order=order, hold=hold, settlement=settlement, actor=actor, now=now
        )
        attempt(AttemptOutcome.OK)
        return payments.PAID, refunds
    reversal = note.refund
    refund = await session.scalar(
        select(Refund)
        .where(Refund.order_id == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if reversal is None or refund is None:
        attempt(AttemptOutcome.ANOMALY, "a reversal no refund of ours asked for")
        return payments.ANOMALY, []
    finished = await payments.apply_refund_status(
        session,
        refund=refund,
        status=_refund_status(refund.out_refund_no, reversal),
        actor=actor,
        now=now,
    )
    attempt(AttemptOutcome.OK if finished else AttemptOutcome.DUPLICATE)
    return (payments.REFUND_UPDATED if finished else payments.DUPLICATE), []


# --- the receipt ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    appointment_id: uuid.UUID
    fee_fen: int
    state: str
    provider: str
    method: str
    paid_at: datetime | None
    receipt_no: str
    split: Split | None
    insured_masked: str | None


_RECEIPT_STATES: Sequence[OrderState] = (
    OS.PAID,
    OS.REFUNDING,
    OS.REFUNDED,
    OS.REFUND_FAILED,
    OS.AUTHORIZED,
)


async def receipt_of(session: AsyncSession, *, actor: Actor, appointment_id: uuid.UUID) -> Receipt:
    """What was paid for an appointment and how: the fee, the provider, when, the receipt
    number (the window's receipt, else the provider's transaction, else our order number)
    and, for medical insurance, the split and the masked insurance number."""
    appointment = await booking_service.get_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    orders = await payments._orders_of(session, appointment_id=appointment.id, lock=False)
    paid = [o for o in orders if OrderState(o.state) in _RECEIPT_STATES]
    if not paid:
        raise NoReceipt()
    order = max(paid, key=lambda o: (o.paid_at is not None, o.created_at))
    hold = await session.scalar(select(InsuranceHold).where(InsuranceHold.order_id == order.id))
    return Receipt(
        appointment_id=appointment.id,
        fee_fen=order.amount_fen,
        state=str(order.state),
        provider=order.provider,
        method=order.method,
        paid_at=order.paid_at,
        receipt_no=order.receipt_no or order.transaction_id or order.out_trade_no,
        split=_split_of(order),
        insured_masked=hold.insured_masked if hold else None,
    )
