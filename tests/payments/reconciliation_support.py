"""The reconciliation tests' world: the WeChat Pay and Alipay simulators on real ports, run
on the test's clock, with the real adapters installed in the app context, and a merchant
endpoint that keeps each notification so the test hands it to the payments service."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from sqlalchemy import select, update

from tests import factories as f
from tests.conftest import NOW, World
from tests.payments.serving import free_port, serve_asgi
from tests.payments.support import fee_session, hold
from yuyue.booking.models import Appointment
from yuyue.kit.clock import Clock, FixedClock
from yuyue.payments import service as payments
from yuyue.payments.gateway import PayMethod, Provider
from yuyue.payments.models import PaymentOrder
from yuyue.payments.providers.alipay import AlipayGateway, format_shanghai
from yuyue.payments.providers.wechatpay import WechatPayGateway
from yuyue.payments.simulators.alipay import (
    AlipaySimulator,
    AlipaySimulatorKeys,
    build_alipay_simulator,
    simulator_of,
)
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulator,
    WechatPaySimulatorKeys,
    build_wechatpay_simulator,
    wechatpay_simulator_of,
)
from yuyue.web.context import AppContext

FAST = (0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05)
METHOD = {Provider.WECHATPAY: PayMethod.NATIVE, Provider.ALIPAY: PayMethod.WAP}


@dataclass
class Inbox:
    """The merchant's notify URL: keeps (headers, body) and answers as both providers
    want to hear (2xx and `success`)."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            return Response(b"success", media_type="text/plain")

        return app


@dataclass
class Providers:
    ctx: AppContext
    world: World
    wechatpay: WechatPaySimulator
    alipay: AlipaySimulator
    inbox: Inbox
    handled: int = 0

    @property
    def clock(self) -> FixedClock:
        assert isinstance(self.ctx.clock, FixedClock)
        return self.ctx.clock

    async def new_patient(self) -> uuid.UUID:
        async with self.ctx.db.session_scope() as s:
            patient = await f.make_patient(
                s, hospital=self.world.hospital, cipher=self.ctx.cipher, now=NOW, name="王五"
            )
            return patient.id

    async def pay(self, provider: Provider) -> PaymentOrder:
        """A held appointment paid on the provider's cashier, its notification handled by
        our payments service: a booked appointment with a paid order."""
        clinic = await fee_session(self.ctx, self.world)
        held = await hold(self.ctx, self.world, clinic, patient_id=await self.new_patient())
        checkout = await payments.start_payment(
            db=self.ctx.db,
            gateways=self.ctx.gateways,
            actor=_channel(self.world),
            appointment_id=held,
            provider=provider,
            method=METHOD[provider],
            notify_url=self.inbox.url,
            return_url="https://yuyue.example/paid",
            clock=self.ctx.clock,
        )
        order = await self.order_of(held)
        if provider is Provider.WECHATPAY:
            self.wechatpay.pay(order.out_trade_no)
        else:
            assert checkout.redirect_url is not None
            async with httpx.AsyncClient() as browser:
                opened = await browser.get(checkout.redirect_url)
            assert opened.status_code == 200, opened.text
            self.alipay.pay(order.out_trade_no)
        await self._handle_next()
        paid = await self.order_of(held)
        assert paid.state == "paid", paid.state
        return paid

    async def _handle_next(self) -> None:
        deadline = time.monotonic() + 10
        while len(self.inbox.received) <= self.handled:
            if time.monotonic() > deadline:
                raise AssertionError("no notification arrived")
            await asyncio.sleep(0.02)
        headers, body = self.inbox.received[self.handled]
        self.handled += 1
        provider = Provider.WECHATPAY if "wechatpay-signature" in headers else Provider.ALIPAY
        outcome = await payments.handle_notification(
            db=self.ctx.db,
            gateways=self.ctx.gateways,
            provider=provider,
            headers=headers,
            body=body,
            clock=self.ctx.clock,
        )
        assert outcome.result == payments.PAID, outcome.result

    async def order_of(self, appointment_id: uuid.UUID) -> PaymentOrder:
        async with self.ctx.db.read() as s:
            order = await s.scalar(
                select(PaymentOrder).where(PaymentOrder.appointment_id == appointment_id)
            )
        assert order is not None
        return order

    async def forget_booking(self, order: PaymentOrder) -> None:
        """The appointment is cancelled by a path that forgot its money (no refund row): the
        case the safety net and the reconciliation exist for."""
        async with self.ctx.db.session_scope() as s:
            await s.execute(
                update(Appointment)
                .where(Appointment.id == order.appointment_id)
                .values(status="cancelled")
            )

    def provider_only(self, provider: Provider, amount_fen: int) -> str:
        if provider is Provider.WECHATPAY:
            return self.wechatpay.add_provider_only_trade(amount_fen=amount_fen).out_trade_no
        number = "X" + uuid.uuid4().hex[:20]
        self.alipay.add_provider_only_trade(number, amount_fen)
        return number

    def tamper(self, provider: Provider, out_trade_no: str, amount_fen: int) -> None:
        self.simulator(provider).tamper_bill_amount(out_trade_no, amount_fen)

    def lose(self, provider: Provider, out_trade_no: str) -> None:
        """The provider has no record of a charge we hold as paid."""
        del self.simulator(provider).trades[out_trade_no]

    def simulator(self, provider: Provider) -> Any:
        return self.wechatpay if provider is Provider.WECHATPAY else self.alipay

    def refunds_at(self, provider: Provider) -> dict[str, int]:
        """out_refund_no → fen of every refund the provider made."""
        if provider is Provider.WECHATPAY:
            return {no: r.refund_fen for no, r in self.wechatpay.refunds.items()}
        return {
            no: r.refund_fen
            for trade in self.alipay.trades.values()
            for no, r in trade.refunds.items()
        }


