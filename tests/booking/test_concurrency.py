"""Hundreds of simultaneous attempts over HTTP; exact counts, on SQLite and PostgreSQL.

A process lets one booking transaction per session run at a time (`kit.turns`); several
processes still race in the database. So the release-peak test runs both ways: in line,
and with the turns opened wide, where on PostgreSQL every request has its own connection
and transaction and the claims truly race inside the database (on SQLite they queue on
the single writer).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from yuyue.booking import service
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.kit.turns import Turns
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import PoolRatio, SlotPool
from yuyue.web.context import AppContext


async def _all_places_for_app(ctx: AppContext, world: World) -> None:
    async with ctx.db.session_scope() as s:
        await s.execute(delete(PoolRatio).where(PoolRatio.hospital_id == world.hospital.id))
        s.add(PoolRatio(hospital_id=world.hospital.id, pool="appointment", percent=100))


class TestReleasePeak:
    @pytest.mark.parametrize("turns", ["in_line", "racing_in_the_database"])
    async def test_400_patients_racing_for_25_places_book_exactly_25(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, turns: str
    ) -> None:
        if turns == "racing_in_the_database":
            ctx.booking_turns = Turns(width=1000)
        await _all_places_for_app(ctx, world)
        async with ctx.db.session_scope() as s:
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
                capacity=25,
                now=NOW,
            )
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(400)
            ]

        async def attempt(patient_id: str) -> httpx.Response:
            return await client.post(
                "/api/v1/appointments",
                json={"patient_id": patient_id, "session_id": str(clinic.id)},
                headers=world.auth,
            )

        answers = await asyncio.gather(*[attempt(str(p.id)) for p in patients])
        statuses = Counter(a.status_code for a in answers)
        assert statuses == {201: 25, 409: 375}, statuses
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"sold_out"}
        numbers = sorted(a.json()["sequence_number"] for a in answers if a.status_code == 201)
        assert numbers == list(range(1, 26))
        async with ctx.db.read() as s:
            taken = await s.scalar(
                select(func.sum(SlotPool.taken)).where(SlotPool.session_id == clinic.id)
            )
            rows = await s.scalar(
                select(func.count()).where(
                    Appointment.session_id == clinic.id, Appointment.status.in_(ACTIVE_STATUSES)
                )
            )
            over = await s.scalar(select(func.count()).where(SlotPool.taken > SlotPool.capacity))
        assert taken == 25 and rows == 25 and over == 0

    async def test_bookings_committed_together_are_each_kept_exactly_once(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await _all_places_for_app(ctx, world)
        if ctx.booking_group is not None:
            # One group in flight at a time, so that the others wait and travel together.
            ctx.booking_group._width = 1
        async with ctx.db.session_scope() as s:
            sessions = [
                await f.make_session(
                    s,
                    hospital=world.hospital,
                    department=world.department,
                    level=world.free_level,
                    doctor=world.doctor,
                    day=VISIT_DAY + timedelta(days=offset),
                    period=period,
                    start=start,
                    end=end,
                    capacity=10,
                    now=NOW,
                )
                for offset in range(3)
                for period, start, end in (
                    (Period.MORNING, time(8, 0), time(12, 0)),
                    (Period.AFTERNOON, time(13, 30), time(17, 30)),
                )
            ]
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(48)
            ]
        answers = await asyncio.gather(
            *[
                client.post(
                    "/api/v1/appointments",
                    json={
                        "patient_id": str(p.id),
                        "session_id": str(sessions[i % len(sessions)].id),
                    },
                    headers={**world.auth, "Idempotency-Key": f"together-{i}"},
                )
                for i, p in enumerate(patients)
            ]
        )
        assert [a.status_code for a in answers] == [201] * 48, [a.text for a in answers[:3]]
        if ctx.booking_group is not None:
            assert ctx.booking_group.grouped > 0 and ctx.booking_group.abandoned == 0
        ids = [a.json()["id"] for a in answers]
        async with ctx.db.read() as s:
            kept = (
                await s.scalars(
                    select(Appointment.id).where(
                        Appointment.session_id.in_([c.id for c in sessions]),
                        Appointment.status.in_(ACTIVE_STATUSES),
                    )
                )
            ).all()
            taken = await s.scalar(
                select(func.sum(SlotPool.taken)).where(
                    SlotPool.session_id.in_([c.id for c in sessions])
                )
            )
        assert sorted(str(i) for i in kept) == sorted(ids) and taken == 48
        # Every answer is kept with its booking: a retry gets the same appointment.
        again = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(patients[5].id), "session_id": str(sessions[5].id)},
            headers={**world.auth, "Idempotency-Key": "together-5"},
        )
        assert again.status_code == 201 and again.json()["id"] == ids[5]


class TestOnePatientMany:
    async def test_the_losers_of_a_sell_out_wait_in_line_not_in_the_database(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        await _all_places_for_app(ctx, world)
        async with ctx.db.session_scope() as s:
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
                capacity=3,
                now=NOW,
            )
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(60)
            ]
        transactions = 0
        book_on_lane = service.book_on_lane

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal transactions
            transactions += 1
            return await book_on_lane(*args, **kwargs)

        monkeypatch.setattr(service, "book_on_lane", counted)
        answers = await asyncio.gather(
            *[
                client.post(
                    "/api/v1/appointments",
                    json={"patient_id": str(p.id), "session_id": str(clinic.id)},
                    headers=world.auth,
                )
                for p in patients
            ]
        )
        assert Counter(a.status_code for a in answers) == {201: 3, 409: 57}
        # Three winners and the one that found the session full; the other 56 were
        # answered from memory once it was known, without a transaction of their own.
        assert transactions == 4
        assert ctx.booking_turns.holders(clinic.id) == 0
        assert ctx.booking_turns.waiting(clinic.id) == 0

    async def test_50_simultaneous_attempts_by_one_patient_respect_the_daily_limit(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await _all_places_for_app(ctx, world)
        sessions = []
        async with ctx.db.session_scope() as s:
            for i in range(50):
                department = await f.make_department(s, hospital=world.hospital, name=f"科室{i}")
                sessions.append(
                    await f.make_session(
                        s,
                        hospital=world.hospital,
                        department=department,
                        level=world.free_level,
                        day=VISIT_DAY,
                        capacity=5,
                        now=NOW,
                    )
                )

        answers = await asyncio.gather(
            *[
                client.post(
                    "/api/v1/appointments",
                    json={"patient_id": str(world.patient.id), "session_id": str(c.id)},
                    headers=world.auth,
                )
                for c in sessions
            ]
        )
        statuses = Counter(a.status_code for a in answers)
        # The default policy allows two bookings per patient per day.
        assert statuses == {201: 2, 409: 48}, statuses
        assert {a.json()["limit"] for a in answers if a.status_code == 409} == {"per_day"}
        async with ctx.db.read() as s:
            active = await s.scalar(
                select(func.count()).where(
                    Appointment.patient_id == world.patient.id,
                    Appointment.status.in_(ACTIVE_STATUSES),
                )
            )
        assert active == 2

    async def test_50_attempts_over_a_week_respect_the_7_day_limit(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await _all_places_for_app(ctx, world)
        sessions = []
        async with ctx.db.session_scope() as s:
            for i in range(50):
                department = await f.make_department(s, hospital=world.hospital, name=f"科室{i}")
                sessions.append(
                    await f.make_session(
                        s,
                        hospital=world.hospital,
                        department=department,
                        level=world.free_level,
                        day=VISIT_DAY + timedelta(days=i % 4),
                        capacity=5,
                        now=NOW,
                    )
                )
        answers = await asyncio.gather(
            *[
                client.post(
                    "/api/v1/appointments",
                    json={"patient_id": str(world.patient.id), "session_id": str(c.id)},
                    headers=world.auth,
                )
                for c in sessions
            ]
        )
        booked = [a for a in answers if a.status_code == 201]
        # 3 within 7 days (and 3 active) is the tightest limit over four days.
        assert len(booked) == 3
        assert all(a.status_code in (201, 409) for a in answers)
