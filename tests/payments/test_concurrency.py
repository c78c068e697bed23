"""Real concurrency: 50 copies of one payment notification handled at once (each in its
own transaction, on SQLite and PostgreSQL) give one booking, one paid order and one
confirmation message; the order's row lock decides, not luck."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.conftest import World
from tests.payments.support import (
    appointment,
    fee_session,
    hold,
    install_double,
    messages,
    notify,
    order_for,
    start,
)
from yuyue.booking.states import AppointmentStatus
from yuyue.payments import service as payments
from yuyue.payments.models import PaymentAttempt, PaymentOrder
from yuyue.payments.states import OrderState
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

COPIES = 50


async def test_fifty_concurrent_duplicate_notifications_book_once(
    ctx: AppContext, world: World
) -> None:
    double = install_double(ctx)
    held = await hold(ctx, world, await fee_session(ctx, world))
    await start(ctx, world, held)
    headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

    handled = await asyncio.gather(*(notify(ctx, headers, body) for _ in range(COPIES)))

    results = sorted(h.result for h in handled)
    assert results.count(payments.PAID) == 1
    assert results.count(payments.DUPLICATE) == COPIES - 1
    assert all(h.reply.status_code == 204 for h in handled)
    assert (await appointment(ctx, held)).status == AppointmentStatus.BOOKED
    assert await messages(ctx, "booking_confirmed") == 1
    async with ctx.db.read() as s:
        paid = await s.scalar(
            select(func.count())
            .select_from(PaymentOrder)
            .where(PaymentOrder.state == OrderState.PAID)
        )
        attempts = await s.scalar(
            select(func.count())
            .select_from(PaymentAttempt)
            .where(PaymentAttempt.kind == "notification")
        )
        confirmations = await s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "confirm_payment", AuditEntry.entity_id == held)
        )
    assert (paid, attempts, confirmations) == (1, COPIES, 1)
