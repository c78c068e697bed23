"""Two application nodes: two `yuyue serve` processes on free ports, one database and one
Redis, as behind a load balancer. On PostgreSQL and on SQLite (one file, two processes).

What must hold across the nodes: exact counts when both take bookings for the same
places; a sell-out learned on one node answered from memory on the other (observed by
locking the database: a node that went to the database could not answer at all); a retry
on the other node still gets its first answer; a place cancelled on one node can be booked
on the other at once, and shows in the other's session and slot lists at once; a queue
event reaches a waiting-room screen served by the other node; and the sign-in code limits
count requests made on either node.

The servers keep a "sold out" answer for a minute here, so a node that was not told of a
returned place would refuse it for that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

import yuyue
from tests import factories as f
from tests.conftest import IN_CI, PG_URL, SECRET
from tests.redis_support import flushed_redis
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.frontdesk.web import KIOSK_COOKIE
from yuyue.kit import migrate
from yuyue.kit.crypto import FieldCipher, load_master_secret
from yuyue.kit.db import Database
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import Department, Hospital, RegistrationLevel, SlotPool
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.visits import service as visits_service

TZ = ZoneInfo("Asia/Shanghai")
SRC = Path(yuyue.__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TZ).astimezone(UTC)


@dataclass
class Node:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Deployment:
    kind: str
    database_url: str
    sqlite_path: Path | None
    db: Database
    cipher: FieldCipher
    hospital: Hospital
    department: Department
    level_id: uuid.UUID
    api_key: str
    kiosk_key: str
    nurse: str
    a: Node
    b: Node
    http: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def booking_day(self) -> date:
        # Inside the 7-day release window and before any cut-off, whatever the hour.
        return datetime.now(TZ).date() + timedelta(days=3)

    async def clinic(self, *, capacity: int, day: date | None = None) -> uuid.UUID:
        """A session of a doctor of its own (so alternatives stay this test's)."""
        async with self.db.session_scope() as s:
            level = await s.get(RegistrationLevel, self.level_id)
            assert level is not None
            doctor = await f.make_doctor(
                s, hospital=self.hospital, department=self.department, level=level
            )
            clinic = await f.make_session(
                s,
                hospital=self.hospital,
                department=self.department,
                level=level,
                doctor=doctor,
                day=day or self.booking_day,
                period=Period.MORNING,
                start=time(8, 0),
                end=time(12, 0),
                capacity=capacity,
                now=datetime.now(UTC),
            )
            return clinic.id

    async def patients(self, count: int) -> list[uuid.UUID]:
        async with self.db.session_scope() as s:
            return [
                (
                    await f.make_patient(
                        s, hospital=self.hospital, cipher=self.cipher, now=datetime.now(UTC)
                    )
                ).id
                for _ in range(count)
            ]

    async def book(
        self, node: Node, patient: uuid.UUID, session: uuid.UUID, key: str | None = None
    ) -> httpx.Response:
        headers = {**self.auth, **({"Idempotency-Key": key} if key else {})}
        return await self.http.post(
            f"{node.url}/api/v1/appointments",
            json={"patient_id": str(patient), "session_id": str(session)},
            headers=headers,
        )

    @contextlib.contextmanager
    def _sqlite_lock(self) -> Iterator[None]:
        assert self.sqlite_path is not None
        connection = sqlite3.connect(self.sqlite_path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()

    @contextlib.asynccontextmanager
    async def places_locked(self) -> AsyncIterator[None]:
        """No one can read or claim a place meanwhile (PostgreSQL), or write at all
        (SQLite): a request that needs the database waits until the end of the block."""
        if self.kind == "sqlite":
            with self._sqlite_lock():
                yield
            return
        connection = await asyncpg.connect(_plain(self.database_url))
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE slot_pool IN ACCESS EXCLUSIVE MODE")
                yield
        finally:
            await connection.close()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _start(name: str, env: dict[str, str], folder: Path) -> Node:
    port = _free_port()
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yuyue.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Node(name, f"http://127.0.0.1:{port}", process, log)


async def _ready(node: Node, http: httpx.AsyncClient) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if node.process.poll() is not None:
            raise RuntimeError(f"node {node.name} exited:\n{node.output()}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"{node.url}/healthz")).status_code == 200:
                return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"node {node.name} did not start:\n{node.output()}")
        await asyncio.sleep(0.2)


def _stop(node: Node) -> None:
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGINT)
        try:
            node.process.wait(15)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(5)


async def _database(kind: str, folder: Path) -> tuple[str, Path | None, str | None]:
    """A database of this module's own: (url, SQLite path, PostgreSQL database to drop)."""
    if kind == "sqlite":
        path = folder / "nodes.db"
        return f"sqlite+aiosqlite:///{path}", path, None
    try:
        admin = await asyncpg.connect(_plain(PG_URL), timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if IN_CI:
            raise RuntimeError(f"CI=true but PostgreSQL is not reachable: {error}") from error
        pytest.skip(f"PostgreSQL not reachable ({error})")
    name = f"yuyue_nodes_{uuid.uuid4().hex[:10]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}", None, name


async def _drop(name: str) -> None:
    admin = await asyncpg.connect(_plain(PG_URL), timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="module", params=["sqlite", "postgresql"])
async def nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    redis_url = await flushed_redis()
    kind = str(request.param)
    folder = tmp_path_factory.mktemp(f"nodes-{kind}")
    url, sqlite_path, pg_name = await _database(kind, folder)
    db: Database | None = None
    started: list[Node] = []
    try:
        await migrate.upgrade(url)
        db = Database(url, pool_size=5)
        cipher = FieldCipher(load_master_secret(SECRET))
        now = datetime.now(UTC)
        async with db.session_scope() as s:
            hospital = await f.make_hospital(s, now=now, ratios={"appointment": 100})
            department = await f.make_department(s, hospital=hospital)
            level = await f.make_level(s, hospital=hospital, fee_fen=0)
            api_key = await f.make_api_key(s, hospital=hospital, now=now)
            kiosk_key = await f.make_api_key(s, hospital=hospital, channel=Channel.KIOSK, now=now)
            nurse = await f.make_staff(s, hospital=hospital, roles=[Role.NURSE], now=now)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "YUYUE_DATABASE_URL": url,
            "YUYUE_SECRET_KEY": SECRET,
            "YUYUE_REDIS_URL": redis_url,
            "YUYUE_HOSPITAL_CODE": hospital.code,
            "YUYUE_WORKER_IN_PROCESS": "false",
            "YUYUE_SOLD_OUT_CACHE_SECONDS": "60",
            "YUYUE_DB_POOL_SIZE": "10",
        }
        started.append(_start("a", env, folder))
        started.append(_start("b", env, folder))
        async with httpx.AsyncClient(timeout=30) as http:
            for node in started:
                await _ready(node, http)
            yield Deployment(
                kind,
                url,
                sqlite_path,
                db,
                cipher,
                hospital,
                department,
                level.id,
                api_key,
                kiosk_key,
                nurse,
                started[0],
                started[1],
                http,
            )
    finally:
        for node in started:
            _stop(node)
        if db is not None:
            await db.dispose()
        if pg_name is not None:
            await _drop(pg_name)


def _alternatives(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["code"] == "sold_out"
    alternatives: list[dict[str, Any]] = body["alternatives"]
    return alternatives


class TestTwoNodes:
    async def test_200_attempts_through_both_nodes_book_exactly_the_25_places(
        self, nodes: Deployment
    ) -> None:
        clinic = await nodes.clinic(capacity=25)
        patients = await nodes.patients(200)
        gate = asyncio.Semaphore(32)

        async def attempt(index: int, patient: uuid.UUID) -> httpx.Response:
            async with gate:
                node = nodes.a if index % 2 == 0 else nodes.b
                return await nodes.book(node, patient, clinic, key=f"peak-{patient}")

        answers = await asyncio.gather(*[attempt(i, p) for i, p in enumerate(patients)])
        assert Counter(a.status_code for a in answers) == {201: 25, 409: 175}
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"sold_out"}
        numbers = sorted(a.json()["sequence_number"] for a in answers if a.status_code == 201)
        assert numbers == list(range(1, 26))
        async with nodes.db.read() as s:
            taken = await s.scalar(
                select(func.sum(SlotPool.taken)).where(SlotPool.session_id == clinic)
            )
            active = await s.scalar(
                select(func.count()).where(
                    Appointment.session_id == clinic, Appointment.status.in_(ACTIVE_STATUSES)
                )
            )
            over = await s.scalar(select(func.count()).where(SlotPool.taken > SlotPool.capacity))
        assert taken == active == 25 and over == 0

    async def test_a_sell_out_learned_on_one_node_is_answered_from_memory_on_the_other(
        self, nodes: Deployment
    ) -> None:
        clinic = await nodes.clinic(capacity=1)
        await nodes.clinic(capacity=5, day=nodes.booking_day + timedelta(days=1))  # elsewhere
        first, second, third = await nodes.patients(3)
        assert (await nodes.book(nodes.a, first, clinic)).status_code == 201
        learned = _alternatives(await nodes.book(nodes.a, second, clinic))
        assert learned  # the other session is offered
        # B knows the caller (a read of the key table), before the places are locked.
        assert (
            await nodes.http.get(f"{nodes.b.url}/api/v1/departments", headers=nodes.auth)
        ).status_code == 200
        async with nodes.places_locked():
            # Had B gone to the database it would wait for the lock, or give up (503).
            answer = await asyncio.wait_for(
                nodes.book(nodes.b, third, clinic, key=f"fresh-{third}"), 10
            )
            assert _alternatives(answer) == learned

    async def test_a_retry_on_the_other_node_gets_the_first_answer_not_sold_out(
        self, nodes: Deployment
    ) -> None:
        clinic = await nodes.clinic(capacity=1)
        first, second, third = await nodes.patients(3)
        key = f"retry-{first}"
        booked = await nodes.book(nodes.a, first, clinic, key=key)
        assert booked.status_code == 201
        _alternatives(await nodes.book(nodes.a, second, clinic))
        _alternatives(await nodes.book(nodes.b, third, clinic))  # B holds "sold out" too
        retried = await nodes.book(nodes.b, first, clinic, key=key)
        assert retried.status_code == 201, retried.text
        assert retried.headers.get("Idempotent-Replayed") == "true"
        assert retried.json() == booked.json()

    async def test_a_place_cancelled_on_one_node_is_booked_on_the_other_at_once(
        self, nodes: Deployment
    ) -> None:
        clinic = await nodes.clinic(capacity=1)
        first, second, third = await nodes.patients(3)
        booked = await nodes.book(nodes.a, first, clinic)
        assert booked.status_code == 201
        _alternatives(await nodes.book(nodes.a, second, clinic))  # A remembers: sold out
        cancelled = await nodes.http.post(
            f"{nodes.b.url}/api/v1/appointments/{booked.json()['id']}/cancel",
            headers=nodes.auth,
        )
        assert cancelled.status_code == 200, cancelled.text
        again = await nodes.book(nodes.a, third, clinic)
        assert again.status_code == 201, again.text

    async def test_a_place_given_back_on_one_node_shows_in_the_other_nodes_lists_at_once(
        self, nodes: Deployment
    ) -> None:
        clinic = await nodes.clinic(capacity=1)
        (patient,) = await nodes.patients(1)
        booked = await nodes.book(nodes.a, patient, clinic)
        assert booked.status_code == 201

        async def on_b() -> tuple[int, int]:
            listed = await nodes.http.get(f"{nodes.b.url}/api/v1/sessions", headers=nodes.auth)
            slots = await nodes.http.get(
                f"{nodes.b.url}/api/v1/sessions/{clinic}/slots", headers=nodes.auth
            )
            session = next(s for s in listed.json() if s["id"] == str(clinic))
            return session["remaining"], sum(slot["remaining"] for slot in slots.json())

        assert await on_b() == (0, 0)  # B keeps these answers for up to a second
        cancelled = await nodes.http.post(
            f"{nodes.a.url}/api/v1/appointments/{booked.json()['id']}/cancel",
            headers=nodes.auth,
        )
        assert cancelled.status_code == 200, cancelled.text

        # A answered the cancel only once B was told: B's kept answers are gone.
        assert await on_b() == (1, 1)

    async def test_a_call_on_one_node_reaches_a_waiting_room_screen_on_the_other(
        self, nodes: Deployment
    ) -> None:
        today = datetime.now(TZ).date()
        clinic = await nodes.clinic(capacity=5, day=today)
        (patient,) = await nodes.patients(1)
        hospital = nodes.hospital.id
        app = Actor(hospital_id=hospital, kind=ActorKind.CHANNEL, id="app", channel=Channel.APP)
        desk = Actor(
            hospital_id=hospital,
            kind=ActorKind.STAFF,
            id="desk",
            channel=Channel.WINDOW,
            roles=frozenset({Role.NURSE}),
            name="护士",
        )
        # Booked the day before and checked in at 08:30, whatever the hour of this run.
        async with nodes.db.session_scope() as s:
            booked = await booking_service.book(
                s,
                actor=app,
                patient_id=patient,
                session_id=clinic,
                slot_id=None,
                now=_local(today - timedelta(days=1), time(10, 0)),
            )
        async with nodes.db.session_scope() as s:
            await visits_service.check_in(
                s, actor=desk, appointment_id=booked.appointment.id, now=_local(today, time(8, 30))
            )
        token = await nodes.http.post(
            f"{nodes.a.url}/api/v1/auth/token",
            json={
                "hospital": nodes.hospital.code,
                "username": nodes.nurse,
                "password": "secret-pass",
            },
        )
        assert token.status_code == 200, token.text
        nurse = {"Authorization": f"Bearer {token.json()['access_token']}"}

        screen = f"{nodes.b.url}/screens/{nodes.department.id}/live"
        async with nodes.http.stream(
            "GET", screen, cookies={KIOSK_COOKIE: nodes.kiosk_key}
        ) as stream:
            assert stream.status_code == 200
            events = _sse_events(stream)
            assert await asyncio.wait_for(anext(events), 10) == "state"  # subscribed
            called = await nodes.http.post(
                f"{nodes.a.url}/api/v1/sessions/{clinic}/call-next", headers=nurse
            )
            assert called.status_code == 200, called.text
            name = await asyncio.wait_for(anext(events), 10)
            assert name == "call"

    async def test_the_sign_in_code_limit_counts_requests_on_either_node(
        self, nodes: Deployment
    ) -> None:
        phone = f"138{uuid.uuid4().int % 10**8:08d}"
        first = await nodes.http.post(f"{nodes.a.url}/signin/code", data={"phone": phone})
        assert first.status_code == 200, first.text
        again = await nodes.http.post(f"{nodes.b.url}/signin/code", data={"phone": phone})
        assert again.status_code == 429


async def _sse_events(stream: httpx.Response) -> AsyncIterator[str]:
    """The names of the events of a Server-Sent Events stream, as they arrive."""
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            yield line.removeprefix("event: ")
