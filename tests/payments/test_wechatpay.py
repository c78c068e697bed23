"""The WeChat Pay adapter against the simulator, both speaking WeChat Pay API v3 over real
HTTP: the adapter drives the real `wechatpayv3` library, the simulator checks its request
signatures and signs its answers and notifications."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI

from tests.payments.serving import free_port, serve_asgi
from tests.payments.wechatpay_support import World, eventually, wechatpay_world
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
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
from yuyue.payments.providers.wechatpay import (
    WechatPayGateway,
    parse_trade_bill,
    wechatpay_from_settings,
    yuan_to_fen,
)
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulatorKeys,
    build_wechatpay_simulator,
    wechatpay_simulator_of,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def keys() -> WechatPaySimulatorKeys:
    return WechatPaySimulatorKeys.generate()


@pytest.fixture
def world(keys: WechatPaySimulatorKeys) -> Iterator[World]:
    with wechatpay_world(keys) as built:
        yield built


def refund_request(world: World, out_trade_no: str, **extra: object) -> RefundRequest:
    values: dict[str, object] = {
        "out_trade_no": out_trade_no,
        "out_refund_no": "R" + out_trade_no,
        "refund_fen": 2500,
        "total_fen": 2500,
        "reason": "取消预约",
        "notify_url": world.receiver.url,
    }
    values.update(extra)
    return RefundRequest(**values)  # type: ignore[arg-type]


async def paid(world: World, out_trade_no: str, amount_fen: int = 2500) -> None:
    await world.gateway.create(world.pay_request(out_trade_no, amount_fen=amount_fen))
    world.simulator.pay(out_trade_no)


class TestCreate:
    async def test_native_answers_the_qr_content_and_the_trade_waits(self, world: World) -> None:
        checkout = await world.gateway.create(world.pay_request("ORDER0001", amount_fen=1234))

        assert checkout.method is PayMethod.NATIVE
        assert checkout.qr_content is not None
        assert checkout.qr_content.startswith(world.base_url + "/cashier/wx")
        assert checkout.redirect_url is None and checkout.jsapi_params is None
        status = await world.gateway.query("ORDER0001")
        assert status.state is TradeState.NOT_PAID
        assert status.amount_fen == 1234
        assert status.transaction_id is None
        trade = world.simulator.trades["ORDER0001"]
        assert trade.trade_type == "NATIVE"
        assert trade.expires_at == (world.clock.now() + timedelta(minutes=15)).replace(
            microsecond=0
        )

    async def test_h5_redirects_to_h5_url_with_the_way_back(self, world: World) -> None:
        checkout = await world.gateway.create(
            world.pay_request(
                "ORDER0002",
                method=PayMethod.H5,
                return_url="https://yuyue.example/appointments/7",
                client_ip="203.0.113.9",
            )
        )

        assert checkout.redirect_url is not None
        parts = urlsplit(checkout.redirect_url)
        assert checkout.redirect_url.startswith(world.base_url + "/cashier/wx")
        assert parse_qs(parts.query)["redirect_url"] == ["https://yuyue.example/appointments/7"]
        assert world.simulator.trades["ORDER0002"].trade_type == "MWEB"

    async def test_jsapi_answers_parameters_signed_with_the_merchant_key(
        self, world: World
    ) -> None:
        checkout = await world.gateway.create(
            world.pay_request("ORDER0003", method=PayMethod.JSAPI, payer_openid="oUpF8uMuAJO")
        )

        params = checkout.jsapi_params
        assert params is not None
        trade = world.simulator.trades["ORDER0003"]
        assert checkout.provider_reference == trade.prepay_id
        assert params["package"] == f"prepay_id={trade.prepay_id}"
        assert params["appId"] == world.keys.appid
        assert params["signType"] == "RSA"
        merchant = serialization.load_pem_public_key(world.keys.merchant_public_key_pem.encode())
        assert isinstance(merchant, rsa.RSAPublicKey)
        signed = "\n".join(
            [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
        )
        merchant.verify(  # raises when the signature is wrong
            base64.b64decode(params["paySign"]),
            (signed + "\n").encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        assert trade.openid == "oUpF8uMuAJO"

    async def test_jsapi_without_openid_is_refused_for_good(self, world: World) -> None:
        with pytest.raises(GatewayError) as refused:
            await world.gateway.create(world.pay_request("ORDER0004", method=PayMethod.JSAPI))
        assert refused.value.code == "PARAM_ERROR"
        assert not refused.value.retryable
        assert "ORDER0004" not in world.simulator.trades

    async def test_a_paid_order_cannot_be_prepaid_again(self, world: World) -> None:
        await paid(world, "ORDER0005")
        with pytest.raises(GatewayError) as refused:
            await world.gateway.create(world.pay_request("ORDER0005"))
        assert refused.value.code == "ORDERPAID"
        assert not refused.value.retryable


class TestQueryAndClose:
    async def test_paid_trade_reads_paid_with_its_transaction(self, world: World) -> None:
        await paid(world, "ORDER0010", amount_fen=1999)

        status = await world.gateway.query("ORDER0010")

        trade = world.simulator.trades["ORDER0010"]
        assert status.state is TradeState.PAID
        assert status.amount_fen == 1999
        assert status.transaction_id == trade.transaction_id
        assert status.paid_at == world.clock.now().replace(microsecond=0)
        assert status.paid_at is not None and status.paid_at.tzinfo is UTC

    async def test_close_closes_and_the_cashier_no_longer_takes_money(self, world: World) -> None:
        await world.gateway.create(world.pay_request("ORDER0011"))

        await world.gateway.close("ORDER0011")

        assert (await world.gateway.query("ORDER0011")).state is TradeState.CLOSED
        with pytest.raises(Exception, match="ORDER_CLOSED"):
            world.simulator.pay("ORDER0011")

    async def test_after_the_hold_ends_the_trade_cannot_be_paid(self, world: World) -> None:
        checkout = await world.gateway.create(world.pay_request("ORDER0013"))
        world.clock.advance(timedelta(minutes=16))

        with pytest.raises(Exception, match="ORDER_CLOSED"):
            world.simulator.pay("ORDER0013")
        assert checkout.qr_content is not None
        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout.qr_content)
        assert "订单已关闭" in page.text and "确认支付" not in page.text
        assert (await world.gateway.query("ORDER0013")).state is TradeState.NOT_PAID

    async def test_closing_a_paid_trade_is_refused(self, world: World) -> None:
        await paid(world, "ORDER0012")
        with pytest.raises(GatewayError) as refused:
            await world.gateway.close("ORDER0012")
        assert refused.value.code == "ORDERPAID" and not refused.value.retryable

    async def test_unknown_trade_is_not_found_for_good(self, world: World) -> None:
        with pytest.raises(GatewayError) as refused:
            await world.gateway.query("NOSUCHORDER")
        assert refused.value.code == "ORDER_NOT_EXIST" and not refused.value.retryable


class TestRefunds:
    async def test_refund_succeeds_and_query_refund_agrees(self, world: World) -> None:
        await paid(world, "ORDER0020")

        refund = await world.gateway.refund(refund_request(world, "ORDER0020", refund_fen=1000))
        assert refund.state is RefundState.PROCESSING  # WeChat accepts first, settles after
        assert refund.refund_fen == 1000

        queried = await world.gateway.query_refund(
            out_trade_no="ORDER0020", out_refund_no="RORDER0020"
        )
        assert queried.state is RefundState.SUCCEEDED
        assert queried.refund_fen == 1000
        assert queried.refund_id == world.simulator.refunds["RORDER0020"].refund_id
        assert queried.finished_at is not None
        assert (await world.gateway.query("ORDER0020")).state is TradeState.REFUNDED

    async def test_the_same_refund_number_twice_is_one_refund(self, world: World) -> None:
        await paid(world, "ORDER0021")
        first = await world.gateway.refund(refund_request(world, "ORDER0021"))
        again = await world.gateway.refund(refund_request(world, "ORDER0021"))
        assert again.refund_id == first.refund_id
        assert len(world.simulator.refunds) == 1

    async def test_refund_stays_processing_until_settled(self, world: World) -> None:
        await paid(world, "ORDER0022")
        world.simulator.next_refund_outcome("PROCESSING")

        await world.gateway.refund(refund_request(world, "ORDER0022"))
        still = await world.gateway.query_refund(
            out_trade_no="ORDER0022", out_refund_no="RORDER0022"
        )
        assert still.state is RefundState.PROCESSING

        world.simulator.settle_refund("RORDER0022")
        done = await world.gateway.query_refund(
            out_trade_no="ORDER0022", out_refund_no="RORDER0022"
        )
        assert done.state is RefundState.SUCCEEDED

    async def test_abnormal_refund_ends_failed_with_its_reason(self, world: World) -> None:
        await paid(world, "ORDER0023")
        world.simulator.next_refund_outcome("ABNORMAL")

        await world.gateway.refund(refund_request(world, "ORDER0023"))

        queried = await world.gateway.query_refund(
            out_trade_no="ORDER0023", out_refund_no="RORDER0023"
        )
        assert queried.state is RefundState.FAILED
        assert queried.failure == "ABNORMAL"
        await eventually(lambda: len(world.receiver.accepted) == 2)
        notice = world.receiver.accepted[1]
        assert notice.kind is NotificationKind.REFUND
        assert notice.refund is not None and notice.refund.state is RefundState.FAILED

    async def test_not_enough_balance_is_refused_for_good(self, world: World) -> None:
        await paid(world, "ORDER0024")
        world.simulator.fail_next_refund(code="NOT_ENOUGH")

        with pytest.raises(GatewayError) as refused:
            await world.gateway.refund(refund_request(world, "ORDER0024"))

        assert refused.value.code == "NOT_ENOUGH" and not refused.value.retryable
        assert world.simulator.refunds == {}

    async def test_refund_beyond_the_charge_is_refused(self, world: World) -> None:
        await paid(world, "ORDER0025")
        await world.gateway.refund(refund_request(world, "ORDER0025", refund_fen=2000))
        with pytest.raises(GatewayError) as refused:
            await world.gateway.refund(
                refund_request(world, "ORDER0025", out_refund_no="R2ORDER0025", refund_fen=501)
            )
        assert refused.value.code == "INVALID_REQUEST" and not refused.value.retryable

    async def test_query_refund_of_another_order_is_refused(self, world: World) -> None:
        await paid(world, "ORDER0026")
        await world.gateway.refund(refund_request(world, "ORDER0026"))
        with pytest.raises(GatewayError) as refused:
            await world.gateway.query_refund(out_trade_no="ORDER9999", out_refund_no="RORDER0026")
        assert refused.value.code == "REFUND_TRADE_MISMATCH"


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "code", "retryable"),
        [
            (500, "SYSTEM_ERROR", True),
            (429, "FREQUENCY_LIMITED", True),
            (503, "BANK_ERROR", True),
            (400, "PARAM_ERROR", False),
            (400, "ORDER_CLOSED", False),
            (403, "NO_AUTH", False),
        ],
    )
    async def test_provider_errors_say_whether_to_try_again(
        self, world: World, status: int, code: str, retryable: bool
    ) -> None:
        world.simulator.fail_next_request(status=status, code=code, message="模拟的错误")
        with pytest.raises(GatewayError) as failed:
            await world.gateway.create(world.pay_request("ORDER0030"))
        assert failed.value.code == code
        assert failed.value.message == "模拟的错误"
        assert failed.value.retryable is retryable
        assert "ORDER0030" not in world.simulator.trades

    async def test_unreachable_provider_is_retryable(self, keys: WechatPaySimulatorKeys) -> None:
        gateway = WechatPayGateway(
            credentials=keys.merchant_credentials(),
            gateway_url=f"http://127.0.0.1:{free_port()}",
            timeout=(1.0, 1.0),
        )
        with pytest.raises(GatewayError) as failed:
            await gateway.query("ORDER0031")
        assert failed.value.code == "NETWORK_ERROR" and failed.value.retryable

    async def test_an_answer_not_signed_by_wechat_pay_is_not_believed(
        self, world: World, keys: WechatPaySimulatorKeys
    ) -> None:
        await paid(world, "ORDER0032")
        impostor = WechatPaySimulatorKeys.generate()
        credentials = replace(
            keys.merchant_credentials(), public_key_pem=impostor.platform_public_key_pem
        )
        gateway = WechatPayGateway(credentials=credentials, gateway_url=world.base_url)

        with pytest.raises(GatewayError) as failed:
            await gateway.query("ORDER0032")

        assert failed.value.code == "PROVIDER_ERROR"
        assert failed.value.retryable  # the call's effect is unknown: ask again later

    async def test_a_request_not_signed_by_the_merchant_is_refused(
        self, world: World, keys: WechatPaySimulatorKeys
    ) -> None:
        stranger = WechatPaySimulatorKeys.generate()
        credentials = replace(
            keys.merchant_credentials(), private_key_pem=stranger.merchant_private_key_pem
        )
        gateway = WechatPayGateway(credentials=credentials, gateway_url=world.base_url)

        with pytest.raises(GatewayError) as failed:
            await gateway.create(world.pay_request("ORDER0033"))

        assert failed.value.code == "SIGN_ERROR" and not failed.value.retryable
        assert "ORDER0033" not in world.simulator.trades


class TestNotifications:
    async def test_payment_notification_round_trip(self, world: World) -> None:
        await paid(world, "ORDER0040", amount_fen=3300)

        await eventually(lambda: len(world.receiver.accepted) == 1)

        notice = world.receiver.accepted[0]
        trade = world.simulator.trades["ORDER0040"]
        assert notice.kind is NotificationKind.PAYMENT
        assert notice.out_trade_no == "ORDER0040"
        assert notice.trade is not None
        assert notice.trade.state is TradeState.PAID
        assert notice.trade.amount_fen == 3300
        assert notice.trade.transaction_id == trade.transaction_id
        assert notice.trade.payer == trade.openid
        assert notice.event_id in world.simulator.notifications
        assert world.receiver.answers == [200]

    async def test_refund_notification_round_trip(self, world: World) -> None:
        await paid(world, "ORDER0041")
        await world.gateway.refund(refund_request(world, "ORDER0041", refund_fen=700))

        await eventually(lambda: len(world.receiver.accepted) == 2)

        notice = world.receiver.accepted[1]
        assert notice.kind is NotificationKind.REFUND
        assert notice.out_trade_no == "ORDER0041"
        assert notice.refund is not None
        assert notice.refund.state is RefundState.SUCCEEDED
        assert notice.refund.out_refund_no == "RORDER0041"
        assert notice.refund.refund_fen == 700
        assert notice.refund.refund_id == world.simulator.refunds["RORDER0041"].refund_id

    @pytest.mark.parametrize(
        "fault", ["bad_signature", "stale_timestamp", "bad_ciphertext", "wrong_apiv3_key"]
    )
    async def test_a_faulty_delivery_is_refused_and_the_retry_accepted(
        self, world: World, fault: str
    ) -> None:
        world.simulator.inject_fault(fault)  # type: ignore[arg-type]
        await paid(world, "ORDER0042")

        await eventually(lambda: len(world.receiver.accepted) == 1)

        assert len(world.receiver.rejected) == 1
        attempts = world.simulator.attempts
        assert [(a.fault, a.status_code) for a in attempts] == [(fault, 500), (None, 200)]

    @pytest.mark.parametrize(
        "fault", ["bad_signature", "stale_timestamp", "bad_ciphertext", "wrong_apiv3_key"]
    )
    async def test_faulty_notifications_raise_invalid(self, world: World, fault: str) -> None:
        world.simulator.hold()
        await paid(world, "ORDER0043")
        (held,) = world.simulator.held()
        headers, body = world.simulator.notification_for(held.event_id, fault)  # type: ignore[arg-type]

        with pytest.raises(InvalidNotification):
            await world.gateway.verify_notification(headers, body)

        sound_headers, sound_body = world.simulator.notification_for(held.event_id)
        notice = await world.gateway.verify_notification(sound_headers, sound_body)
        assert notice.event_id == held.event_id

    async def test_a_body_changed_after_signing_is_invalid(self, world: World) -> None:
        world.simulator.hold()
        await paid(world, "ORDER0044")
        (held,) = world.simulator.held()
        headers, body = world.simulator.notification_for(held.event_id)
        changed = json.loads(body)
        changed["event_type"] = "REFUND.SUCCESS"

        with pytest.raises(InvalidNotification):
            await world.gateway.verify_notification(
                headers, json.dumps(changed, ensure_ascii=False).encode()
            )

    async def test_unknown_serial_and_missing_headers_are_invalid(self, world: World) -> None:
        world.simulator.hold()
        await paid(world, "ORDER0045")
        (held,) = world.simulator.held()
        headers, body = world.simulator.notification_for(held.event_id)

        with pytest.raises(InvalidNotification, match="Serial"):
            await world.gateway.verify_notification(
                {**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}, body
            )
        without = {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}
        with pytest.raises(InvalidNotification, match="missing"):
            await world.gateway.verify_notification(without, body)

    async def test_a_merchant_with_the_wrong_apiv3_key_cannot_read_notifications(
        self, world: World, keys: WechatPaySimulatorKeys
    ) -> None:
        world.simulator.hold()
        await paid(world, "ORDER0046")
        (held,) = world.simulator.held()
        headers, body = world.simulator.notification_for(held.event_id)
        credentials = replace(keys.merchant_credentials(), apiv3_key="0" * 32)
        gateway = WechatPayGateway(credentials=credentials, gateway_url=world.base_url)

        with pytest.raises(InvalidNotification):
            await gateway.verify_notification(headers, body)

    async def test_retries_until_answered_2xx_then_stop(self, world: World) -> None:
        world.receiver.fail_valid = 3
        await paid(world, "ORDER0047")

        await eventually(lambda: len(world.receiver.accepted) == 1)
        await asyncio.sleep(0.3)  # longer than the remaining schedule

        assert [a.status_code for a in world.simulator.attempts] == [500, 500, 500, 200]
        assert world.receiver.answers == [500, 500, 500, 200]
        assert world.simulator.pending() == 0

    async def test_retries_give_up_after_the_schedule(self, world: World) -> None:
        world.receiver.fail_valid = 100
        await paid(world, "ORDER0048")

        await eventually(lambda: world.simulator.pending() == 0 and len(world.receiver.answers) > 1)
        await asyncio.sleep(0.2)

        # the first delivery and one retry per interval of the schedule
        assert len(world.simulator.attempts) == 1 + len(world.simulator.retry_intervals)
        assert world.receiver.accepted == []

    def test_the_default_schedule_is_wechat_pays(self, keys: WechatPaySimulatorKeys) -> None:
        app = build_wechatpay_simulator(keys=keys)
        minutes = [s / 60 for s in wechatpay_simulator_of(app).retry_intervals]
        assert minutes == [0.25, 0.25, 0.5, 3, 10, 20, 30, 30, 30, 60, 180, 180, 180, 360, 360]

    async def test_a_duplicate_delivery_carries_the_same_event(self, world: World) -> None:
        await paid(world, "ORDER0049")
        await eventually(lambda: len(world.receiver.accepted) == 1)

        world.simulator.redeliver(world.receiver.accepted[0].event_id)

        await eventually(lambda: len(world.receiver.accepted) == 2)
        first, second = world.receiver.accepted
        assert first.event_id == second.event_id
        assert first.trade == second.trade

    async def test_held_notifications_arrive_in_the_order_released(self, world: World) -> None:
        world.simulator.hold()
        await paid(world, "ORDER0050")
        await world.gateway.refund(refund_request(world, "ORDER0050"))
        payment, refund = world.simulator.held()
        assert (payment.event_type, refund.event_type) == ("TRANSACTION.SUCCESS", "REFUND.SUCCESS")
        await asyncio.sleep(0.1)
        assert world.receiver.answers == []

        world.simulator.release(refund.event_id, payment.event_id)

        await eventually(lambda: len(world.receiver.accepted) == 2)
        kinds = [n.kind for n in world.receiver.accepted]
        assert kinds == [NotificationKind.REFUND, NotificationKind.PAYMENT]

    def test_reply_is_what_wechat_pay_expects(self, world: World) -> None:
        ok = world.gateway.reply(accepted=True)
        assert ok.status_code == 200 and ok.body == b""
        failed = world.gateway.reply(accepted=False)
        assert failed.status_code >= 400
        assert json.loads(failed.body)["code"] == "FAIL"
        assert failed.content_type == "application/json"


class TestStatement:
    async def test_trade_bill_lines_in_exact_fen(self, world: World) -> None:
        yesterday = world.clock.now()
        await paid(world, "ORDER0060", amount_fen=1)
        await paid(world, "ORDER0061", amount_fen=12345)
        await paid(world, "ORDER0062", amount_fen=1999)
        await world.gateway.refund(
            refund_request(world, "ORDER0061", refund_fen=10, total_fen=12345)
        )
        stray = world.simulator.add_provider_only_trade(amount_fen=990)
        world.simulator.tamper_bill_amount("ORDER0062", 1990)
        world.clock.advance(timedelta(days=1))

        bill_day = yesterday.astimezone(SHANGHAI).date()
        statement = await world.gateway.download_statement(bill_day)

        payments = {
            line.out_trade_no: line
            for line in statement.lines
            if line.kind is StatementKind.PAYMENT
        }
        refunds = [line for line in statement.lines if line.kind is StatementKind.REFUND]
        assert {no: line.amount_fen for no, line in payments.items()} == {
            "ORDER0060": 1,
            "ORDER0061": 12345,
            "ORDER0062": 1990,  # what the bill says, not what was charged
            stray.out_trade_no: 990,
        }
        assert (
            payments["ORDER0061"].transaction_id
            == world.simulator.trades["ORDER0061"].transaction_id
        )
        assert payments["ORDER0060"].at == yesterday.replace(microsecond=0)
        (refund,) = refunds
        assert refund.out_trade_no == "ORDER0061"
        assert refund.out_refund_no == "RORDER0061"
        assert refund.refund_id == world.simulator.refunds["RORDER0061"].refund_id
        assert refund.amount_fen == 10
        assert refund.raw["退款状态"] == "SUCCESS"
        assert statement.bill_date == bill_day

    async def test_no_bill_for_today_or_a_quiet_day(self, world: World) -> None:
        today = world.clock.now().astimezone(SHANGHAI).date()
        await paid(world, "ORDER0063")
        with pytest.raises(StatementNotReady) as not_ready:
            await world.gateway.download_statement(today)
        assert not_ready.value.retryable
        with pytest.raises(StatementNotReady):
            await world.gateway.download_statement(today - timedelta(days=3))


BILL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n"
    "`2024-05-01 09:30:00,`wx1,`1900000109,`0,`,`4200001,`A000001,`oX,`NATIVE,`SUCCESS,`OTHERS,"
    "`CNY,`0.10,`0.00,`0,`0,`0.00,`0.00,`,`,`挂号费,`,`0.00060,`0.60%,`0.10,`0.00,`\r\n"
    "`2024-05-01 10:00:00,`wx1,`1900000109,`0,`,`4200001,`A000001,`oX,`NATIVE,`REFUND,`OTHERS,"
    "`CNY,`0.00,`0.00,`5030001,`RA000001,`0.07,`0.00,`ORIGINAL,`SUCCESS,`挂号费,`,`-0.00042,"
    "`0.60%,`0.00,`0.07,`\r\n"
    "`2024-05-01 11:00:00,`wx1,`1900000109,`0,`,`4200002,`A000002,`oY,`NATIVE,`REVOKED,`OTHERS,"
    "`CNY,`0.00,`0.00,`0,`0,`0.00,`0.00,`,`,`挂号费,`,`0.00000,`0.60%,`3.00,`0.00,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`3,`0.10,`0.07,`0.00,`0.00018,`3.10,`0.07\r\n"
)


class TestBillParsing:
    def test_payments_refunds_and_times(self) -> None:
        lines = parse_trade_bill(BILL)

        assert [(line.kind, line.out_trade_no, line.amount_fen) for line in lines] == [
            (StatementKind.PAYMENT, "A000001", 10),
            (StatementKind.REFUND, "A000001", 7),
        ]
        assert lines[0].at == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
        assert lines[1].out_refund_no == "RA000001" and lines[1].refund_id == "5030001"
        assert lines[0].raw["商品名称"] == "挂号费"

    def test_a_summary_that_does_not_count_the_rows_is_refused(self) -> None:
        with pytest.raises(ValueError, match="summary"):
            parse_trade_bill(BILL.replace("`3,`0.10", "`4,`0.10"))

    @pytest.mark.parametrize(
        ("yuan", "fen"),
        [
            ("0.01", 1),
            ("0.1", 10),
            ("12.30", 1230),
            ("123.45", 12345),
            ("0.29", 29),
            ("-1.5", -150),
        ],
    )
    def test_yuan_to_fen_is_exact(self, yuan: str, fen: int) -> None:
        assert yuan_to_fen(yuan) == fen

    @pytest.mark.parametrize("bad", ["0.005", "abc", "", "NaN", "Infinity"])
    def test_yuan_to_fen_refuses_what_is_not_whole_fen(self, bad: str) -> None:
        with pytest.raises(ValueError, match="not"):
            yuan_to_fen(bad)


class TestCashier:
    async def test_cashier_shows_the_trade_and_paying_notifies(self, world: World) -> None:
        checkout = await world.gateway.create(
            world.pay_request(
                "ORDER0070",
                amount_fen=1234,
                method=PayMethod.H5,
                return_url="https://yuyue.example/back",
            )
        )
        assert checkout.redirect_url is not None

        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout.redirect_url)
            assert page.status_code == 200
            assert "预约挂号示范医院" in page.text
            assert "北京协和医院-心内科 主任医师" in page.text
            assert "¥12.34" in page.text
            assert "确认支付" in page.text and "取消" in page.text
            assert world.receiver.accepted == []

            prepay_id = world.simulator.trades["ORDER0070"].prepay_id
            answer = await browser.post(
                f"{world.base_url}/cashier/{prepay_id}/pay",
                data={"redirect_url": "https://yuyue.example/back"},
            )

        assert answer.status_code == 303
        assert answer.headers["location"] == "https://yuyue.example/back"
        await eventually(lambda: len(world.receiver.accepted) == 1)
        assert world.receiver.accepted[0].out_trade_no == "ORDER0070"
        assert (await world.gateway.query("ORDER0070")).state is TradeState.PAID

    async def test_cancel_goes_back_without_paying(self, world: World) -> None:
        checkout = await world.gateway.create(
            world.pay_request("ORDER0071", method=PayMethod.H5, return_url="https://y.example/b")
        )
        assert checkout.redirect_url is not None
        prepay_id = world.simulator.trades["ORDER0071"].prepay_id
        async with httpx.AsyncClient() as browser:
            answer = await browser.get(
                f"{world.base_url}/cashier/{prepay_id}/cancel",
                params={"redirect_url": "https://y.example/b"},
            )
        assert answer.status_code == 303
        assert world.simulator.trades["ORDER0071"].state == "NOTPAY"


class TestMountedAndConfigured:
    async def test_mounted_under_a_prefix_with_settings_from_files(
        self, keys: WechatPaySimulatorKeys, tmp_path: Path
    ) -> None:
        port = free_port()
        prefix = f"http://127.0.0.1:{port}/sim/wechatpay"
        clock = FixedClock(datetime.now(UTC))
        simulator_app = build_wechatpay_simulator(
            keys=keys, public_base_url=prefix, retry_intervals=(0.05,), clock=clock
        )
        host = FastAPI()
        host.mount("/sim/wechatpay", simulator_app)
        settings = Settings(
            wechatpay_gateway_url=prefix, **keys.write_merchant_files(tmp_path / "keys")
        )
        gateway = wechatpay_from_settings(settings)
        assert gateway is not None

        with serve_asgi(host, port=port):
            checkout = await gateway.create(
                PayRequest(
                    out_trade_no="ORDER0080",
                    amount_fen=600,
                    description="挂号费",
                    method=PayMethod.NATIVE,
                    expires_at=clock.now() + timedelta(minutes=15),
                    notify_url="http://127.0.0.1:1/none",
                )
            )
            assert checkout.qr_content is not None
            assert checkout.qr_content.startswith(prefix + "/cashier/")
            simulator = wechatpay_simulator_of(simulator_app)
            simulator.pay("ORDER0080", openid="oTest")
            day = clock.now().astimezone(SHANGHAI).date()
            clock.advance(timedelta(days=1))
            statement = await gateway.download_statement(day)
            simulator.close()

        assert [(line.out_trade_no, line.amount_fen) for line in statement.lines] == [
            ("ORDER0080", 600)
        ]
        assert (tmp_path / "keys" / "apiv3_key.txt").stat().st_mode & 0o077 == 0

    def test_not_configured_is_none_and_half_configured_is_an_error(self, tmp_path: Path) -> None:
        assert wechatpay_from_settings(Settings()) is None
        with pytest.raises(ValueError, match="wechatpay_private_key_file") as half:
            wechatpay_from_settings(Settings(wechatpay_mchid="1900000109"))
        assert "1900000109" not in str(half.value)


class TestPlatformCertificates:
    async def test_the_older_certificate_scheme_verifies_answers_and_notifications(
        self, keys: WechatPaySimulatorKeys, tmp_path: Path
    ) -> None:
        cert_dir = tmp_path / "wechatpay-certs"
        with wechatpay_world(keys, cert_dir=str(cert_dir)) as world:
            await paid(world, "ORDER0100", amount_fen=880)
            status = await world.gateway.query("ORDER0100")
            await eventually(lambda: len(world.receiver.accepted) == 1)

            serial = world.simulator.certificate_serial
            assert status.state is TradeState.PAID and status.amount_fen == 880
            assert world.receiver.accepted[0].trade == status
            assert [p.name for p in cert_dir.iterdir()] == [f"{serial}.pem"]
            assert ("GET", "/v3/certificates") in world.simulator.requests

            forged_headers, body = world.simulator.notification_for(
                world.receiver.accepted[0].event_id, "bad_signature"
            )
            with pytest.raises(InvalidNotification):
                await world.gateway.verify_notification(forged_headers, body)


class TestLogs:
    async def test_no_key_material_token_or_openid_in_logs(
        self, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        world.simulator.inject_fault("bad_signature")
        await world.gateway.create(
            world.pay_request("ORDER0090", method=PayMethod.JSAPI, payer_openid="oSECRETOPENID42")
        )
        world.simulator.pay("ORDER0090")
        await eventually(lambda: len(world.receiver.accepted) == 1)
        await world.gateway.refund(refund_request(world, "ORDER0090"))
        await eventually(lambda: len(world.receiver.accepted) == 2)
        await world.gateway.query("ORDER0090")
        with pytest.raises(GatewayError):
            await world.gateway.query("NOSUCHORDER")

        text = caplog.text
        assert "ORDER0090" in text  # the adapter does log its calls
        assert world.keys.apiv3_key not in text
        assert "oSECRETOPENID42" not in text
        for pem in (world.keys.merchant_private_key_pem, world.keys.platform_private_key_pem):
            body = "".join(pem.strip().splitlines()[1:-1])
            assert body[:40] not in text.replace("\n", "")
        assert "signature=" not in text  # no Authorization header
        assert "PRIVATE KEY" not in text
        assert keys_repr_hides_secrets(world)


def keys_repr_hides_secrets(world: World) -> bool:
    shown = repr(world.keys) + repr(world.gateway) + repr(world.keys.merchant_credentials())
    return world.keys.apiv3_key not in shown and "PRIVATE" not in shown
