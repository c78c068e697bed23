"""Asking the provider (`sync_order`): a PAID answer books exactly like a verified
notification, through the same idempotent path, and racing the notification books once."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.conftest import World
from tests.helpers import row_counts
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
from yuyue.payments.models import PaymentAttempt
from yuyue.payments.states import AttemptKind, AttemptOutcome, OrderState
from yuyue.web.context import AppContext


async def sync(ctx: AppContext, world: World, appointment_id: object) -> payments.Synced:
    return await payments.sync_order(
        db=ctx.db,
        gateways=ctx.gateways,
        hospital_id=world.hospital.id,
        appointment_id=appointment_id,  # type: ignore[arg-type]
        clock=ctx.clock,
    )


class TestSyncOrder:
    async def test_a_paid_answer_books_and_a_later_notification_changes_nothing(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        synced = await sync(ctx, world, held)

        assert synced.result == payments.PAID and synced.refunds == []
        assert (await appointment(ctx, held)).status == AppointmentStatus.BOOKED
        order = await order_for(ctx, held)
        assert order.state == OrderState.PAID and order.transaction_id
        assert (await notify(ctx, headers, body)).result == payments.DUPLICATE
        assert await messages(ctx, "booking_confirmed") == 1
        async with ctx.db.read() as s:
            attempts = (
                await s.execute(
                    select(PaymentAttempt.kind, PaymentAttempt.outcome).where(
                        PaymentAttempt.order_id == order.id
                    )
                )
            ).all()
        assert (AttemptKind.QUERY, AttemptOutcome.OK) in attempts

    async def test_an_unpaid_trade_is_recorded_as_asked_and_changes_nothing_else(
        self, ctx: AppContext, world: World
    ) -> None:
        install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        assert (await sync(ctx, world, held)).result is None  # no order: nothing to ask
        await start(ctx, world, held)
        before = await row_counts(ctx.db)

        assert (await sync(ctx, world, held)).result == payments.IGNORED

        after = await row_counts(ctx.db)
        assert after.pop("payment_attempt") == before.pop("payment_attempt") + 1
        assert after == before
        assert (await appointment(ctx, held)).status == AppointmentStatus.HELD

    async def test_the_query_and_the_notification_racing_book_once(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        synced, handled = await asyncio.gather(sync(ctx, world, held), notify(ctx, headers, body))

        assert sorted([synced.result or "", handled.result]) == sorted(
            [payments.PAID, payments.DUPLICATE]
        )
        assert (await appointment(ctx, held)).status == AppointmentStatus.BOOKED
        assert await messages(ctx, "booking_confirmed") == 1
