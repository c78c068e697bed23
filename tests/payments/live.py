"""yuyue itself on a real port, paying through the real WeChat Pay and Alipay adapters and the
simulators it serves under /sim/ (`payments_simulated`), for the end-to-end payment tests.

The served app runs in its own thread and event loop with its own `Database` on the test's
database; the test talks to it over HTTP with a channel API key, as a partner's app would,
and drives the clock, the simulators' controls and the background jobs (run here, on a
second `AppContext` built from the same settings, so they reach the same simulators)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.routing import Mount

from tests import factories as f
from tests.conftest import SECRET
from tests.payments.serving import free_port, serve_asgi
from yuyue.booking.models import Appointment
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
from yuyue.kit.db import Database
from yuyue.kit.localtime import local_today
from yuyue.notifications.models import OutboxMessage
from yuyue.payments.models import PaymentOrder, Refund
from yuyue.payments.simulated import ALIPAY_PREFIX, WECHATPAY_PREFIX
from yuyue.payments.simulators.alipay import AlipaySimulator, AlipaySimulatorKeys, simulator_of
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulator,
    WechatPaySimulatorKeys,
    wechatpay_simulator_of,
)
from yuyue.payments.states import OrderState
from yuyue.scheduling.models import ClinicSession, Department, Doctor, Hospital, RegistrationLevel
from yuyue.staff.enums import Role
from yuyue.web.app import create_app
from yuyue.web.context import AppContext

FEE = 8000
# The providers' retry schedules scaled down: a notification our server failed to take comes
# again within a moment, not in 15 seconds (WeChat Pay) or 4 minutes (Alipay).
FAST_RETRIES = (0.1, 0.1, 0.2, 0.2, 0.5, 0.5, 1.0)
NAMES = ("张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十")
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class ProviderKeys:
    wechatpay: WechatPaySimulatorKeys
    alipay: AlipaySimulatorKeys

    @classmethod
    def generate(cls) -> ProviderKeys:
        return cls(WechatPaySimulatorKeys.generate(), AlipaySimulatorKeys.generate())

    def place(self, directory: Path) -> None:
        """Where `payments.simulated.prepare` looks for the simulators' keys: found there,
        they are reused instead of generated (four RSA keys per test otherwise)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "wechatpay-keys.json").write_text(json.dumps(asdict(self.wechatpay)))
        (directory / "alipay-keys.json").write_text(json.dumps(asdict(self.alipay)))


