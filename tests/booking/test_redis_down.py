"""Booking with YUYUE_REDIS_URL pointing at a Redis that is not there: slower paths, the
same answers. Exact counts under concurrency, idempotent replays, a cancelled place that
can be booked at once, and one warning in the log for the whole outage."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import time

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import delete, func, select

from tests import factories as f
from tests.conftest import NOW, SECRET, VISIT_DAY, World
from tests.redis_support import closed_port_url
from yuyue.booking.availability import SharedKnownKeys, SharedSoldOut
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
from yuyue.kit.db import Database
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import PoolRatio, SlotPool
from yuyue.web.app import create_app
from yuyue.web.context import AppContext


@pytest_asyncio.fixture
async def app(db: Database, clock: FixedClock) -> AsyncIterator[FastAPI]:
    """The conftest's app, but configured for a Redis on a port where nothing listens."""
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        worker_in_process=False,
        redis_url=closed_port_url(),
    )
    application = create_app(settings, clock=clock, database=db, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


def _unreachable(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The outage warnings, from the start of serving (set-up) to the end of the test."""
    records = caplog.get_records("setup") + caplog.get_records("call")
    return [r.getMessage() for r in records if "unreachable" in r.getMessage()]


class TestRedisDown:
    async def test_bookings_stay_exact_and_retries_replay_without_redis(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        assert isinstance(ctx.sold_out, SharedSoldOut)  # configured for Redis...
        assert isinstance(ctx.known_keys, SharedKnownKeys)
        async with ctx.db.session_scope() as s:
            await s.execute(delete(PoolRatio).where(PoolRatio.hospital_id == world.hospital.id))
            s.add(PoolRatio(hospital_id=world.hospital.id, pool="appointment", percent=100))
            clinic = await f.make_session(
                s,
                hospital=world.hospital,
                department=world.department,
                level=world.free_level,
                doctor=world.doctor,
                day=VISIT_DAY,
                period=Period.AFTERNOON,
                start=time(13, 30),
                end=time(17, 30),
                capacity=10,
                now=NOW,
            )
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(30)
            ]

        def booking(patient_id: uuid.UUID) -> dict[str, str]:
            return {"patient_id": str(patient_id), "session_id": str(clinic.id)}

        async def attempt(patient_id: uuid.UUID) -> httpx.Response:
            return await client.post(
                "/api/v1/appointments",
                json=booking(patient_id),
                headers={**world.auth, "Idempotency-Key": f"first-{patient_id}"},
            )

        # ...which is not there: every piece falls back, and the counts stay exact.
        answers = await asyncio.gather(*[attempt(p.id) for p in patients])
        assert Counter(a.status_code for a in answers) == {201: 10, 409: 20}
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"sold_out"}

        # The session is sold out in this process's memory; a retry of a booking that
        # succeeded must still get that booking back, not "sold out".
        winner = next(p for p, a in zip(patients, answers, strict=True) if a.status_code == 201)
        replay = await attempt(winner.id)
        assert replay.status_code == 201
        assert replay.headers.get("Idempotent-Replayed") == "true"
        first = next(a for a in answers if a.json().get("id") == replay.json()["id"])
        assert replay.json() == first.json()
        loser = next(p for p, a in zip(patients, answers, strict=True) if a.status_code == 409)
        refused = await client.post(
            "/api/v1/appointments", json=booking(loser.id), headers=world.auth
        )
        assert refused.status_code == 409 and refused.json()["code"] == "sold_out"

        # A cancelled place is bookable at once (the local signal clears the memory).
        cancelled = await client.post(
            f"/api/v1/appointments/{replay.json()['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        again = await client.post(
            "/api/v1/appointments", json=booking(loser.id), headers=world.auth
        )
        assert again.status_code == 201, again.text

        async with ctx.db.read() as s:
            taken = await s.scalar(
                select(func.sum(SlotPool.taken)).where(SlotPool.session_id == clinic.id)
            )
            active = await s.scalar(
                select(func.count()).where(
                    Appointment.session_id == clinic.id, Appointment.status.in_(ACTIVE_STATUSES)
                )
            )
        assert taken == active == 10
        assert len(_unreachable(caplog)) == 1, _unreachable(caplog)