def _channel(world: World) -> Any:
    from tests.payments.support import channel_actor

    return channel_actor(world)


def _stamp_with(gateway: AlipayGateway, clock: Clock) -> None:
    """Alipay refuses a request stamped off its clock; here the merchant and Alipay share
    the test's clock (as in life they share the real one), so the days can move."""
    build_body = gateway._client.build_body

    def stamped(method: str, biz_content: Any = None, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = build_body(method, biz_content, **kwargs)
        body["timestamp"] = format_shanghai(clock.now())
        return body

    gateway._client.build_body = stamped


@contextmanager
def simulated_providers(
    ctx: AppContext,
    world: World,
    wechat_keys: WechatPaySimulatorKeys,
    alipay_keys: AlipaySimulatorKeys,
) -> Iterator[Providers]:
    clock = ctx.clock
    wechat_app = build_wechatpay_simulator(keys=wechat_keys, retry_intervals=FAST, clock=clock)
    alipay_port = free_port()
    alipay_app = build_alipay_simulator(
        keys=alipay_keys,
        public_base_url=f"http://127.0.0.1:{alipay_port}",
        retry_schedule=FAST,
        clock=clock.now,
    )
    inbox = Inbox()
    with ExitStack() as stack:
        wechat_url = stack.enter_context(serve_asgi(wechat_app))
        alipay_url = stack.enter_context(serve_asgi(alipay_app, port=alipay_port))
        inbox.url = stack.enter_context(serve_asgi(inbox.app())) + "/notify"
        ctx.gateways[Provider.WECHATPAY] = WechatPayGateway(
            credentials=wechat_keys.merchant_credentials(), gateway_url=wechat_url
        )
        alipay = AlipayGateway(
            app_id=alipay_keys.app_id,
            app_private_key_pem=alipay_keys.app_private_key_pem,
            alipay_public_key_pem=alipay_keys.alipay_public_key_pem,
            gateway_url=f"{alipay_url}/gateway.do",
            timeout_seconds=5,
        )
        _stamp_with(alipay, clock)
        ctx.gateways[Provider.ALIPAY] = alipay
        ctx.settings.hospital_code = world.hospital.code
        wechat = wechatpay_simulator_of(wechat_app)
        try:
            yield Providers(ctx, world, wechat, simulator_of(alipay_app), inbox)
        finally:
            wechat.close()
