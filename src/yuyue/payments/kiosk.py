"""Paying at the kiosk: a patient whose appointment is held (and has a fee) scans a WeChat
Pay Native QR code with their phone; the kiosk page asks again every few seconds and, until
the provider's notification arrives, learns the payment by querying the provider.

The query is `service.sync_order`, the one the patient's result page uses: a payment the
provider reports is applied exactly as the notification would be, so whichever comes first
books and the other changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import service as booking_service
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.clock import Clock
from yuyue.kit.db import Database
from yuyue.payments import gateway as gw
from yuyue.payments import rules
from yuyue.payments import service as payments
from yuyue.payments.models import PaymentOrder
from yuyue.payments.registry import Gateways
from yuyue.payments.states import OrderState
from yuyue.staff.rules import Actor

KIOSK_PROVIDER = gw.Provider.WECHATPAY
KIOSK_METHOD = gw.PayMethod.NATIVE
_PAID_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


@dataclass(frozen=True)
class KioskPayment:
    appointment_id: uuid.UUID
    fee_fen: int
    paid: bool
    qr_content: str | None  # while held: what the QR code holds
    hold_expires_at: datetime | None


async def _open_order(session: AsyncSession, *, appointment_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(PaymentOrder.out_trade_no)
        .where(
            PaymentOrder.appointment_id == appointment_id,
            PaymentOrder.provider == KIOSK_PROVIDER.value,
            PaymentOrder.method == KIOSK_METHOD.value,
            PaymentOrder.state == OrderState.CREATED,
        )
        .order_by(PaymentOrder.created_at.desc())
        .limit(1)
    )


async def kiosk_payment(
    *,
    db: Database,
    gateways: Gateways,
    actor: Actor,
    appointment_id: uuid.UUID,
    notify_url: str,
    clock: Clock,
) -> KioskPayment:
    """What the kiosk shows for an appointment: paid (booked), or the QR code of its open
    Native order (the same order on every refresh, a new one once it ended). Refuses an
    appointment that is neither held nor paid (`not_held`, `no_fee`)."""
    async with db.read() as session:
        open_order = await _open_order(session, appointment_id=appointment_id)
    if open_order is not None:
        await payments.sync_order(
            db=db,
            gateways=gateways,
            hospital_id=actor.hospital_id,
            appointment_id=appointment_id,
            clock=clock,
        )
    async with db.read() as session:
        appointment = await booking_service.get_appointment(
            session, hospital_id=actor.hospital_id, appointment_id=appointment_id
        )
        status = AppointmentStatus(appointment.status)
        fee, paid_fen, hold_ends = (
            appointment.fee_fen,
            appointment.paid_fen,
            appointment.hold_expires_at,
        )
    if status in _PAID_STATUSES and paid_fen:
        return KioskPayment(appointment_id, fee, True, None, None)
    rules.check_payable(status, fee_fen=fee)
    checkout = await payments.start_payment(
        db=db,
        gateways=gateways,
        actor=actor,
        appointment_id=appointment_id,
        provider=KIOSK_PROVIDER,
        method=KIOSK_METHOD,
        notify_url=notify_url,
        return_url=None,
        clock=clock,
    )
    if not checkout.qr_content:
        raise rules.GatewayUnavailable(reason="NO_QR_CODE")
    return KioskPayment(appointment_id, fee, False, checkout.qr_content, hold_ends)
