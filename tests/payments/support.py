"""Shared set-up of the payments tests: a paid level's session, held appointments, the
gateway double in the app context, and short reads of what happened."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.payments.gateway_double import GatewayDouble
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.notifications.models import OutboxMessage
from yuyue.payments import service as payments
from yuyue.payments.gateway import PayMethod, Provider
from yuyue.payments.models import PaymentOrder, Refund
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext

T = TypeVar("T")
FEE = 8000


def channel_actor(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="app", channel=Channel.APP
    )


def staff(world: World, *roles: Role) -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id="staff",
        channel=Channel.WINDOW,
        roles=frozenset(roles),
        name="staff",
    )


async def call(ctx: AppContext, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return await ctx.db.transact(work)


async def fee_session(
    ctx: AppContext, world: World, *, capacity: int = 25, day: date = VISIT_DAY
) -> ClinicSession:
    async with ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level,
            doctor=world.doctor,
            day=day,
            capacity=capacity,
            now=NOW,
        )


async def hold(
    ctx: AppContext, world: World, clinic: ClinicSession, *, patient_id: uuid.UUID | None = None
) -> uuid.UUID:
    async def work(s: AsyncSession) -> uuid.UUID:
        booked = await booking_service.book(
            s,
            actor=channel_actor(world),
            patient_id=patient_id or world.patient.id,
            session_id=clinic.id,
            slot_id=None,
            now=ctx.clock.now(),
        )
        return booked.appointment.id

    return await call(ctx, work)


def install_double(ctx: AppContext, provider: Provider = Provider.WECHATPAY) -> GatewayDouble:
    double = GatewayDouble(provider=provider)
    ctx.gateways[provider] = double
    return double


async def start(
    ctx: AppContext,
    world: World,
    appointment_id: uuid.UUID,
    *,
    provider: Provider = Provider.WECHATPAY,
    method: PayMethod = PayMethod.H5,
) -> Any:
    return await payments.start_payment(
        db=ctx.db,
        gateways=ctx.gateways,
        actor=channel_actor(world),
        appointment_id=appointment_id,
        provider=provider,
        method=method,
        notify_url="http://test/notify",
        return_url=None,
        clock=ctx.clock,
    )


async def notify(
    ctx: AppContext, headers: dict[str, str], body: bytes, provider: Provider = Provider.WECHATPAY
) -> payments.Handled:
    return await payments.handle_notification(
        db=ctx.db,
        gateways=ctx.gateways,
        provider=provider,
        headers=headers,
        body=body,
        clock=ctx.clock,
    )


async def order_for(ctx: AppContext, appointment_id: uuid.UUID) -> PaymentOrder:
    async with ctx.db.read() as s:
        order = await s.scalar(
            select(PaymentOrder)
            .where(PaymentOrder.appointment_id == appointment_id)
            .order_by(PaymentOrder.created_at.desc())
        )
    assert order is not None
    return order


async def appointment(ctx: AppContext, appointment_id: uuid.UUID) -> Appointment:
    async with ctx.db.read() as s:
        found = await s.get(Appointment, appointment_id)
    assert found is not None
    return found


async def refunds(ctx: AppContext) -> list[Refund]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(Refund).order_by(Refund.created_at))).all())


async def messages(ctx: AppContext, kind: str) -> int:
    async with ctx.db.read() as s:
        return int(
            await s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == kind)
            )
            or 0
        )


async def pay_online(
    ctx: AppContext, world: World, appointment_id: uuid.UUID, double: GatewayDouble
) -> PaymentOrder:
    """Hold → checkout → the payer pays → the notification is handled."""
    await start(ctx, world, appointment_id)
    order = await order_for(ctx, appointment_id)
    headers, body = double.pay(order.out_trade_no)
    handled = await notify(ctx, headers, body)
    assert handled.result == payments.PAID
    return await order_for(ctx, appointment_id)
