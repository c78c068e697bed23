"""Maintenance mode: new bookings are refused with the hospital's notice and nothing
changes, while check-in and the queue keep working; only administrators switch it; every
switch is audited; a retry of a booking made before still gets its answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.visits import support as v
from tests.visits.test_api import kiosk_auth
from yuyue.cli import app as cli
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import generate_master_secret
from yuyue.operations import service
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

NOTICE = {"message": "数据库升级，预计 30 分钟", "message_en": "database upgrade, about 30 minutes"}


def book_body(world: World, patient: object | None = None) -> dict[str, str]:
    return {
        "patient_id": str((patient or world.patient).id),  # type: ignore[attr-defined]
        "session_id": str(world.session.id),
    }


async def test_bookings_pause_with_the_notice_and_resume(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> None:
    admin = await staff_auth(client, ctx, world, Role.ADMIN)
    before = await client.post(
        "/api/v1/appointments",
        json=book_body(world),
        headers={**world.auth, "Idempotency-Key": "made-before"},
    )
    assert before.status_code == 201
    started = await client.put("/api/v1/maintenance", json=NOTICE, headers=admin)
    assert started.status_code == 200, started.text
    assert started.json()["active"] is True
    async with ctx.db.session_scope() as s:
        other = await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
    counts = await row_counts(ctx.db)
    refused = await client.post(
        "/api/v1/appointments", json=book_body(world, other), headers=world.auth
    )
    problem = assert_problem(refused, 503, "maintenance")
    assert "数据库升级" in problem["detail"] and "签到" in problem["detail"]
    english = await client.post(
        "/api/v1/appointments",
        json=book_body(world, other),
        headers={**world.auth, "Accept-Language": "en"},
    )
    assert "database upgrade" in assert_problem(english, 503, "maintenance")["detail"]
    assert await row_counts(ctx.db) == counts
    # The retry of a booking acknowledged before the pause gets its first answer.
    retry = await client.post(
        "/api/v1/appointments",
        json=book_body(world),
        headers={**world.auth, "Idempotency-Key": "made-before"},
    )
    assert retry.status_code == 201 and retry.json()["id"] == before.json()["id"]
    # Anyone signed in can read the notice (the pages and channel apps show it).
    seen = await client.get("/api/v1/maintenance", headers=world.auth)
    assert seen.json()["message"] == NOTICE["message"]
    ended = await client.delete("/api/v1/maintenance", headers=admin)
    assert ended.status_code == 200 and ended.json() == {
        "active": False,
        "message": None,
        "since": None,
        "started_by": None,
    }
    again = await client.post(
        "/api/v1/appointments", json=book_body(world, other), headers=world.auth
    )
    assert again.status_code == 201, again.text
    async with ctx.db.read() as s:
        actions = (
            await s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("maintenance%"))
                .order_by(AuditEntry.at)
            )
        ).all()
    assert list(actions) == ["maintenance_start", "maintenance_end"]


async def test_check_in_and_the_queue_keep_working(
    client: httpx.AsyncClient, ctx: AppContext, world: World, clock: FixedClock
) -> None:
    appointment = await v.book(ctx, world)
    admin = await staff_auth(client, ctx, world, Role.ADMIN)
    assert (await client.put("/api/v1/maintenance", json=NOTICE, headers=admin)).status_code == 200
    clock.set(v.local(7, 30))
    checked_in = await client.post(
        "/api/v1/check-ins",
        json={"token": v.token(ctx, appointment)},
        headers=await kiosk_auth(ctx, world),
    )
    assert checked_in.status_code == 201, checked_in.text
    assert checked_in.json()["ticket"]["queue_number"] == appointment.sequence_number


async def test_a_pause_started_in_another_process_is_seen_within_seconds(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> None:
    admin = await staff_auth(client, ctx, world, Role.ADMIN)
    assert (await client.put("/api/v1/maintenance", json=NOTICE, headers=admin)).status_code == 200
    service.forget(world.hospital.id)
    # Cold memory (another process started the pause): the route asks the database.
    refused = await client.post("/api/v1/appointments", json=book_body(world), headers=world.auth)
    assert_problem(refused, 503, "maintenance")


async def test_only_administrators_switch_it_and_the_notice_is_checked(
    client: httpx.AsyncClient, ctx: AppContext, world: World
) -> None:
    counts = await row_counts(ctx.db)
    registrar = await staff_auth(client, ctx, world, Role.REGISTRAR)
    assert_problem(
        await client.put("/api/v1/maintenance", json=NOTICE, headers=registrar), 403, "forbidden"
    )
    assert_problem(
        await client.put("/api/v1/maintenance", json=NOTICE, headers=world.auth), 403, "forbidden"
    )
    assert_problem(await client.put("/api/v1/maintenance", json=NOTICE), 401, "unauthorized")
    admin = await staff_auth(client, ctx, world, Role.ADMIN)
    counts = await row_counts(ctx.db)
    for bad in ({"message": "   "}, {"message": "长" * 301}, {}):
        answer = await client.put("/api/v1/maintenance", json=bad, headers=admin)
        assert_problem(answer, 422, "validation_error")
    assert await row_counts(ctx.db) == counts
    status = await client.get("/api/v1/maintenance", headers=admin)
    assert status.json()["active"] is False


def test_the_command_line_pauses_and_resumes_bookings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YUYUE_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("YUYUE_SECRET_KEY", generate_master_secret())
    runner = CliRunner()
    assert runner.invoke(cli, ["seed-demo"]).exit_code == 0
    assert "open" in runner.invoke(cli, ["maintenance", "status"]).output
    paused = runner.invoke(cli, ["maintenance", "on", "院区停电检修", "--en", "power works"])
    assert paused.exit_code == 0, paused.output
    status = runner.invoke(cli, ["maintenance", "status"]).output
    assert "院区停电检修" in status and "staff:command line:cli:" in status
    assert runner.invoke(cli, ["maintenance", "on", "   "]).exit_code == 2
    assert "resumed" in runner.invoke(cli, ["maintenance", "off"]).output
    assert "were not paused" in runner.invoke(cli, ["maintenance", "off"]).output


async def test_bookings_in_flight_ask_the_database_once_when_the_memory_goes_stale(
    ctx: AppContext, world: World
) -> None:
    """At the release peak every booking in flight finds the memory stale at the same
    moment; one of them asks, the others wait for its answer."""
    import asyncio
    from contextlib import asynccontextmanager

    asked = 0

    @asynccontextmanager
    async def counting_read():  # type: ignore[no-untyped-def]
        nonlocal asked
        asked += 1
        async with ctx.db.read() as session:
            await asyncio.sleep(0.05)
            yield session

    service.forget(world.hospital.id)
    await asyncio.gather(
        *(service.ensure_bookable(counting_read, hospital_id=world.hospital.id) for _ in range(20))
    )
    assert asked == 1


async def test_a_failed_look_up_leaves_the_others_to_ask_for_themselves(
    ctx: AppContext, world: World
) -> None:
    import asyncio
    from contextlib import asynccontextmanager

    calls = 0

    @asynccontextmanager
    async def failing_first():  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        first = calls == 1
        async with ctx.db.read() as session:
            await asyncio.sleep(0.05)
            if first:
                raise ConnectionError("database went away")
            yield session

    service.forget(world.hospital.id)
    results = await asyncio.gather(
        *(service.ensure_bookable(failing_first, hospital_id=world.hospital.id) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ConnectionError) for r in results) == 1
    assert results.count(None) == 4
