"""kill -9 between recording a payment and answering its notification: yuyue runs as a real
process, WeChat Pay's notification reaches it through a proxy that waits until the order is
paid in the database, kills the server with SIGKILL and never relays the answer. The provider
retries (as WeChat Pay does), the restarted server answers, and the booking exists exactly
once. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import PG_URL, SECRET
from tests.payments.live import eventually, form_action
from tests.payments.serving import free_port, serve_asgi
from yuyue.booking.models import Appointment
from yuyue.kit import migrate
from yuyue.kit.crypto import FieldCipher, load_master_secret
from yuyue.kit.db import Database
from yuyue.kit.localtime import local_today
from yuyue.notifications.models import OutboxMessage
from yuyue.payments.models import PaymentAttempt, PaymentOrder
from yuyue.payments.simulators.wechatpay import (
    WechatPaySimulatorKeys,
    build_wechatpay_simulator,
    wechatpay_simulator_of,
)
from yuyue.payments.states import AttemptOutcome, OrderState

SRC = Path(__file__).resolve().parents[2] / "src"
# WeChat Pay's retries, compressed: enough of them to outlast a restart.
RETRIES = (0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 5.0, 5.0, 5.0, 10.0, 10.0)


@pytest_asyncio.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, migrated: another process connects to it by URL alone."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
        await migrate.upgrade(url)
        yield url
        return
    plain = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        admin = await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"PostgreSQL not reachable ({error})")
    name = f"yuyue_crash_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Server:
    """`python -m uvicorn yuyue.web.app:create_app --factory`, configured by environment."""

    def __init__(self, port: int, environment: dict[str, str], cwd: Path) -> None:
        self.port = port
        self.environment = environment
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "yuyue.web.app:create_app", "--factory"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
            ],
            env=self.environment,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "yuyue exited while starting"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).text == "ok":
                    return
            assert time.monotonic() < deadline, "yuyue did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class KillingProxy:
    """Relays HTTP requests to yuyue, one per connection. Armed, it forwards the request,
    waits until the database shows the order paid, kills yuyue and closes the connection
    without an answer: the provider saw the server die before it replied."""

    def __init__(self, upstream_port: int, server: Server, db: Database) -> None:
        self.upstream_port = upstream_port
        self.server = server
        self.db = db
        self.armed = True
        self.killed = asyncio.Event()
        self.relayed: list[bytes] = []

    async def _paid(self) -> bool:
        async with self.db.read() as s:
            return bool(
                await s.scalar(
                    select(func.count())
                    .select_from(PaymentOrder)
                    .where(PaymentOrder.state == OrderState.PAID)
                )
            )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
            except OSError:
                return  # yuyue is down: the provider's attempt fails
            up_writer.write(head + body)
            await up_writer.drain()
            if self.armed:
                self.armed = False
                await eventually(self._paid, within=20)
                await asyncio.to_thread(self.server.kill)
                self.killed.set()
                up_writer.close()
                return
            reply_head = await up_reader.readuntil(b"\r\n\r\n")
            reply_length = re.search(rb"(?im)^content-length:\s*(\d+)", reply_head)
            reply = reply_head + (
                await up_reader.readexactly(int(reply_length.group(1))) if reply_length else b""
            )
            self.relayed.append(reply)
            writer.write(reply)
            await writer.drain()
            up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def test_killed_between_recording_and_answering_books_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url, pool_size=4)
    now = datetime.now(UTC)
    cipher = FieldCipher(load_master_secret(SECRET))
    async with db.session_scope() as s:
        hospital = await f.make_hospital(s, now=now)
        department = await f.make_department(s, hospital=hospital)
        level = await f.make_level(s, hospital=hospital, code="chief", fee_fen=8000)
        doctor = await f.make_doctor(s, hospital=hospital, department=department, level=level)
        clinic = await f.make_session(
            s,
            hospital=hospital,
            department=department,
            level=level,
            doctor=doctor,
            day=local_today(now, "Asia/Shanghai") + timedelta(days=3),
            now=now,
        )
        patient = await f.make_patient(s, hospital=hospital, cipher=cipher, now=now)
        api_key = await f.make_api_key(s, hospital=hospital, now=now)
    auth = {"Authorization": f"Bearer {api_key}"}

    keys = WechatPaySimulatorKeys.generate()
    sim_port, yuyue_port = free_port(), free_port()
    simulator_app = build_wechatpay_simulator(
        keys=keys, retry_intervals=RETRIES, public_base_url=f"http://127.0.0.1:{sim_port}"
    )
    simulator = wechatpay_simulator_of(simulator_app)
    environment = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "YUYUE_DATABASE_URL": database_url,
        "YUYUE_SECRET_KEY": SECRET,
        "YUYUE_WORKER_IN_PROCESS": "false",
        "YUYUE_PAYMENT_PROVIDERS": '["wechatpay"]',
        "YUYUE_WECHATPAY_GATEWAY_URL": f"http://127.0.0.1:{sim_port}",
    }
    for name, value in keys.write_merchant_files(tmp_path / "wechatpay").items():
        environment[f"YUYUE_{name.upper()}"] = str(value)
    server = Server(yuyue_port, environment, tmp_path)
    proxy = KillingProxy(yuyue_port, server, db)
    listener = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy_port = listener.sockets[0].getsockname()[1]
    # The providers reach yuyue at its public URL: here, the proxy.
    environment["YUYUE_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{proxy_port}"
    try:
        with serve_asgi(simulator_app, port=sim_port):
            await asyncio.to_thread(server.start)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{yuyue_port}", timeout=30
            ) as http:
                held = await http.post(
                    "/api/v1/appointments",
                    json={"patient_id": str(patient.id), "session_id": str(clinic.id)},
                    headers=auth,
                )
                assert held.status_code == 201, held.text
                appointment_id = held.json()["id"]
                checkout = await http.post(
                    f"/api/v1/appointments/{appointment_id}/payments",
                    json={"provider": "wechatpay", "method": "h5"},
                    headers=auth,
                )
                assert checkout.status_code == 200, checkout.text
                async with httpx.AsyncClient() as browser:
                    page = await browser.get(checkout.json()["redirect_url"])
                    await browser.post(form_action(page.text))

            await asyncio.wait_for(proxy.killed.wait(), timeout=30)
            assert server.process is not None and server.process.returncode == -signal.SIGKILL
            await asyncio.to_thread(server.start)
            (event,) = list(simulator.notifications)

            async def answered() -> bool:
                return any(a.status_code == 200 for a in simulator.attempts_for(event))

            await eventually(answered, within=60, pause=0.2)

            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{yuyue_port}", timeout=30
            ) as http:
                shown = await http.get(f"/api/v1/appointments/{appointment_id}", headers=auth)
            assert shown.json()["status"] == "booked"
    finally:
        server.stop()
        listener.close()
        simulator.close()

    async with db.read() as s:
        appointments = (
            await s.scalars(select(Appointment.status).where(Appointment.patient_id == patient.id))
        ).all()
        orders = (await s.scalars(select(PaymentOrder.state))).all()
        confirmations = await s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.kind == "booking_confirmed")
        )
        outcomes = (
            await s.scalars(
                select(PaymentAttempt.outcome).where(PaymentAttempt.kind == "notification")
            )
        ).all()
    await db.dispose()
    assert list(appointments) == ["booked"]
    assert list(orders) == [OrderState.PAID]
    assert confirmations == 1
    # The first delivery was recorded (then its answer lost); the retries found it done.
    assert outcomes.count(AttemptOutcome.OK) == 1
    assert outcomes.count(AttemptOutcome.DUPLICATE) >= 1
    statuses = [a.status_code for a in simulator.attempts_for(event)]
    assert statuses[0] != 200 and statuses[-1] == 200
    assert proxy.relayed and proxy.relayed[-1].startswith(b"HTTP/1.1 200")