def disposing(app: ASGIApp, db: Database) -> ASGIApp:
    """The app, disposing `db` when it shuts down: in the loop that opened its connections."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def on_send(message: Any) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await db.dispose()
            await send(message)

        await app(scope, receive, on_send)

    return wrapped


def mounted(app: Any, prefix: str) -> Any:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == prefix:
            return route.app
    raise AssertionError(f"nothing is mounted at {prefix}")


def form_action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    assert found is not None, page
    return found.group(1).replace("&amp;", "&")


@dataclass
class Live:
    """The served app, the test's own context on the same database, and the hospital."""

    base_url: str
    http: httpx.AsyncClient
    ctx: AppContext
    clock: FixedClock
    wechat: WechatPaySimulator
    alipay: AlipaySimulator
    hospital: Hospital
    department: Department
    level: RegistrationLevel
    doctor: Doctor
    api_key: str
    visit_day: date
    patients: list[uuid.UUID] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    # -- the hospital

    async def patient(self) -> uuid.UUID:
        async with self.ctx.db.session_scope() as s:
            patient = await f.make_patient(
                s,
                hospital=self.hospital,
                cipher=self.ctx.cipher,
                now=self.clock.now(),
                name=NAMES[len(self.patients) % len(NAMES)],
            )
        self.patients.append(patient.id)
        return patient.id

    async def fee_session(self, *, capacity: int = 25) -> ClinicSession:
        async with self.ctx.db.session_scope() as s:
            return await f.make_session(
                s,
                hospital=self.hospital,
                department=self.department,
                level=self.level,
                doctor=self.doctor,
                day=self.visit_day,
                capacity=capacity,
                now=self.clock.now(),
            )

    async def staff(self, *roles: Role) -> dict[str, str]:
        async with self.ctx.db.session_scope() as s:
            username = await f.make_staff(
                s, hospital=self.hospital, roles=list(roles), now=self.clock.now()
            )
        answer = await self.http.post(
            "/api/v1/auth/token",
            json={"hospital": self.hospital.code, "username": username, "password": "secret-pass"},
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    # -- what a partner's app does over HTTP

    async def hold(self, session_id: uuid.UUID, patient_id: uuid.UUID | None = None) -> str:
        answer = await self.http.post(
            "/api/v1/appointments",
            json={
                "patient_id": str(patient_id or await self.patient()),
                "session_id": str(session_id),
            },
            headers=self.auth,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "held", answer.text
        return str(answer.json()["id"])

    async def checkout(self, appointment_id: str, provider: str, method: str) -> dict[str, Any]:
        answer = await self.http.post(
            f"/api/v1/appointments/{appointment_id}/payments",
            json={"provider": provider, "method": method},
            headers=self.auth,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def shown(self, appointment_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/api/v1/appointments/{appointment_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def cancel(self, appointment_id: str) -> dict[str, Any]:
        answer = await self.http.post(
            f"/api/v1/appointments/{appointment_id}/cancel", headers=self.auth
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    # -- what the patient does on the provider's cashier (a browser: plain HTTP)

    async def pay_wechat(self, checkout: dict[str, Any]) -> None:
        """Opens the H5 cashier WeChat Pay answered and presses 确认支付."""
        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout["redirect_url"])
            assert page.status_code == 200, page.text
            paid = await browser.post(form_action(page.text))
        assert paid.status_code in (200, 303), paid.text

    async def pay_alipay(self, checkout: dict[str, Any]) -> None:
        """Opens Alipay's WAP cashier (the signed gateway URL) and presses 确认付款."""
        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout["redirect_url"])
            assert page.status_code == 200, page.text
            paid = await browser.post(form_action(page.text))
        assert paid.status_code in (200, 303), paid.text

    async def pay(self, appointment_id: str, provider: str) -> str:
        """Checkout and pay; answers our out_trade_no."""
        if provider == "wechatpay":
            await self.pay_wechat(await self.checkout(appointment_id, "wechatpay", "h5"))
        else:
            await self.pay_alipay(await self.checkout(appointment_id, "alipay", "wap"))
        return (await self.orders(appointment_id))[-1].out_trade_no

    async def booked(self, appointment_id: str) -> dict[str, Any]:
        """Waits for the provider's notification to book the appointment."""
        shown: dict[str, Any] = {}

        async def is_booked() -> bool:
            nonlocal shown
            shown = await self.shown(appointment_id)
            return shown["status"] == "booked"

        await eventually(is_booked)
        return shown

    # -- the providers' notifications

    def hold_notifications(self, provider: str) -> None:
        if provider == "wechatpay":
            self.wechat.hold()
        else:
            self.alipay.hold_notifications()

    def release_notifications(self, provider: str) -> None:
        if provider == "wechatpay":
            self.wechat.release()
        else:
            self.alipay.release_notifications()

    def payment_notification(self, provider: str, out_trade_no: str) -> str:
        """The id of the provider's notification of this trade's payment."""
        if provider == "wechatpay":
            found = [
                n.event_id
                for n in self.wechat.notifications.values()
                if n.out_trade_no == out_trade_no and n.event_type == "TRANSACTION.SUCCESS"
            ]
        else:
            found = [
                d.notify_id for d in self.alipay.deliveries_for(out_trade_no) if d.kind == "payment"
            ]
        assert len(found) == 1, found
        return found[0]

    def signed_notification(self, provider: str, event_id: str) -> tuple[dict[str, str], bytes]:
        """The headers and body the provider posts for this notification."""
        if provider == "wechatpay":
            return self.wechat.notification_for(event_id)
        delivery = next(d for d in self.alipay.deliveries if d.notify_id == event_id)
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, delivery.body

    def send_again(self, provider: str, event_id: str) -> None:
        if provider == "wechatpay":
            self.wechat.redeliver(event_id)
        else:
            self.alipay.deliver_again(event_id)

    def answered(self, provider: str, event_id: str) -> list[str]:
        """yuyue's answer to each delivery of this notification: WeChat Pay reads the status
        code, Alipay the body."""
        if provider == "wechatpay":
            return [str(a.status_code) for a in self.wechat.attempts_for(event_id)]
        delivery = next(d for d in self.alipay.deliveries if d.notify_id == event_id)
        return [a.body for a in delivery.attempts]

    async def deliveries_reach(self, provider: str, event_id: str, count: int) -> None:
        async def reached() -> bool:
            return len(self.answered(provider, event_id)) >= count

        await eventually(reached)

    async def notify(self, provider: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        """Posts a notification to yuyue's notify route, as the provider would."""
        return await self.http.post(
            f"/api/v1/payments/{provider}/notify", content=body, headers=headers
        )

    # -- reading the database

    async def orders(self, appointment_id: str) -> list[PaymentOrder]:
        async with self.ctx.db.read() as s:
            return list(
                (
                    await s.scalars(
                        select(PaymentOrder)
                        .where(PaymentOrder.appointment_id == uuid.UUID(appointment_id))
                        .order_by(PaymentOrder.created_at, PaymentOrder.id)
                    )
                ).all()
            )

    async def paid_orders(self, appointment_id: str) -> int:
        return sum(
            1
            for o in await self.orders(appointment_id)
            if OrderState(o.state) is not OrderState.CREATED
            and OrderState(o.state) is not OrderState.CLOSED
        )

    async def refunds(self, appointment_id: str) -> list[Refund]:
        async with self.ctx.db.read() as s:
            return list(
                (
                    await s.scalars(
                        select(Refund).where(Refund.appointment_id == uuid.UUID(appointment_id))
                    )
                ).all()
            )

    async def appointment(self, appointment_id: str) -> Appointment:
        async with self.ctx.db.read() as s:
            found = await s.get(Appointment, uuid.UUID(appointment_id))
        assert found is not None
        return found

    async def messages(self, appointment_id: str) -> list[str]:
        """The kinds of message the patient was sent about this appointment, oldest first."""
        async with self.ctx.db.read() as s:
            return list(
                (
                    await s.scalars(
                        select(OutboxMessage.kind)
                        .where(OutboxMessage.appointment_id == uuid.UUID(appointment_id))
                        .order_by(OutboxMessage.created_at, OutboxMessage.id)
                    )
                ).all()
            )

    async def count(self, model: Any, *conditions: Any) -> int:
        async with self.ctx.db.read() as s:
            return int(
                await s.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
            )


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, pause: float = 0.05
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(pause)


def server_database(db: Database, connect_args: dict[str, Any]) -> Database:
    """A second `Database` on the test's database, for the served app's own event loop."""
    return Database(db.url, pool_size=12, connect_args=connect_args or None)


@asynccontextmanager
async def live_yuyue(
    *, db: Database, connect_args: dict[str, Any], keys: ProviderKeys, tmp_path: Path
) -> AsyncIterator[Live]:
    """yuyue on a free port with simulated payments, a hospital with a fee level, and an
    app key. The clock stands at the real time (the simulators and the adapters' replay
    windows read the real time) and moves only when the test moves it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        secret_file=tmp_path / "secret",
        worker_in_process=False,
        payments_simulated=True,
        public_base_url=base_url,
    )
    keys.place(settings.secret_file.parent / "payments-sim")
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    served = server_database(db, connect_args)
    app = create_app(settings, clock=clock, database=served, run_worker=False)
    wechat = wechatpay_simulator_of(mounted(app, WECHATPAY_PREFIX))
    alipay = simulator_of(mounted(app, ALIPAY_PREFIX))
    wechat.retry_intervals = FAST_RETRIES
    alipay.retry_schedule = FAST_RETRIES
    # `create_app` pointed the settings at the simulators: this context's gateways (the
    # jobs') reach the same ones, through the served port.
    ctx = AppContext.build(settings, clock=clock, db=db)
    now = clock.now()
    async with db.session_scope() as s:
        hospital = await f.make_hospital(s, now=now)
        department = await f.make_department(s, hospital=hospital)
        level = await f.make_level(s, hospital=hospital, code="chief", fee_fen=FEE)
        doctor = await f.make_doctor(s, hospital=hospital, department=department, level=level)
        api_key = await f.make_api_key(s, hospital=hospital, now=now)
    visit_day = local_today(now, "Asia/Shanghai") + timedelta(days=3)
    try:
        with serve_asgi(disposing(app, served), port=port):
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                yield Live(
                    base_url=base_url,
                    http=http,
                    ctx=ctx,
                    clock=clock,
                    wechat=wechat,
                    alipay=alipay,
                    hospital=hospital,
                    department=department,
                    level=level,
                    doctor=doctor,
                    api_key=api_key,
                    visit_day=visit_day,
                )
    finally:
        wechat.close()
        alipay.stop()
        await ctx.live.close()
