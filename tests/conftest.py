"""Shared fixtures. Every database test runs on SQLite and on PostgreSQL; both databases
are built with `alembic upgrade head`, so the migrations are tested too.

PostgreSQL comes from YUYUE_TEST_POSTGRES_URL (default: the local server, database `test`);
each run works in a schema of its own. Without a reachable server the PostgreSQL half is
skipped, except under CI=true, where it must run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from sqlalchemy import text

from tests import factories as f
from yuyue.config import Settings
from yuyue.kit import crypto, migrate
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import generate_master_secret
from yuyue.kit.db import Database
from yuyue.models import Base
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import (
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    RegistrationLevel,
)
from yuyue.web.app import create_app
from yuyue.web.context import AppContext


def _cheap_password_hashing() -> None:
    """argon2id at its production cost (64 MiB, three passes) is made to be slow, and
    hundreds of tests create and sign in staff. Tests hash with the same algorithm at the
    smallest cost; what is checked (right, wrong, unknown user) does not depend on it."""
    crypto._PASSWORDS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # type: ignore[misc]


def _share_route_state_between_apps() -> None:
    """Every test builds its own app, and FastAPI builds an included route's state (its
    dependency tree and validators) lazily per app, at the first request: most of a short
    test's time. The routes are the same module-level objects in every app and no test
    overrides a dependency, so each route's state is built once and reused. Without this
    private hook (a FastAPI upgrade may remove it) the tests are only slower."""
    context: Any = getattr(fastapi_routing, "_EffectiveRouteContext", None)
    build = getattr(context, "from_api_route", None)
    if context is None or build is None:
        return
    built: dict[tuple[int, str, int], Any] = {}

    def from_api_route(*, original_route: Any, include_context: Any) -> Any:
        key = (id(original_route), include_context.prefix, id(include_context.included_router))
        if key not in built:
            built[key] = build(original_route=original_route, include_context=include_context)
        return built[key]

    context.from_api_route = from_api_route


_cheap_password_hashing()
_share_route_state_between_apps()

PG_URL = os.environ.get(
    "YUYUE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
SECRET = generate_master_secret()
# Friday 2026-11-20 10:00 in Shanghai: Monday 2026-11-23 is inside the 7-day window.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
VISIT_DAY = date(2026, 11, 23)


@dataclass(frozen=True)
class DatabaseTemplate:
    kind: str
    location: str
    connect_args: dict[str, Any]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session")
async def database_template(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseTemplate]:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "template.db"
        await migrate.upgrade(f"sqlite+aiosqlite:///{path}")
        yield DatabaseTemplate("sqlite", str(path), {})
        return
    plain = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        admin = await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        if IN_CI:
            raise RuntimeError(f"CI=true but PostgreSQL is not reachable: {error}") from error
        pytest.skip(f"PostgreSQL not reachable ({error})")
    schema = f"yuyue_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    connect_args = {"server_settings": {"search_path": schema}}
    try:
        await migrate.upgrade(PG_URL, connect_args=connect_args)
        yield DatabaseTemplate("postgresql", schema, connect_args)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest_asyncio.fixture
async def db(database_template: DatabaseTemplate, tmp_path: Path) -> AsyncIterator[Database]:
    if database_template.kind == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(database_template.location, path)
        database = Database(f"sqlite+aiosqlite:///{path}")
        yield database
        await database.dispose()
        return
    database = Database(PG_URL, connect_args=database_template.connect_args, pool_size=15)
    try:
        yield database
    finally:
        # DELETE, children first: a test leaves a few rows, and TRUNCATE of every table costs
        # a third of a second (new files for each) where DELETE of a few rows costs 3 ms.
        # A test that loads months of a hospital (the demo's history) leaves tens of
        # thousands of appointments, and DELETE checks each row's foreign keys one by one
        # (an appointment may point at the one it was moved from: minutes); one TRUNCATE of
        # every table at once checks nothing.
        async with database.session_scope() as session:
            tables = list(reversed(Base.metadata.sorted_tables))
            leftover = await session.scalar(
                text('SELECT count(*) FROM (SELECT 1 FROM "appointment" LIMIT 1001) AS t')
            )
            if leftover and leftover > 1000:
                await session.execute(
                    text("TRUNCATE " + ", ".join(f'"{table.name}"' for table in tables))
                )
            else:
                for table in tables:
                    await session.execute(text(f'DELETE FROM "{table.name}"'))
        await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest_asyncio.fixture
async def app(db: Database, clock: FixedClock) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=db.url, secret_key=SECRET, worker_in_process=False)
    application = create_app(settings, clock=clock, database=db, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass
class World:
    """A small hospital: one department, a free level and a fee level, one doctor with a
    25-place morning session on VISIT_DAY, two patients registered through the app and an
    app key."""

    hospital: Hospital
    department: Department
    free_level: RegistrationLevel
    fee_level: RegistrationLevel
    doctor: Doctor
    session: ClinicSession
    patient: Patient
    other_patient: Patient
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest_asyncio.fixture
async def world(ctx: AppContext) -> World:
    return await build_world(ctx)


async def build_world(ctx: AppContext) -> World:
    async with ctx.db.session_scope() as s:
        hospital = await f.make_hospital(s, now=NOW)
        department = await f.make_department(s, hospital=hospital)
        free_level = await f.make_level(s, hospital=hospital, fee_fen=0)
        fee_level = await f.make_level(s, hospital=hospital, code="chief", fee_fen=8000)
        doctor = await f.make_doctor(s, hospital=hospital, department=department, level=free_level)
        clinic = await f.make_session(
            s,
            hospital=hospital,
            department=department,
            level=free_level,
            doctor=doctor,
            day=VISIT_DAY,
            now=NOW,
        )
        # Registered through the app, whose key the world holds: the key may read them.
        patient = await f.make_patient(
            s, hospital=hospital, cipher=ctx.cipher, now=NOW, through=Channel.APP
        )
        other = await f.make_patient(
            s, hospital=hospital, cipher=ctx.cipher, now=NOW, name="李四", through=Channel.APP
        )
        key = await f.make_api_key(s, hospital=hospital, channel=Channel.APP, now=NOW)
    return World(hospital, department, free_level, fee_level, doctor, clinic, patient, other, key)
