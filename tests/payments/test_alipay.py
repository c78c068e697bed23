"""The Alipay adapter (python-alipay-sdk underneath) against the Alipay simulator served on a
real port: the library's own HTTP calls, signatures and verification run unchanged."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from tests.payments.alipay_support import (
    AlipayWorld,
    alipay_world,
    eventually,
    query_of,
)
from tests.payments.serving import free_port, serve_asgi
from yuyue.config import Settings
from yuyue.payments.gateway import (
    GatewayError,
    InvalidNotification,
    NotificationKind,
    PayMethod,
    PayRequest,
    RefundRequest,
    RefundState,
    StatementKind,
    StatementNotReady,
    TradeState,
)
from yuyue.payments.providers.alipay import (
    AlipayGateway,
    alipay_from_settings,
    fen_to_yuan,
    parse_bill_detail,
    yuan_to_fen,
)
from yuyue.payments.simulators.alipay import (
    AlipaySimulatorKeys,
    build_alipay_simulator,
    simulator_of,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def keys() -> AlipaySimulatorKeys:
    return AlipaySimulatorKeys.generate()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The patient's browser (redirects not followed, to see where they lead)."""
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def world(keys: AlipaySimulatorKeys) -> Iterator[AlipayWorld]:
    with alipay_world(keys) as built:
        yield built
        built.simulator.stop()


def refund_request(out_trade_no: str, out_refund_no: str, fen: int = 1999) -> RefundRequest:
    return RefundRequest(
        out_trade_no=out_trade_no,
        out_refund_no=out_refund_no,
        refund_fen=fen,
        total_fen=1999,
        reason="患者退号",
        notify_url="https://yuyue.example/api/v1/payments/alipay/notify",
    )


def beijing_today() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


class TestMoney:
    @pytest.mark.parametrize(
        ("yuan", "fen"),
        [
            ("19.99", 1999),
            ("0.01", 1),
            ("0.07", 7),
            ("1", 100),
            ("1.1", 110),
            ("-20.00", -2000),
            ("100000.29", 10000029),
        ],
    )
    def test_yuan_to_fen_is_exact(self, yuan: str, fen: int) -> None:
        assert yuan_to_fen(yuan) == fen
        assert yuan_to_fen(fen_to_yuan(fen)) == fen

    @pytest.mark.parametrize("text", ["", "1.234", "1e3", "abc", "1,00", " . "])
    def test_what_is_not_an_amount_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not an amount"):
            yuan_to_fen(text)


