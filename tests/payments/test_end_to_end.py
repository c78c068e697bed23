"""The payment promises end to end: yuyue served on a real port, a partner's app calling it
over HTTP with its API key, the patient paying on the WeChat Pay and Alipay cashiers, and the
providers' signed notifications reaching yuyue over HTTP through the real adapters (the
simulators speak the providers' protocols; nothing here is a test double).

Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from tests.conftest import DatabaseTemplate
from tests.helpers import row_counts
from tests.payments.live import FEE, Live, ProviderKeys, eventually, live_yuyue
from yuyue.jobs import close_expired_orders_once, expire_holds_once, send_refunds_once
from yuyue.kit.db import Database
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.templates import DEFAULTS
from yuyue.payments.models import PaymentAttempt, Refund
from yuyue.payments.states import AttemptKind, AttemptOutcome, OrderState, RefundState
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry

PROVIDERS = ("wechatpay", "alipay")


@pytest.fixture(scope="module")
def keys() -> ProviderKeys:
    return ProviderKeys.generate()


@pytest_asyncio.fixture
async def live(
    db: Database, database_template: DatabaseTemplate, keys: ProviderKeys, tmp_path: Path
) -> AsyncIterator[Live]:
    async with live_yuyue(
        db=db, connect_args=database_template.connect_args, keys=keys, tmp_path=tmp_path
    ) as served:
        yield served


async def confirmed_once(live: Live, appointment_id: str) -> None:
    """One booking, one paid order, one confirmation message."""
    shown = await live.booked(appointment_id)
    assert shown["payment"]["state"] == "paid"
    assert await live.paid_orders(appointment_id) == 1
    assert (await live.messages(appointment_id)).count("booking_confirmed") == 1


class TestPaying:
    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_paying_on_the_cashier_books_the_hold_once(
        self, live: Live, provider: str
    ) -> None:
        clinic = await live.fee_session()
        held = await live.hold(clinic.id)

        out_trade_no = await live.pay(held, provider)

        await confirmed_once(live, held)
        shown = await live.shown(held)
        assert shown["payment"] == {
            "state": "paid",
            "amount_fen": 8000,
            "provider": provider,
            "split": None,
        }
        order = (await live.orders(held))[-1]
        assert order.out_trade_no == out_trade_no and order.transaction_id


ACCEPTED = {"wechatpay": "200", "alipay": "success"}
REFUSED = {"wechatpay": "500", "alipay": "fail"}


def forged(provider: str, headers: dict[str, str], body: bytes) -> bytes:
    """The genuine notification with its amount lowered and the signature kept."""
    if provider == "wechatpay":
        # The resource is encrypted: change the signed envelope's summary instead.
        document = json.loads(body)
        document["summary"] = "支付成功 " * 2
        return json.dumps(document, ensure_ascii=False).encode()
    fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    fields["total_amount"] = "0.01"
    return urlencode(fields).encode("ascii")


async def settle_refunds(live: Live) -> None:
    """The refund job's pass, then the providers' refund notifications coming in."""
    await send_refunds_once(live.ctx)

    async def all_finished() -> bool:
        async with live.ctx.db.read() as s:
            open_ = await s.scalar(
                select(func.count())
                .select_from(Refund)
                .where(Refund.state.in_((RefundState.REQUESTED, RefundState.PROCESSING)))
            )
        return not open_

    await eventually(all_finished)


class TestNotifications:
    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_duplicated_notifications_change_nothing(self, live: Live, provider: str) -> None:
        held = await live.hold((await live.fee_session()).id)
        out_trade_no = await live.pay(held, provider)
        await confirmed_once(live, held)
        event = live.payment_notification(provider, out_trade_no)

        for _ in range(3):
            live.send_again(provider, event)
        await live.deliveries_reach(provider, event, 4)

        assert live.answered(provider, event) == [ACCEPTED[provider]] * 4
        await confirmed_once(live, held)
        assert (
            await live.count(PaymentAttempt, PaymentAttempt.outcome == AttemptOutcome.DUPLICATE)
            == 3
        )

    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_a_payment_notification_after_its_refunds_changes_nothing(
        self, live: Live, provider: str
    ) -> None:
        held = await live.hold((await live.fee_session()).id)
        out_trade_no = await live.pay(held, provider)
        await confirmed_once(live, held)
        payment = live.payment_notification(provider, out_trade_no)
        await live.cancel(held)
        await settle_refunds(live)
        assert (await live.shown(held))["refund"] == {"state": "refunded"}

        # The payment's notification comes once more, after the refund's.
        live.send_again(provider, payment)
        await live.deliveries_reach(provider, payment, 2)

        assert live.answered(provider, payment)[-1] == ACCEPTED[provider]
        shown = await live.shown(held)
        assert shown["status"] == "cancelled"
        assert shown["refund"] == {"state": "refunded"}
        assert [o.state for o in await live.orders(held)] == [OrderState.REFUNDED]
        assert (await live.messages(held)).count("booking_confirmed") == 1
        assert [r.state for r in await live.refunds(held)] == [RefundState.SUCCEEDED]

    async def test_a_refund_notification_before_the_refund_answer_is_recorded_once(
        self, live: Live
    ) -> None:
        """WeChat Pay answers a refund PROCESSING and notifies when it ends: the notification
        may arrive while the refund job still waits to record the answer, or after it."""
        held = await live.hold((await live.fee_session()).id)
        await live.pay(held, "wechatpay")
        await confirmed_once(live, held)
        live.wechat.next_refund_outcome("PROCESSING")
        await live.cancel(held)
        await send_refunds_once(live.ctx)
        refund = (await live.refunds(held))[0]
        assert refund.state == RefundState.PROCESSING
        live.wechat.hold()
        live.wechat.settle_refund(refund.out_refund_no)
        (notice,) = live.wechat.held()
        # Delivered out of order: a second copy first, then the original.
        live.wechat.redeliver(notice.event_id)
        live.wechat.release(notice.event_id)
        await live.deliveries_reach("wechatpay", notice.event_id, 2)

        assert (await live.refunds(held))[0].state == RefundState.SUCCEEDED
        assert (await live.messages(held)).count("refund_succeeded") == 1
        assert live.answered("wechatpay", notice.event_id) == ["200", "200"]

    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_a_late_payment_while_the_place_is_still_free_books(
        self, live: Live, provider: str
    ) -> None:
        held = await live.hold((await live.fee_session(capacity=1)).id)
        live.hold_notifications(provider)
        await live.pay(held, provider)
        live.clock.advance(timedelta(minutes=16))
        await expire_holds_once(live.ctx)
        await close_expired_orders_once(live.ctx)
        assert (await live.shown(held))["status"] == "expired"

        live.release_notifications(provider)

        await confirmed_once(live, held)
        assert await live.refunds(held) == []

    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_a_late_payment_for_a_place_given_away_is_refunded_and_the_patient_told(
        self, live: Live, provider: str
    ) -> None:
        clinic = await live.fee_session(capacity=1)
        held = await live.hold(clinic.id)
        live.hold_notifications(provider)
        out_trade_no = await live.pay(held, provider)
        live.clock.advance(timedelta(minutes=16))
        await expire_holds_once(live.ctx)
        await close_expired_orders_once(live.ctx)
        someone_else = await live.hold(clinic.id)

        live.release_notifications(provider)
        event = live.payment_notification(provider, out_trade_no)
        await live.deliveries_reach(provider, event, 1)
        await settle_refunds(live)

        assert live.answered(provider, event) == [ACCEPTED[provider]]
        shown = await live.shown(held)
        assert shown["status"] == "expired"
        assert shown["refund"] == {"state": "refunded"}
        assert [o.state for o in await live.orders(held)] == [OrderState.REFUNDED]
        (refund,) = await live.refunds(held)
        assert (refund.reason, refund.state) == ("late_payment", RefundState.SUCCEEDED)
        told = await live.messages(held)
        assert told[told.index("late_payment_refund") :] == [
            "late_payment_refund",
            "refund_succeeded",
        ]
        assert "booking_confirmed" not in told
        assert (await live.shown(someone_else))["status"] == "held"
        if provider == "wechatpay":
            assert live.wechat.trades[out_trade_no].state == "REFUND"
        else:
            assert live.alipay.trades[out_trade_no].refunded_fen == FEE

    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_a_forged_notification_changes_nothing(self, live: Live, provider: str) -> None:
        held = await live.hold((await live.fee_session()).id)
        live.hold_notifications(provider)
        out_trade_no = await live.pay(held, provider)
        headers, body = live.signed_notification(
            provider, live.payment_notification(provider, out_trade_no)
        )
        before = await row_counts(live.ctx.db)

        answer = await live.notify(provider, headers, forged(provider, headers, body))

        assert (str(answer.status_code) if provider == "wechatpay" else answer.text) == (
            REFUSED[provider]
        )
        after = await row_counts(live.ctx.db)
        assert {t: n - before[t] for t, n in after.items() if n != before[t]} == {
            "payment_attempt": 1
        }
        assert (
            await live.count(PaymentAttempt, PaymentAttempt.outcome == AttemptOutcome.REJECTED) == 1
        )
        shown = await live.shown(held)
        assert shown["status"] == "held" and shown["payment"] is None
        assert [o.state for o in await live.orders(held)] == [OrderState.CREATED]
        # The genuine one, delivered after, still books.
        live.release_notifications(provider)
        await confirmed_once(live, held)

    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_fifty_concurrent_copies_over_http_book_once(
        self, live: Live, provider: str
    ) -> None:
        held = await live.hold((await live.fee_session()).id)
        live.hold_notifications(provider)
        out_trade_no = await live.pay(held, provider)
        headers, body = live.signed_notification(
            provider, live.payment_notification(provider, out_trade_no)
        )

        answers = await asyncio.gather(*(live.notify(provider, headers, body) for _ in range(50)))

        assert {(a.status_code, a.text) for a in answers} == {
            (200, "") if provider == "wechatpay" else (200, "success")
        }
        await confirmed_once(live, held)
        assert (
            await live.count(
                PaymentAttempt,
                PaymentAttempt.kind == AttemptKind.NOTIFICATION,
                PaymentAttempt.outcome == AttemptOutcome.OK,
            )
            == 1
        )
        assert (
            await live.count(
                AuditEntry,
                AuditEntry.action == "confirm_payment",
                AuditEntry.entity_id == uuid.UUID(held),
            )
            == 1
        )


class TestRefunds:
    @pytest.mark.parametrize("provider", PROVIDERS)
    async def test_a_refund_the_provider_refuses_sends_the_patient_to_the_window(
        self, live: Live, provider: str
    ) -> None:
        held = await live.hold((await live.fee_session()).id)
        await live.pay(held, provider)
        await confirmed_once(live, held)
        if provider == "wechatpay":
            live.wechat.next_refund_outcome("ABNORMAL")  # accepted, then ends ABNORMAL
        else:
            live.alipay.fail_next_refund("ACQ.SELLER_BALANCE_NOT_ENOUGH")

        await live.cancel(held)
        await settle_refunds(live)

        (refund,) = await live.refunds(held)
        assert refund.state == RefundState.FAILED and refund.last_error
        assert [o.state for o in await live.orders(held)] == [OrderState.REFUND_FAILED]
        assert (await live.shown(held))["refund"] == {"state": "failed"}
        assert (await live.messages(held)).count("refund_failed") == 1
        title, body = DEFAULTS[(MessageKind.REFUND_FAILED, "zh-CN")]
        assert "窗口" in title and "窗口" in body
        # The registrar hands the money back.
        registrar = await live.staff(Role.REGISTRAR)
        answer = await live.http.post(
            f"/api/v1/refunds/{refund.id}/window", json={"receipt_no": "T0001"}, headers=registrar
        )
        assert answer.status_code == 200, answer.text
        assert (await live.shown(held))["refund"] == {"state": "refunded"}

    async def test_a_printed_invoice_means_the_refund_happens_at_the_window(
        self, live: Live
    ) -> None:
        held = await live.hold((await live.fee_session()).id)
        out_trade_no = await live.pay(held, "wechatpay")
        await confirmed_once(live, held)
        (order,) = await live.orders(held)
        registrar = await live.staff(Role.REGISTRAR)
        printed = await live.http.post(
            f"/api/v1/payment-orders/{order.id}/invoice", headers=registrar
        )
        assert printed.status_code == 200, printed.text

        cancelled = await live.cancel(held)
        await send_refunds_once(live.ctx)

        assert cancelled["refund"] == {"state": "at_window"}
        (refund,) = await live.refunds(held)
        assert refund.state == RefundState.AT_WINDOW
        assert live.wechat.refunds == {} and live.wechat.trades[out_trade_no].state == "SUCCESS"
        assert (await live.messages(held)).count("refund_at_window") == 1
        answer = await live.http.post(f"/api/v1/refunds/{refund.id}/window", headers=registrar)
        assert answer.status_code == 200, answer.text
        assert (await live.shown(held))["refund"] == {"state": "refunded"}
        assert (await live.messages(held)).count("refund_succeeded") == 1

    async def test_a_stopped_clinic_refunds_every_paid_booking_through_its_provider(
        self, live: Live
    ) -> None:
        clinic = await live.fee_session()
        paid: dict[str, tuple[str, str]] = {}
        for provider in PROVIDERS * 2:
            held = await live.hold(clinic.id)
            paid[held] = (provider, await live.pay(held, provider))
        for held in paid:
            await confirmed_once(live, held)
        scheduler = await live.staff(Role.SCHEDULER)

        stopped = await live.http.post(
            f"/api/v1/sessions/{clinic.id}/stop",
            json={"reason": "医生临时外出会诊"},
            headers=scheduler,
        )
        assert stopped.status_code == 200, stopped.text
        assert set(stopped.json()["cancelled_appointments"]) == set(paid)
        await settle_refunds(live)

        for held, (provider, out_trade_no) in paid.items():
            (refund,) = await live.refunds(held)
            assert (refund.reason, refund.state) == ("stop_clinic", RefundState.SUCCEEDED)
            assert (await live.shown(held))["refund"] == {"state": "refunded"}
            assert (await live.messages(held)).count("refund_succeeded") == 1
            if provider == "wechatpay":
                assert live.wechat.refunds[refund.out_refund_no].status == "SUCCESS"
                assert live.wechat.refunds[refund.out_refund_no].out_trade_no == out_trade_no
            else:
                assert live.alipay.trades[out_trade_no].refunds[
                    refund.out_refund_no
                ].refund_fen == (FEE)
