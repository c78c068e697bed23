"""Payments on SQLite and PostgreSQL: hold → pay → booked, late payments, forged and
wrong notifications, cancellations of every kind refunded through one path, retries,
and the registrar's window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import row_counts
from tests.payments.support import (
    FEE,
    appointment,
    call,
    channel_actor,
    fee_session,
    hold,
    install_double,
    messages,
    notify,
    order_for,
    pay_online,
    refunds,
    staff,
    start,
)
from yuyue.booking import service as booking_service
from yuyue.booking.states import AppointmentStatus, RefundShown
from yuyue.jobs import close_expired_orders_once, expire_holds_once, send_refunds_once
from yuyue.kit.clock import FixedClock
from yuyue.kit.errors import Forbidden
from yuyue.payments import rules
from yuyue.payments import service as payments
from yuyue.payments.gateway import GatewayError, PayMethod, Provider, RefundState
from yuyue.payments.models import PaymentAttempt, PaymentOrder
from yuyue.payments.states import OrderState, RefundReason
from yuyue.payments.states import RefundState as OurRefund
from yuyue.scheduling.models import ClinicSession
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

S = AppointmentStatus


def advance(ctx: AppContext, delta: timedelta) -> None:
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(delta)


async def audit_actions(ctx: AppContext, entity_type: str) -> list[str]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == entity_type)
        )
        return list(rows)


async def colleague_fee_session(ctx: AppContext, world: World, doctor: Any) -> ClinicSession:
    async with ctx.db.session_scope() as s:
        return await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level,
            doctor=doctor,
            day=VISIT_DAY,
            now=NOW,
        )


class TestPayingAHold:
    async def test_payment_books_the_hold_and_the_appointment_shows_it(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        clinic = await fee_session(ctx, world)
        held = await hold(ctx, world, clinic)

        checkout = await start(ctx, world, held)
        assert checkout.redirect_url and checkout.method is PayMethod.H5
        order = await order_for(ctx, held)
        assert order.state == OrderState.CREATED and order.amount_fen == FEE
        assert order.expires_at == (await appointment(ctx, held)).hold_expires_at

        headers, body = double.pay(order.out_trade_no)
        handled = await notify(ctx, headers, body)

        assert handled.result == payments.PAID
        assert handled.reply.status_code == 204
        paid = await order_for(ctx, held)
        assert paid.state == OrderState.PAID and paid.transaction_id
        booked = await appointment(ctx, held)
        assert booked.status == S.BOOKED
        assert (booked.paid_fen, booked.payment_provider) == (FEE, "wechatpay")
        assert booked.payment_reference == paid.transaction_id
        assert await messages(ctx, "booking_confirmed") == 1
        assert "pay" in await audit_actions(ctx, "payment_order")

    async def test_a_second_click_shows_the_same_cashier(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))

        first = await start(ctx, world, held)
        second = await start(ctx, world, held)

        assert first == second
        assert [c for c in double.calls if c[0] == "create"] == [double.calls[0]]

    async def test_a_free_or_booked_appointment_is_not_paid_and_nothing_changes(
        self, ctx: AppContext, world: World
    ) -> None:
        install_double(ctx)
        free = await hold(ctx, world, world.session)  # the free level books at once
        before = await row_counts(ctx.db)
        with pytest.raises(rules.NoFee):
            await start(ctx, world, free)
        held = await hold(
            ctx, world, await fee_session(ctx, world), patient_id=world.other_patient.id
        )
        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=channel_actor(world), appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )
        before = await row_counts(ctx.db)
        with pytest.raises(rules.NotPayable):
            await start(ctx, world, held)
        assert await row_counts(ctx.db) == before

    async def test_a_method_the_provider_lacks_or_an_unconfigured_provider_is_refused(
        self, ctx: AppContext, world: World
    ) -> None:
        install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        before = await row_counts(ctx.db)
        with pytest.raises(rules.MethodNotAllowed):
            await start(ctx, world, held, method=PayMethod.WAP)
        with pytest.raises(rules.ProviderUnavailable):
            await start(ctx, world, held, provider=Provider.ALIPAY, method=PayMethod.WAP)
        assert await row_counts(ctx.db) == before

    async def test_a_refused_order_is_closed_and_the_patient_may_try_again(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        double.create_errors.append(GatewayError("SYSTEM_ERROR", "busy", retryable=True))
        held = await hold(ctx, world, await fee_session(ctx, world))

        with pytest.raises(rules.GatewayUnavailable):
            await start(ctx, world, held)
        assert (await order_for(ctx, held)).state == OrderState.CLOSED

        checkout = await start(ctx, world, held)
        assert checkout.redirect_url
        async with ctx.db.read() as s:
            states = sorted((await s.scalars(select(PaymentOrder.state))).all())
        assert states == [OrderState.CLOSED, OrderState.CREATED]


class TestNotifications:
    async def test_a_forged_notification_changes_nothing(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        order = await order_for(ctx, held)
        headers, body = double.pay(order.out_trade_no)
        forged = body.replace(b'"paid"', b'"paid" ')
        before = await row_counts(ctx.db)

        handled = await notify(ctx, headers, forged)

        assert handled.result == payments.REJECTED
        assert handled.reply.status_code == 500
        after = await row_counts(ctx.db)
        assert after.pop("payment_attempt") == before.pop("payment_attempt") + 1
        assert after == before
        assert (await appointment(ctx, held)).status == S.HELD
        async with ctx.db.read() as s:
            attempt = await s.scalar(
                select(PaymentAttempt).where(PaymentAttempt.verified.is_(False))
            )
        assert attempt is not None and attempt.outcome == "rejected" and attempt.body_digest

    async def test_a_wrong_amount_is_recorded_and_changes_nothing(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        order = await order_for(ctx, held)
        headers, body = double.pay(order.out_trade_no, amount_fen=1)

        handled = await notify(ctx, headers, body)

        assert handled.result == payments.ANOMALY
        assert (await order_for(ctx, held)).state == OrderState.CREATED
        assert (await appointment(ctx, held)).status == S.HELD

    async def test_a_repeated_notification_books_once(self, ctx: AppContext, world: World) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        first = await notify(ctx, headers, body)
        # The answer was lost (a kill -9 before replying): the provider sends it again.
        again = await notify(ctx, headers, body)

        assert (first.result, again.result) == (payments.PAID, payments.DUPLICATE)
        assert again.reply.status_code == 204
        assert (await appointment(ctx, held)).status == S.BOOKED
        assert await messages(ctx, "booking_confirmed") == 1

    async def test_a_payment_past_the_hold_before_the_sweep_books(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await start(ctx, world, held)
        advance(ctx, timedelta(minutes=20))
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        assert (await notify(ctx, headers, body)).result == payments.PAID
        assert (await appointment(ctx, held)).status == S.BOOKED

    async def test_a_late_payment_is_booked_again_while_a_place_is_free(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world, capacity=2))
        await start(ctx, world, held)
        advance(ctx, timedelta(minutes=16))
        await expire_holds_once(ctx)
        assert (await appointment(ctx, held)).status == S.EXPIRED
        # Expiry closed the order here; the provider let the payment through all the same.
        assert (await order_for(ctx, held)).state == OrderState.CLOSED
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        assert (await notify(ctx, headers, body)).result == payments.PAID
        assert (await appointment(ctx, held)).status == S.BOOKED
        assert "late_payment" in await audit_actions(ctx, "appointment")
        assert await refunds(ctx) == []

    async def test_a_late_payment_whose_place_is_gone_is_refunded_and_the_patient_told(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        clinic = await fee_session(ctx, world, capacity=1)
        held = await hold(ctx, world, clinic)
        await start(ctx, world, held)
        advance(ctx, timedelta(minutes=16))
        await expire_holds_once(ctx)
        await hold(ctx, world, clinic, patient_id=world.other_patient.id)
        headers, body = double.pay((await order_for(ctx, held)).out_trade_no)

        handled = await notify(ctx, headers, body)

        assert handled.result == payments.PAID and handled.refunds
        assert (await order_for(ctx, held)).state == OrderState.REFUNDING
        [refund] = await refunds(ctx)
        assert (refund.reason, refund.state) == (RefundReason.LATE_PAYMENT, OurRefund.REQUESTED)
        gone = await appointment(ctx, held)
        assert (gone.status, gone.refund_state) == (S.EXPIRED, RefundShown.PENDING)
        # The patient sees the money the refund gives back.
        assert (gone.paid_fen, gone.payment_provider) == (world.fee_level.fee_fen, "wechatpay")
        assert await messages(ctx, "late_payment_refund") == 1

        await send_refunds_once(ctx)

        assert (await order_for(ctx, held)).state == OrderState.REFUNDED
        assert (await appointment(ctx, held)).refund_state == RefundShown.REFUNDED
        assert await messages(ctx, "refund_succeeded") == 1
        assert [c[0] for c in double.calls].count("refund") == 1


class TestCancellationRefunds:
    async def test_a_patient_cancelling_a_paid_booking_is_refunded_online(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay_online(ctx, world, held, double)

        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=channel_actor(world), appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )

        [refund] = await refunds(ctx)
        assert (refund.reason, refund.state, refund.amount_fen) == ("patient", "requested", FEE)
        assert (await appointment(ctx, held)).refund_state == RefundShown.PENDING
        report = await send_refunds_once(ctx)
        assert (report.sent, report.finished) == (1, 1)
        assert (await appointment(ctx, held)).refund_state == RefundShown.REFUNDED
        assert await messages(ctx, "refund_succeeded") == 1

    async def test_a_substitute_takes_a_paid_booking_over_with_its_payment_and_no_refund(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        clinic = await fee_session(ctx, world)
        async with ctx.db.session_scope() as s:
            colleague = await f.make_doctor(
                s, hospital=world.hospital, department=world.department, level=world.fee_level
            )
        substitute = await colleague_fee_session(ctx, world, colleague)
        paid = await hold(ctx, world, clinic)
        unpaid = await hold(ctx, world, clinic, patient_id=world.other_patient.id)
        await pay_online(ctx, world, paid, double)
        await start(ctx, world, unpaid)  # still paying

        outcome = await call(
            ctx,
            lambda s: booking_service.stop_clinic(
                s,
                actor=staff(world, Role.SCHEDULER),
                session_id=clinic.id,
                reason="医生出差",
                now=ctx.clock.now(),
                substitute_session_id=substitute.id,
            ),
        )

        moved = {m.from_appointment_id: m.appointment_id for m in outcome.moved}
        assert set(moved) == {paid, unpaid} and outcome.cancelled == []
        assert await refunds(ctx) == []
        order = await order_for(ctx, moved[paid])
        assert order.state == OrderState.PAID and order.amount_fen == FEE
        taken_over = await appointment(ctx, moved[paid])
        assert taken_over.status == AppointmentStatus.BOOKED and taken_over.paid_fen == FEE
        # The held one pays its new booking; its first, unfinished payment is closed.
        assert (await appointment(ctx, moved[unpaid])).status == AppointmentStatus.HELD
        assert (await order_for(ctx, unpaid)).state == OrderState.CLOSED
        # One message each: the substitute's, which says the fee stands.
        assert await messages(ctx, "substituted") == 2
        assert await messages(ctx, "payment_carried_over") == 0
        assert await messages(ctx, "refund_started") == 0

    async def test_a_stop_clinic_refunds_every_paid_booking_and_closes_open_orders(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        clinic = await fee_session(ctx, world)
        first = await hold(ctx, world, clinic)
        second = await hold(ctx, world, clinic, patient_id=world.other_patient.id)
        await pay_online(ctx, world, first, double)
        await start(ctx, world, second)  # still paying

        await call(
            ctx,
            lambda s: booking_service.stop_clinic(
                s,
                actor=staff(world, Role.SCHEDULER),
                session_id=clinic.id,
                reason="医生出差",
                now=ctx.clock.now(),
            ),
        )

        [refund] = await refunds(ctx)
        assert refund.reason == "stop_clinic"
        assert (await order_for(ctx, second)).state == OrderState.CLOSED
        assert await close_expired_orders_once(ctx) == 1
        assert ("close", (await order_for(ctx, second)).out_trade_no) in double.calls
        await send_refunds_once(ctx)
        assert (await appointment(ctx, first)).refund_state == RefundShown.REFUNDED

    async def test_a_printed_invoice_sends_the_patient_to_the_window(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        order = await pay_online(ctx, world, held, double)
        await call(
            ctx,
            lambda s: payments.mark_invoice_printed(
                s, actor=staff(world, Role.REGISTRAR), order_id=order.id, now=ctx.clock.now()
            ),
        )

        await call(
            ctx,
            lambda s: booking_service.cancel(
                s,
                actor=staff(world, Role.REGISTRAR),
                appointment_id=held,
                note=None,
                now=ctx.clock.now(),
            ),
        )

        [refund] = await refunds(ctx)
        assert (refund.reason, refund.state) == ("staff", OurRefund.AT_WINDOW)
        assert (await appointment(ctx, held)).refund_state == RefundShown.AT_WINDOW
        assert await messages(ctx, "refund_at_window") == 1
        assert (await send_refunds_once(ctx)).sent == 0
        assert [c[0] for c in double.calls].count("refund") == 0

        with pytest.raises(Forbidden):
            await call(
                ctx,
                lambda s: payments.refund_at_window(
                    s,
                    actor=staff(world, Role.DOCTOR),
                    refund_id=refund.id,
                    receipt_no=None,
                    now=ctx.clock.now(),
                ),
            )
        await call(
            ctx,
            lambda s: payments.refund_at_window(
                s,
                actor=staff(world, Role.REGISTRAR),
                refund_id=refund.id,
                receipt_no="TK-001",
                now=ctx.clock.now(),
            ),
        )
        assert (await order_for(ctx, held)).state == OrderState.REFUNDED
        assert (await appointment(ctx, held)).refund_state == RefundShown.REFUNDED

    async def test_a_failed_refund_tells_the_patient_to_come_to_the_window(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay_online(ctx, world, held, double)
        double.refund_errors.append(GatewayError("NOT_ENOUGH", "no balance", retryable=False))
        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=channel_actor(world), appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )

        await send_refunds_once(ctx)

        [refund] = await refunds(ctx)
        assert refund.state == OurRefund.FAILED and "NOT_ENOUGH" in (refund.last_error or "")
        assert (await order_for(ctx, held)).state == OrderState.REFUND_FAILED
        assert (await appointment(ctx, held)).refund_state == RefundShown.FAILED
        assert await messages(ctx, "refund_failed") == 1

    async def test_a_refund_the_provider_cannot_take_yet_is_retried_with_backoff(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay_online(ctx, world, held, double)
        busy = GatewayError("SYSTEM_ERROR", "try later", retryable=True)
        double.refund_errors.extend([busy, busy])
        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=channel_actor(world), appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )
        start_at = ctx.clock.now()

        await send_refunds_once(ctx)
        [refund] = await refunds(ctx)
        assert (refund.state, refund.tries) == (OurRefund.PROCESSING, 1)
        assert refund.next_try_at == start_at + timedelta(minutes=1)
        assert (await send_refunds_once(ctx)).sent == 0  # not due yet

        advance(ctx, timedelta(minutes=1))
        await send_refunds_once(ctx)
        [refund] = await refunds(ctx)
        assert refund.tries == 2
        assert refund.next_try_at == ctx.clock.now() + timedelta(minutes=5)

        advance(ctx, timedelta(minutes=5))
        await send_refunds_once(ctx)
        [refund] = await refunds(ctx)
        assert refund.state == OurRefund.SUCCEEDED
        # Every try carried the same out_refund_no: the provider pays once.
        assert {c[1] for c in double.calls if c[0] == "refund"} == {refund.out_refund_no}

    async def test_a_refund_notification_finishes_a_processing_refund(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        double.refund_answer = RefundState.PROCESSING
        held = await hold(ctx, world, await fee_session(ctx, world))
        order = await pay_online(ctx, world, held, double)
        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=channel_actor(world), appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )
        await send_refunds_once(ctx)
        [refund] = await refunds(ctx)
        assert refund.state == OurRefund.PROCESSING

        headers, body = double.refund_notification(
            order.out_trade_no, refund.out_refund_no, RefundState.SUCCEEDED, FEE
        )
        handled = await notify(ctx, headers, body)

        assert handled.result == payments.REFUND_UPDATED
        assert (await appointment(ctx, held)).refund_state == RefundShown.REFUNDED
        assert (await notify(ctx, headers, body)).result == payments.DUPLICATE
        assert await messages(ctx, "refund_succeeded") == 1


class TestReschedule:
    async def test_the_payment_follows_the_patient_to_a_level_of_the_same_fee(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        order = await pay_online(ctx, world, held, double)
        later = await fee_session(ctx, world, day=world.session.date + timedelta(days=1))

        async def move(s: AsyncSession) -> booking_service.Booked:
            return await booking_service.reschedule(
                s,
                actor=channel_actor(world),
                appointment_id=held,
                session_id=later.id,
                slot_id=None,
                now=ctx.clock.now(),
            )

        booked = await call(ctx, move)

        assert booked.payment_carried_over is True
        assert booked.appointment.status == S.BOOKED
        moved = await order_for(ctx, booked.appointment.id)
        assert (moved.id, moved.state) == (order.id, OrderState.PAID)
        new = await appointment(ctx, booked.appointment.id)
        assert (new.status, new.paid_fen) == (S.BOOKED, FEE)
        assert (await appointment(ctx, held)).refund_state == RefundShown.NONE
        assert await refunds(ctx) == []
        assert await messages(ctx, "payment_carried_over") == 1
        assert "move_order" in await audit_actions(ctx, "payment_order")

    async def test_a_reschedule_to_another_fee_refunds_the_old_payment(
        self, ctx: AppContext, world: World
    ) -> None:
        double = install_double(ctx)
        held = await hold(ctx, world, await fee_session(ctx, world))
        await pay_online(ctx, world, held, double)

        async def move(s: AsyncSession) -> booking_service.Booked:
            return await booking_service.reschedule(
                s,
                actor=channel_actor(world),
                appointment_id=held,
                session_id=world.session.id,  # the free level
                slot_id=None,
                now=ctx.clock.now(),
            )

        booked = await call(ctx, move)

        assert booked.payment_carried_over is False
        assert booked.appointment.status == S.BOOKED
        [refund] = await refunds(ctx)
        assert refund.reason == "rescheduled"
        assert (await appointment(ctx, held)).refund_state == RefundShown.PENDING
        assert await messages(ctx, "refund_started") == 1


class TestWindow:
    async def test_a_registrar_takes_cash_and_later_refunds_it_at_the_window(
        self, ctx: AppContext, world: World
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        registrar = staff(world, Role.REGISTRAR)

        order = await call(
            ctx,
            lambda s: payments.pay_at_window(
                s,
                actor=registrar,
                appointment_id=held,
                method=PayMethod.CASH,
                receipt_no="SF-2026-0001",
                now=ctx.clock.now(),
            ),
        )

        assert (order.state, order.provider, order.receipt_no) == ("paid", "window", "SF-2026-0001")
        assert (await appointment(ctx, held)).status == S.BOOKED
        await call(
            ctx,
            lambda s: booking_service.cancel(
                s, actor=registrar, appointment_id=held, note=None, now=ctx.clock.now()
            ),
        )
        [refund] = await refunds(ctx)
        assert refund.state == OurRefund.AT_WINDOW
        await call(
            ctx,
            lambda s: payments.refund_at_window(
                s, actor=registrar, refund_id=refund.id, receipt_no="TK-1", now=ctx.clock.now()
            ),
        )
        [refund] = await refunds(ctx)
        assert (refund.state, refund.window_receipt_no) == (OurRefund.SUCCEEDED, "TK-1")
        assert "refund_at_window" in await audit_actions(ctx, "refund")

    async def test_only_a_registrar_takes_money_and_only_window_methods(
        self, ctx: AppContext, world: World
    ) -> None:
        held = await hold(ctx, world, await fee_session(ctx, world))
        before = await row_counts(ctx.db)
        with pytest.raises(Forbidden):
            await call(
                ctx,
                lambda s: payments.pay_at_window(
                    s,
                    actor=staff(world, Role.FINANCE),
                    appointment_id=held,
                    method=PayMethod.CASH,
                    receipt_no="x",
                    now=ctx.clock.now(),
                ),
            )
        with pytest.raises(rules.MethodNotAllowed):
            await call(
                ctx,
                lambda s: payments.pay_at_window(
                    s,
                    actor=staff(world, Role.REGISTRAR),
                    appointment_id=held,
                    method=PayMethod.H5,
                    receipt_no="x",
                    now=ctx.clock.now(),
                ),
            )
        assert await row_counts(ctx.db) == before