class TestCreate:
    async def test_wap_payment_is_a_signed_redirect_to_a_cashier_showing_the_order(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        expires_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        request = world.pay_request("WAP0000001", amount_fen=1999, expires_at=expires_at)
        checkout = await world.gateway.create(request)

        assert checkout.method is PayMethod.WAP
        assert checkout.redirect_url is not None
        assert checkout.redirect_url.startswith(f"{world.base_url}/gateway.do?")
        params = query_of(checkout.redirect_url)
        assert params["method"] == "alipay.trade.wap.pay"
        assert params["sign_type"] == "RSA2"
        assert params["notify_url"] == world.notify_url
        assert params["return_url"] == "https://yuyue.example/pay/alipay/return"
        biz = json.loads(params["biz_content"])
        assert biz["total_amount"] == "19.99"
        assert biz["product_code"] == "QUICK_WAP_PAY"
        assert biz["time_expire"] == "2030-01-02 11:04:05"  # Beijing time
        assert biz["subject"] == "北京协和医院-心内科 主任医师"

        page = await browser.get(checkout.redirect_url)
        assert page.status_code == 200
        assert "模拟医院预约挂号" in page.text
        assert "北京协和医院-心内科 主任医师" in page.text
        assert "19.99" in page.text
        assert "确认付款" in page.text
        assert "取消" in page.text

    async def test_page_payment_opens_the_desktop_cashier(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        checkout = await world.gateway.create(
            world.pay_request("PAGE000001", amount_fen=500, method=PayMethod.PAGE)
        )
        assert checkout.redirect_url is not None
        params = query_of(checkout.redirect_url)
        assert params["method"] == "alipay.trade.page.pay"
        assert json.loads(params["biz_content"])["product_code"] == "FAST_INSTANT_TRADE_PAY"
        page = await browser.get(checkout.redirect_url)
        assert page.status_code == 200
        assert "5.00" in page.text

    async def test_the_cashier_also_opens_from_a_posted_form(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        checkout = await world.gateway.create(world.pay_request("FORM000001", amount_fen=300))
        assert checkout.redirect_url is not None
        page = await browser.post(
            f"{world.base_url}/gateway.do", data=query_of(checkout.redirect_url)
        )
        assert page.status_code == 200
        assert "3.00" in page.text
        assert "确认付款" in page.text

    async def test_a_tampered_redirect_is_refused_by_alipay(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        checkout = await world.gateway.create(world.pay_request("TAMPER0001", amount_fen=1999))
        assert checkout.redirect_url is not None
        tampered = checkout.redirect_url.replace("19.99", "0.01")
        page = await browser.get(tampered)
        assert page.status_code == 400
        assert "验签出错" in page.text
        assert "TAMPER0001" not in world.simulator.trades

    async def test_the_cashier_refuses_after_time_expire(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        request = world.pay_request(
            "LATE000001", expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        checkout = await world.gateway.create(request)
        assert checkout.redirect_url is not None
        page = await browser.get(checkout.redirect_url)
        assert page.status_code == 400
        assert "订单已过期" in page.text
        assert "确认付款" not in page.text

    async def test_a_method_alipay_lacks_is_refused(self, world: AlipayWorld) -> None:
        with pytest.raises(GatewayError) as caught:
            await world.gateway.create(world.pay_request("JSAPI00001", method=PayMethod.JSAPI))
        assert caught.value.code == "METHOD_NOT_SUPPORTED"
        assert not caught.value.retryable


class TestPayAndQuery:
    async def test_query_follows_the_trade_from_unopened_to_paid(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        checkout = await world.gateway.create(world.pay_request("PAY0000001"))
        assert checkout.redirect_url is not None

        before = await world.gateway.query("PAY0000001")  # Alipay: ACQ.TRADE_NOT_EXIST
        assert before.state is TradeState.NOT_PAID
        assert before.transaction_id is None

        cashier = await browser.get(checkout.redirect_url)
        waiting = await world.gateway.query("PAY0000001")
        assert waiting.state is TradeState.NOT_PAID
        assert waiting.amount_fen == 1999
        assert waiting.transaction_id is not None

        # The patient presses 确认付款 and is sent back to return_url with signed parameters.
        action = f"{world.base_url}/cashier/PAY0000001/pay"
        assert f'action="{action}"' in cashier.text
        back = await browser.post(action)
        assert back.status_code == 303
        location = back.headers["location"]
        assert location.startswith("https://yuyue.example/pay/alipay/return?")
        returned = world.gateway.verify_return(query_of(location))
        assert returned.out_trade_no == "PAY0000001"
        assert returned.amount_fen == 1999

        paid = await world.gateway.query("PAY0000001")
        assert paid.state is TradeState.PAID
        assert paid.amount_fen == 1999
        assert paid.transaction_id == waiting.transaction_id
        assert paid.paid_at is not None
        assert abs(paid.paid_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert paid.payer is not None and paid.payer.startswith("2088")

    async def test_return_parameters_with_a_changed_amount_do_not_verify(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        await world.open_cashier("RET0000001")
        back = await browser.post(f"{world.base_url}/cashier/RET0000001/pay")
        params = query_of(back.headers["location"])
        params["total_amount"] = "0.01"
        with pytest.raises(InvalidNotification):
            world.gateway.verify_return(params)

    async def test_cancel_leads_back_without_paying(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        await world.open_cashier("CANCEL0001")
        back = await browser.get(f"{world.base_url}/cashier/CANCEL0001/cancel")
        assert back.status_code == 303
        assert back.headers["location"].startswith("https://yuyue.example/pay/alipay/return")
        assert (await world.gateway.query("CANCEL0001")).state is TradeState.NOT_PAID


class TestClose:
    async def test_a_trade_never_opened_counts_as_closed(self, world: AlipayWorld) -> None:
        await world.gateway.create(world.pay_request("CLOSE00001"))
        await world.gateway.close("CLOSE00001")  # ACQ.TRADE_NOT_EXIST: nothing to pay

    async def test_closing_an_open_trade_stops_payment_and_is_repeatable(
        self, world: AlipayWorld, browser: httpx.AsyncClient
    ) -> None:
        checkout = await world.open_cashier("CLOSE00002")
        await world.gateway.close("CLOSE00002")
        assert (await world.gateway.query("CLOSE00002")).state is TradeState.CLOSED
        await world.gateway.close("CLOSE00002")  # again: still closed, no error

        assert checkout.redirect_url is not None
        page = await browser.get(checkout.redirect_url)
        assert page.status_code == 400
        assert "确认付款" not in page.text
        refused = await browser.post(f"{world.base_url}/cashier/CLOSE00002/pay")
        assert refused.status_code == 400
        assert world.simulator.trades["CLOSE00002"].status == "TRADE_CLOSED"

    async def test_closing_a_paid_trade_is_an_error_the_caller_hears(
        self, world: AlipayWorld
    ) -> None:
        await world.open_cashier("CLOSE00003")
        world.simulator.pay("CLOSE00003")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.close("CLOSE00003")
        assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"
        assert not caught.value.retryable
        assert (await world.gateway.query("CLOSE00003")).state is TradeState.PAID


class TestRefund:
    async def test_refund_succeeds_and_a_retry_with_the_same_number_moves_nothing(
        self, world: AlipayWorld
    ) -> None:
        await world.open_cashier("REF0000001")
        world.simulator.pay("REF0000001")

        first = await world.gateway.refund(refund_request("REF0000001", "RF0000001"))
        assert first.state is RefundState.SUCCEEDED
        assert first.refund_fen == 1999
        assert first.finished_at is not None

        again = await world.gateway.refund(refund_request("REF0000001", "RF0000001"))
        assert again.state is RefundState.SUCCEEDED
        assert again.refund_fen == 1999
        trade = world.simulator.trades["REF0000001"]
        assert list(trade.refunds) == ["RF0000001"]
        assert trade.refunded_fen == 1999

        queried = await world.gateway.query_refund(
            out_trade_no="REF0000001", out_refund_no="RF0000001"
        )
        assert queried.state is RefundState.SUCCEEDED
        assert queried.refund_fen == 1999
        assert queried.finished_at is not None
        refunded = await world.gateway.query("REF0000001")  # Alipay: TRADE_CLOSED
        assert refunded.state is TradeState.REFUNDED
        assert refunded.paid_at is not None

    async def test_a_partial_refund_leaves_the_trade_paid(self, world: AlipayWorld) -> None:
        await world.open_cashier("REF0000002")
        world.simulator.pay("REF0000002")
        refund = await world.gateway.refund(refund_request("REF0000002", "RF0000002", 999))
        assert refund.refund_fen == 999
        assert (await world.gateway.query("REF0000002")).state is TradeState.PAID

    async def test_the_same_number_with_another_amount_is_refused(self, world: AlipayWorld) -> None:
        await world.open_cashier("REF0000003")
        world.simulator.pay("REF0000003")
        await world.gateway.refund(refund_request("REF0000003", "RF0000003", 500))
        with pytest.raises(GatewayError) as caught:
            await world.gateway.refund(refund_request("REF0000003", "RF0000003", 600))
        assert caught.value.code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
        assert not caught.value.retryable
        assert world.simulator.trades["REF0000003"].refunded_fen == 500

    async def test_a_refund_alipay_never_received_is_not_found(self, world: AlipayWorld) -> None:
        await world.open_cashier("REF0000004")
        world.simulator.pay("REF0000004")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.query_refund(out_trade_no="REF0000004", out_refund_no="NOPE1")
        assert caught.value.code == "REFUND_NOT_EXIST"
        assert not caught.value.retryable

    async def test_refunding_an_unpaid_trade_is_refused(self, world: AlipayWorld) -> None:
        await world.open_cashier("REF0000005")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.refund(refund_request("REF0000005", "RF0000005"))
        assert caught.value.code == "ACQ.TRADE_STATUS_ERROR"
        assert not caught.value.retryable


class TestErrors:
    async def test_insufficient_balance_is_final(self, world: AlipayWorld) -> None:
        await world.open_cashier("ERR0000001")
        world.simulator.pay("ERR0000001")
        world.simulator.fail_next_refund("ACQ.SELLER_BALANCE_NOT_ENOUGH")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.refund(refund_request("ERR0000001", "RE0000001"))
        assert caught.value.code == "ACQ.SELLER_BALANCE_NOT_ENOUGH"
        assert not caught.value.retryable
        assert world.simulator.trades["ERR0000001"].refunds == {}

    async def test_a_system_error_is_retryable_and_the_retry_succeeds(
        self, world: AlipayWorld
    ) -> None:
        await world.open_cashier("ERR0000002")
        world.simulator.pay("ERR0000002")
        world.simulator.system_error_once("alipay.trade.refund")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.refund(refund_request("ERR0000002", "RE0000002"))
        assert caught.value.code == "ACQ.SYSTEM_ERROR"
        assert caught.value.retryable
        retried = await world.gateway.refund(refund_request("ERR0000002", "RE0000002"))
        assert retried.state is RefundState.SUCCEEDED

    async def test_the_gateway_being_busy_is_retryable(self, world: AlipayWorld) -> None:
        world.simulator.fail_next("aop.ACQ.SYSTEM_ERROR", method="alipay.trade.query")
        with pytest.raises(GatewayError) as caught:
            await world.gateway.query("ERR0000003")
        assert caught.value.code == "aop.ACQ.SYSTEM_ERROR"
        assert caught.value.retryable

    async def test_a_closed_trade_refuses_refunds_for_good(self, world: AlipayWorld) -> None:
        await world.open_cashier("ERR0000004")
        world.simulator.pay("ERR0000004")
        await world.gateway.refund(refund_request("ERR0000004", "RE0000004"))
        with pytest.raises(GatewayError) as caught:
            await world.gateway.refund(refund_request("ERR0000004", "RE0000005", 1))
        assert caught.value.code == "ACQ.TRADE_HAS_CLOSE"
        assert not caught.value.retryable

    async def test_a_5xx_is_retryable(self, world: AlipayWorld) -> None:
        world.simulator.fail_next("unused", http_status=502)
        with pytest.raises(GatewayError) as caught:
            await world.gateway.query("ERR0000006")
        assert caught.value.code == "HTTP_502"
        assert caught.value.retryable

    async def test_nobody_listening_is_retryable(self, world: AlipayWorld) -> None:
        gateway = world.gateway_with(gateway_url=f"http://127.0.0.1:{free_port()}/gateway.do")
        with pytest.raises(GatewayError) as caught:
            await gateway.query("ERR0000007")
        assert caught.value.code == "NETWORK"
        assert caught.value.retryable

    async def test_a_request_signed_with_the_wrong_key_is_refused(self, world: AlipayWorld) -> None:
        stranger = AlipaySimulatorKeys.generate()
        gateway = world.gateway_with(app_private_key_pem=stranger.app_private_key_pem)
        with pytest.raises(GatewayError) as caught:
            await gateway.query("ERR0000008")
        assert caught.value.code == "isv.invalid-signature"
        assert not caught.value.retryable

    async def test_an_answer_not_signed_by_alipay_is_refused(self, world: AlipayWorld) -> None:
        stranger = AlipaySimulatorKeys.generate()
        gateway = world.gateway_with(alipay_public_key_pem=stranger.alipay_public_key_pem)
        with pytest.raises(GatewayError) as caught:
            await gateway.query("ERR0000009")
        assert caught.value.code == "INVALID_RESPONSE_SIGNATURE"
        assert not caught.value.retryable


class TestNotifications:
    async def test_a_payment_arrives_verified_with_exact_fen(self, world: AlipayWorld) -> None:
        await world.open_cashier("NOT0000001", amount_fen=1999)
        world.simulator.pay("NOT0000001")
        await eventually(lambda: len(world.receiver.accepted) == 1)

        notification = world.receiver.accepted[0]
        assert notification.kind is NotificationKind.PAYMENT
        assert notification.trade is not None
        assert notification.trade.state is TradeState.PAID
        assert notification.trade.amount_fen == 1999
        status = await world.gateway.query("NOT0000001")
        assert notification.trade.transaction_id == status.transaction_id
        assert notification.trade.paid_at == status.paid_at
        [delivery] = world.simulator.deliveries_for("NOT0000001")
        assert notification.event_id == delivery.notify_id
        assert delivery.delivered
        assert len(delivery.attempts) == 1
        form = dict(parse_qsl(world.receiver.bodies[0].decode()))
        assert form["notify_type"] == "trade_status_sync"
        assert form["trade_status"] == "TRADE_SUCCESS"
        assert form["total_amount"] == "19.99"
        assert (form["charset"], form["version"], form["sign_type"]) == ("utf-8", "1.0", "RSA2")
        assert form["app_id"] == world.keys.app_id
        assert form["sign"]

    async def test_a_refund_arrives_as_a_refund(self, world: AlipayWorld) -> None:
        await world.open_cashier("NOT0000002")
        world.simulator.pay("NOT0000002")
        await world.gateway.refund(refund_request("NOT0000002", "RN0000002"))
        await eventually(lambda: len(world.receiver.accepted) == 2)

        refund = next(n for n in world.receiver.accepted if n.kind is NotificationKind.REFUND)
        assert refund.out_trade_no == "NOT0000002"
        assert refund.refund is not None
        assert refund.refund.out_refund_no == "RN0000002"
        assert refund.refund.state is RefundState.SUCCEEDED
        assert refund.refund.refund_fen == 1999
        assert refund.refund.finished_at is not None

    async def test_alipay_retries_until_it_reads_success_then_stops(
        self, world: AlipayWorld
    ) -> None:
        world.receiver.refuse_first = 2
        await world.open_cashier("NOT0000003")
        world.simulator.pay("NOT0000003")
        await eventually(lambda: len(world.receiver.accepted) == 1)
        [delivery] = world.simulator.deliveries_for("NOT0000003")
        await eventually(lambda: delivery.delivered)
        assert [a.body for a in delivery.attempts] == ["fail", "fail", "success"]
        await _quiet(0.3)
        assert len(delivery.attempts) == 3
        assert len(world.receiver.refused) == 2

    async def test_a_forged_signature_is_refused_and_alipay_gives_up_after_its_schedule(
        self, world: AlipayWorld
    ) -> None:
        await world.open_cashier("NOT0000004")
        world.simulator.sign_next_notification_badly()
        world.simulator.pay("NOT0000004")
        [delivery] = world.simulator.deliveries_for("NOT0000004")
        await eventually(lambda: delivery.gave_up)
        assert len(delivery.attempts) == 8  # the first and seven retries
        assert all(attempt.body == "fail" for attempt in delivery.attempts)
        assert world.receiver.accepted == []
        assert len(world.receiver.invalid) == 8

    async def test_a_duplicate_carries_the_same_event_id(self, world: AlipayWorld) -> None:
        await world.open_cashier("NOT0000005")
        world.simulator.pay("NOT0000005")
        await eventually(lambda: len(world.receiver.accepted) == 1)
        world.simulator.deliver_again(world.receiver.accepted[0].event_id)
        await eventually(lambda: len(world.receiver.accepted) == 2)
        first, second = world.receiver.accepted
        assert first == second

    async def test_held_notifications_can_arrive_out_of_order(self, world: AlipayWorld) -> None:
        await world.open_cashier("NOT0000006")
        world.simulator.hold_notifications()
        world.simulator.pay("NOT0000006")
        await world.gateway.refund(refund_request("NOT0000006", "RN0000006"))
        await _quiet(0.2)
        assert world.receiver.bodies == []
        world.simulator.release_notifications(reverse=True)
        await eventually(lambda: len(world.receiver.accepted) == 2)
        kinds = [n.kind for n in world.receiver.accepted]
        assert kinds == [NotificationKind.REFUND, NotificationKind.PAYMENT]

    async def test_a_late_notification_comes_after_its_delay(self, world: AlipayWorld) -> None:
        await world.open_cashier("NOT0000007")
        world.simulator.delay_next_notification(0.5)
        world.simulator.pay("NOT0000007")
        await _quiet(0.2)
        assert world.receiver.bodies == []
        await eventually(lambda: len(world.receiver.accepted) == 1)

    async def _delivered_fields(self, world: AlipayWorld, out_trade_no: str) -> dict[str, str]:
        await world.open_cashier(out_trade_no)
        world.simulator.pay(out_trade_no)
        await eventually(lambda: len(world.receiver.accepted) == 1)
        return dict(world.simulator.deliveries_for(out_trade_no)[0].fields)

    async def test_a_tampered_amount_is_refused(self, world: AlipayWorld) -> None:
        fields = await self._delivered_fields(world, "NOT0000008")
        fields["total_amount"] = "0.01"
        with pytest.raises(InvalidNotification, match="signature"):
            await world.gateway.verify_notification({}, urlencode(fields).encode())

    async def test_another_applications_notification_is_refused(self, world: AlipayWorld) -> None:
        fields = await self._delivered_fields(world, "NOT0000009")
        fields["app_id"] = "2021009999999999"
        del fields["sign"], fields["sign_type"]
        signed = world.simulator.sign_fields(fields)  # properly signed by Alipay
        with pytest.raises(InvalidNotification, match="another application"):
            await world.gateway.verify_notification({}, urlencode(signed).encode())

    @pytest.mark.parametrize(
        "body",
        [b"", b"not a form", b"\xff\xfe", b"sign=abc&sign_type=RSA2", b"a=1&a=2"],
    )
    async def test_what_is_not_a_signed_form_is_refused(
        self, world: AlipayWorld, body: bytes
    ) -> None:
        with pytest.raises(InvalidNotification):
            await world.gateway.verify_notification({}, body)

    def test_the_reply_alipay_reads(self, world: AlipayWorld) -> None:
        accepted = world.gateway.reply(accepted=True)
        assert (accepted.status_code, accepted.body) == (200, b"success")
        assert accepted.content_type.startswith("text/plain")
        assert world.gateway.reply(accepted=False).body == b"fail"


class TestStatement:
    async def test_the_bill_lists_payments_refunds_and_a_provider_only_trade(
        self, world: AlipayWorld
    ) -> None:
        for out_trade_no, fen in (("BILL000001", 1999), ("BILL000002", 7), ("BILL000003", 5000)):
            await world.open_cashier(out_trade_no, amount_fen=fen)
            world.simulator.pay(out_trade_no)
        refund = RefundRequest(
            out_trade_no="BILL000003",
            out_refund_no="RB0000003",
            refund_fen=2501,
            total_fen=5000,
            reason="退号",
            notify_url=world.notify_url,
        )
        await world.gateway.refund(refund)
        world.simulator.add_provider_only_trade("STRANGER01", 1234)
        world.simulator.tamper_bill_amount("BILL000002", 8)

        statement = await world.gateway.download_statement(beijing_today())

        assert statement.bill_date == beijing_today()
        payments = {
            line.out_trade_no: line
            for line in statement.lines
            if line.kind is StatementKind.PAYMENT
        }
        refunds = [line for line in statement.lines if line.kind is StatementKind.REFUND]
        assert {k: v.amount_fen for k, v in payments.items()} == {
            "BILL000001": 1999,
            "BILL000002": 8,
            "BILL000003": 5000,
            "STRANGER01": 1234,
        }
        assert payments["BILL000001"].transaction_id == (
            world.simulator.trades["BILL000001"].trade_no
        )
        assert payments["BILL000001"].raw["商户订单号"] == "BILL000001"
        assert all(line.at.tzinfo is not None for line in statement.lines)
        [refund_line] = refunds
        assert refund_line.out_trade_no == "BILL000003"
        assert refund_line.out_refund_no == "RB0000003"
        assert refund_line.amount_fen == 2501

    async def test_the_bill_is_a_zip_of_gbk_csv_in_alipays_layout(self, world: AlipayWorld) -> None:
        await world.open_cashier("ZIP0000001", amount_fen=1999)
        world.simulator.pay("ZIP0000001")
        content = world.simulator.bill_zip(beijing_today())
        assert content is not None
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            infos = archive.infolist()
            # GBK names without the UTF-8 flag, as Alipay writes them
            assert all(not info.flag_bits & 0x800 for info in infos)
            names = sorted(info.filename.encode("cp437").decode("gbk") for info in infos)
            assert names[0].endswith("_业务明细(汇总).csv")
            assert names[1].endswith("_业务明细.csv")
            detail = next(i for i in infos if "(" not in i.filename.encode("cp437").decode("gbk"))
            raw = archive.read(detail)
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        text = raw.decode("gbk")
        assert text.startswith("#支付宝业务明细查询")
        assert "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间" in text
        [line] = parse_bill_detail(text)
        assert line.amount_fen == 1999

    async def test_a_day_without_a_bill_is_not_ready(self, world: AlipayWorld) -> None:
        with pytest.raises(StatementNotReady) as caught:
            await world.gateway.download_statement(date(2020, 1, 1))
        assert caught.value.retryable


def test_bill_rows_with_plain_parentheses_and_tabs_parse_too() -> None:
    text = (
        "#支付宝业务明细查询\n"
        "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,订单金额(元),"
        "商家实收(元),退款批次号/请求号\n"
        "2024050122001\t,A1\t,交易\t,挂号费\t,2024-05-01 08:00:00\t,2024-05-01 08:01:00\t,"
        "19.99\t,19.99\t,\t\n"
        "2024050122001\t,A1\t,退款\t,挂号费\t,2024-05-01 09:00:00\t,2024-05-01 09:00:01\t,"
        "-19.99\t,-19.99\t,R1\t\n"
        "#交易合计：1笔\n"
    )
    payment, refund = parse_bill_detail(text)
    assert (payment.kind, payment.amount_fen, payment.transaction_id) == (
        StatementKind.PAYMENT,
        1999,
        "2024050122001",
    )
    assert payment.at == datetime(2024, 5, 1, 0, 1, tzinfo=UTC)
    assert (refund.kind, refund.amount_fen, refund.out_refund_no) == (
        StatementKind.REFUND,
        1999,
        "R1",
    )


class TestSettingsAndSecrets:
    def test_not_configured_means_no_adapter(self) -> None:
        assert alipay_from_settings(Settings(alipay_app_id=None)) is None

    def test_the_adapter_reads_the_key_files(
        self, keys: AlipaySimulatorKeys, tmp_path: Path
    ) -> None:
        private = tmp_path / "app.pem"
        public = tmp_path / "alipay.pem"
        private.write_text(keys.app_private_key_pem)
        public.write_text(keys.alipay_public_key_pem)
        gateway = alipay_from_settings(
            Settings(
                alipay_app_id=keys.app_id,
                alipay_private_key_file=private,
                alipay_public_key_file=public,
                alipay_gateway_url="http://127.0.0.1:9/sim/alipay/gateway.do",
            )
        )
        assert gateway is not None
        assert gateway.app_id == keys.app_id
        assert gateway.gateway_url == "http://127.0.0.1:9/sim/alipay/gateway.do"
        assert "PRIVATE" not in repr(gateway)

    async def test_no_key_material_reaches_the_logs(
        self, world: AlipayWorld, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        await world.open_cashier("LOG0000001")
        world.simulator.pay("LOG0000001")
        await world.gateway.refund(refund_request("LOG0000001", "RL0000001"))
        await eventually(lambda: len(world.receiver.accepted) == 2)
        world.simulator.system_error_once()
        with pytest.raises(GatewayError):
            await world.gateway.query("LOG0000001")
        await world.gateway.download_statement(beijing_today())

        assert "alipay.trade.refund" in caplog.text  # the calls are logged...
        logged = caplog.text + repr(world.keys) + repr(world.gateway)
        assert "PRIVATE KEY" not in logged  # ...the keys are not
        for pem in (world.keys.app_private_key_pem, world.keys.alipay_private_key_pem):
            body = "".join(pem.strip().splitlines()[1:-1])
            for start in range(0, len(body) - 40, 40):
                assert body[start : start + 40] not in logged


async def _quiet(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_the_simulator_works_mounted_under_a_prefix(
    keys: AlipaySimulatorKeys, browser: httpx.AsyncClient
) -> None:
    port = free_port()
    host = FastAPI()
    simulator_app = build_alipay_simulator(
        keys=keys, public_base_url=f"http://127.0.0.1:{port}/sim/alipay"
    )
    host.mount("/sim/alipay", simulator_app)
    with serve_asgi(host, port=port) as base:
        gateway = AlipayGateway(
            app_id=keys.app_id,
            app_private_key_pem=keys.app_private_key_pem,
            alipay_public_key_pem=keys.alipay_public_key_pem,
            gateway_url=f"{base}/sim/alipay/gateway.do",
        )
        checkout = await gateway.create(
            PayRequest(
                out_trade_no="PREFIX0001",
                amount_fen=100,
                description="挂号费",
                method=PayMethod.PAGE,
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
                notify_url=f"http://127.0.0.1:{free_port()}/notify",
            )
        )
        assert checkout.redirect_url is not None
        page = await browser.get(checkout.redirect_url)
        action = f"{base}/sim/alipay/cashier/PREFIX0001/pay"
        assert f'action="{action}"' in page.text
        assert (await browser.post(action)).status_code == 200  # no return_url: a 支付成功 page
        assert (await gateway.query("PREFIX0001")).state is TradeState.PAID
        simulator_of(simulator_app).stop()
