"""The Alipay adapter wired to the simulator on real ports, and a tiny merchant endpoint that
receives Alipay's notifications through the adapter, for tests/payments/test_alipay.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tests.payments.serving import free_port, serve_asgi
from yuyue.payments.gateway import (
    Checkout,
    InvalidNotification,
    Notification,
    PayMethod,
    PayRequest,
)
from yuyue.payments.providers.alipay import AlipayGateway
from yuyue.payments.simulators.alipay import (
    AlipaySimulator,
    AlipaySimulatorKeys,
    build_alipay_simulator,
    simulator_of,
)

# Alipay's schedule scaled down to milliseconds: eight attempts in well under a second.
FAST_RETRIES = (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05)


@dataclass
class Receiver:
    """The merchant's notify endpoint: verifies through the adapter and answers with the
    adapter's reply; refuses the first `refuse_first` valid ones (as if the database were
    down) so Alipay retries."""

    gateway: AlipayGateway | None = None
    refuse_first: int = 0
    accepted: list[Notification] = field(default_factory=list)
    refused: list[Notification] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            assert self.gateway is not None
            body = await request.body()
            self.bodies.append(body)
            try:
                notification = await self.gateway.verify_notification(request.headers, body)
            except InvalidNotification as exc:
                self.invalid.append(str(exc))
                reply = self.gateway.reply(accepted=False)
            else:
                if self.refuse_first > 0:
                    self.refuse_first -= 1
                    self.refused.append(notification)
                    reply = self.gateway.reply(accepted=False)
                else:
                    self.accepted.append(notification)
                    reply = self.gateway.reply(accepted=True)
            return Response(
                reply.body, status_code=reply.status_code, media_type=reply.content_type
            )

        return app


@dataclass
class AlipayWorld:
    keys: AlipaySimulatorKeys
    simulator: AlipaySimulator
    gateway: AlipayGateway
    base_url: str  # the simulator's
    notify_url: str
    receiver: Receiver

    def gateway_with(self, **overrides: str) -> AlipayGateway:
        """Another adapter against the same simulator, with some settings changed."""
        settings = {
            "app_id": self.keys.app_id,
            "app_private_key_pem": self.keys.app_private_key_pem,
            "alipay_public_key_pem": self.keys.alipay_public_key_pem,
            "gateway_url": f"{self.base_url}/gateway.do",
        }
        settings.update(overrides)
        return AlipayGateway(**settings, timeout_seconds=5)

    def pay_request(
        self,
        out_trade_no: str,
        *,
        amount_fen: int = 1999,
        method: PayMethod = PayMethod.WAP,
        expires_at: datetime | None = None,
    ) -> PayRequest:
        return PayRequest(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            description="北京协和医院-心内科 主任医师",
            method=method,
            expires_at=expires_at or datetime.now(UTC) + timedelta(minutes=15),
            notify_url=self.notify_url,
            return_url="https://yuyue.example/pay/alipay/return",  # Alipay allows no query here,
        )

    async def open_cashier(
        self, out_trade_no: str, *, amount_fen: int = 1999, method: PayMethod = PayMethod.WAP
    ) -> Checkout:
        """Creates the payment and opens its cashier, as the patient's browser would."""
        request = self.pay_request(out_trade_no, amount_fen=amount_fen, method=method)
        checkout = await self.gateway.create(request)
        assert checkout.redirect_url is not None
        async with httpx.AsyncClient() as browser:
            response = await browser.get(checkout.redirect_url)
        assert response.status_code == 200, response.text
        return checkout


@contextmanager
def alipay_world(keys: AlipaySimulatorKeys) -> Iterator[AlipayWorld]:
    receiver = Receiver()
    port = free_port()
    app = build_alipay_simulator(
        keys=keys, public_base_url=f"http://127.0.0.1:{port}", retry_schedule=FAST_RETRIES
    )
    with serve_asgi(app, port=port) as base_url, serve_asgi(receiver.app()) as receiver_url:
        world = AlipayWorld(
            keys=keys,
            simulator=simulator_of(app),
            gateway=AlipayGateway(
                app_id=keys.app_id,
                app_private_key_pem=keys.app_private_key_pem,
                alipay_public_key_pem=keys.alipay_public_key_pem,
                gateway_url=f"{base_url}/gateway.do",
                timeout_seconds=5,
            ),
            base_url=base_url,
            notify_url=f"{receiver_url}/notify",
            receiver=receiver,
        )
        receiver.gateway = world.gateway
        yield world


async def eventually(check: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.02)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
