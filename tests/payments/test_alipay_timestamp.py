"""Alipay reads a request's `timestamp` as Beijing time and refuses one too far from its
clock; python-alipay-sdk writes the server's local time. The adapter stamps Beijing time
whatever the server's zone (TZ), checked against the simulator, which refuses as Alipay
does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from alipay import AliPay  # type: ignore[import-untyped]

from tests.payments.alipay_support import alipay_world
from yuyue.payments.gateway import PayMethod, TradeState
from yuyue.payments.simulators.alipay import AlipaySimulatorKeys

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def keys() -> AlipaySimulatorKeys:
    return AlipaySimulatorKeys.generate()


@pytest.fixture(params=["UTC", "America/Los_Angeles", "Asia/Shanghai"])
def server_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's local time zone, as the server's TZ would set it."""
    monkeypatch.setenv("TZ", str(request.param))
    time.tzset()
    yield str(request.param)
    monkeypatch.undo()
    time.tzset()


async def test_the_adapter_stamps_beijing_time_whatever_the_servers_zone(
    keys: AlipaySimulatorKeys, server_zone: str
) -> None:
    with alipay_world(keys) as world:
        body = world.gateway._client.build_body("alipay.trade.query", {})
        stamped = datetime.strptime(body["timestamp"], "%Y-%m-%d %H:%M:%S")
        assert abs(stamped.replace(tzinfo=SHANGHAI) - datetime.now(UTC)) < timedelta(minutes=1)

        # An API call and a cashier both pass Alipay's timestamp check.
        status = await world.gateway.query("T" + uuid.uuid4().hex)
        assert status.state is TradeState.NOT_PAID
        await world.open_cashier("T" + uuid.uuid4().hex, method=PayMethod.WAP)


async def test_the_librarys_own_stamp_is_refused_outside_beijing(
    keys: AlipaySimulatorKeys, server_zone: str
) -> None:
    """What the adapter fixes: the library alone stamps local time, which Alipay refuses
    unless the server happens to run on Beijing time."""
    with alipay_world(keys) as world:
        library = AliPay(
            appid=keys.app_id,
            app_private_key_string=keys.app_private_key_pem,
            alipay_public_key_string=keys.alipay_public_key_pem,
            sign_type="RSA2",
        )
        query = library.client_api(
            "alipay.trade.wap.pay",
            {
                "subject": "挂号费",
                "out_trade_no": "T" + uuid.uuid4().hex,
                "total_amount": "80.00",
                "product_code": "QUICK_WAP_WAY",
            },
            notify_url=world.notify_url,
        )
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{world.base_url}/gateway.do?{query}")

    if server_zone == "Asia/Shanghai":
        assert page.status_code == 200, page.text
    else:
        assert page.status_code == 400
        assert "非法的时间戳参数" in page.text
