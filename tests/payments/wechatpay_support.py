"""What the WeChat Pay tests share: the simulator and a merchant-side receiver, each on a real
port, and a way to wait for background deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request, Response

from tests.payments.serving import serve_asgi
from yuyue.kit.clock import FixedClock
from yuyue.payments.gateway import InvalidNotification, Notification, PayMethod, PayRequest
from yuyue.payments.providers.wechatpay import WechatPayGateway
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulator,
    WechatPaySimulatorKeys,
    build_wechatpay_simulator,
    wechatpay_simulator_of,
)

FAST_RETRIES = (0.05, 0.05, 0.05, 0.05, 0.05)


@dataclass
class Receiver:
    """The merchant's notify endpoint: verifies with the adapter and answers as it says.
    `fail_valid` makes it answer "not recorded" to that many valid notifications first."""

    gateway: WechatPayGateway
    fail_valid: int = 0
    accepted: list[Notification] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            body = await request.body()
            try:
                notification = await self.gateway.verify_notification(request.headers, body)
            except InvalidNotification as error:
                self.rejected.append(str(error))
                reply = self.gateway.reply(accepted=False)
            else:
                if self.fail_valid > 0:
                    self.fail_valid -= 1
                    reply = self.gateway.reply(accepted=False)
                else:
                    self.accepted.append(notification)
                    reply = self.gateway.reply(accepted=True)
            self.answers.append(reply.status_code)
            return Response(reply.body, reply.status_code, media_type=reply.content_type)

        return app


@dataclass
class World:
    keys: WechatPaySimulatorKeys
    simulator: WechatPaySimulator
    gateway: WechatPayGateway
    receiver: Receiver
    base_url: str
    clock: FixedClock

    def pay_request(
        self,
        out_trade_no: str,
        *,
        amount_fen: int = 2500,
        method: PayMethod = PayMethod.NATIVE,
        **extra: object,
    ) -> PayRequest:
        values: dict[str, object] = {
            "out_trade_no": out_trade_no,
            "amount_fen": amount_fen,
            "description": "北京协和医院-心内科 主任医师",
            "method": method,
            "expires_at": self.clock.now() + timedelta(minutes=15),
            "notify_url": self.receiver.url,
        }
        values.update(extra)
        return PayRequest(**values)  # type: ignore[arg-type]


@contextmanager
def wechatpay_world(
    keys: WechatPaySimulatorKeys,
    *,
    retry_intervals: tuple[float, ...] = FAST_RETRIES,
    public_base_url: str | None = None,
    cert_dir: str | None = None,
) -> Iterator[World]:
    """With `cert_dir`, WeChat Pay signs under a platform certificate (the older scheme) and
    the merchant keeps the certificates it downloads there."""
    clock = FixedClock(datetime.now(UTC))
    app = build_wechatpay_simulator(
        keys=keys,
        retry_intervals=retry_intervals,
        clock=clock,
        public_base_url=public_base_url,
        platform_certificate=cert_dir is not None,
    )
    simulator = wechatpay_simulator_of(app)
    with serve_asgi(app) as base_url:
        credentials = keys.merchant_credentials()
        if cert_dir is not None:
            credentials = replace(
                credentials, public_key_pem=None, public_key_id=None, cert_dir=cert_dir
            )
        gateway = WechatPayGateway(credentials=credentials, gateway_url=base_url)
        receiver = Receiver(gateway)
        with serve_asgi(receiver.app()) as receiver_base:
            receiver.url = receiver_base + "/notify"
            try:
                yield World(keys, simulator, gateway, receiver, base_url, clock)
            finally:
                simulator.close()


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.02)
