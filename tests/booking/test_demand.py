"""Booking attempts for the demand heat map: counted in memory on the booking POST (the
route and the fast path in front of it), added to `booking_demand` by flushes that never
lose a count and never write one twice, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.booking.test_api import app_only_session, book
from tests.conftest import NOW, SECRET, World
from tests.helpers import assert_problem
from yuyue.booking import demand
from yuyue.booking.demand import BOOKED, SOLD_OUT, CounterKey, DemandCounter
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
from yuyue.kit.db import Database
from yuyue.kit.observability import REFUSALS
from yuyue.web.app import create_app
from yuyue.web.context import AppContext

# NOW is 2026-11-20 02:00 UTC: 10:00 on the hospital's clock (Asia/Shanghai, UTC+8).
TODAY = date(2026, 11, 20)


async def written(
    ctx: AppContext, world: World, *sessions: uuid.UUID
) -> dict[tuple[Any, ...], int]:
    """(session, channel, day, hour, outcome) → attempts in booking_demand."""
    async with ctx.db.read() as session:
        rows = await demand.session_attempts(
            session,
            hospital_id=world.hospital.id,
            session_ids=list(sessions or (world.session.id,)),
        )
    return {(r.session_id, r.channel, r.day, r.hour, r.outcome): r.attempts for r in rows}


def outcomes(pending: Mapping[CounterKey, int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for key, n in pending.items():
        found[key[4]] = found.get(key[4], 0) + n
    return found


class TestCounter:
    def test_each_attempt_is_one_more_in_its_quarter_hour(self) -> None:
        counter = DemandCounter()
        hospital, clinic = uuid.uuid4(), uuid.uuid4()
        for minutes in (0, 5, 14, 15):
            counter.count(hospital, clinic, "app", SOLD_OUT, NOW + timedelta(minutes=minutes))
        counter.count(hospital, clinic, "wechat", BOOKED, NOW)
        quarter = int(NOW.timestamp()) // demand.QUARTER
        h, s = hospital.int, clinic.int
        assert counter.pending() == {
            (h, s, "app", quarter, SOLD_OUT): 3,
            (h, s, "app", quarter + 1, SOLD_OUT): 1,
            (h, s, "wechat", quarter, BOOKED): 1,
        }

    def test_only_a_booking_rules_refusals_are_counted(self) -> None:
        from yuyue.booking import rules
        from yuyue.kit.errors import NotFound, ValidationFailed

        assert demand.refusal_outcome(rules.SoldOut()) == "sold_out"
        assert demand.refusal_outcome(rules.LimitExceeded()) == "limit_exceeded"
        assert demand.refusal_outcome(rules.BookingClosed()) == "booking_closed"
        assert demand.refusal_outcome(rules.Blacklisted()) == "blacklisted"
        assert demand.refusal_outcome(NotFound()) is None
        assert demand.refusal_outcome(ValidationFailed()) is None


class TestFlush:
    async def test_a_flush_adds_the_counts_per_local_hour_and_empties_the_counter(
        self, ctx: AppContext, world: World
    ) -> None:
        counter = DemandCounter()
        h, s = world.hospital.id, world.session.id
        counter.count(h, s, "app", BOOKED, NOW)  # 10:00 local
        counter.count(h, s, "app", SOLD_OUT, NOW + timedelta(minutes=20))  # 10:20
        counter.count(h, s, "app", SOLD_OUT, NOW + timedelta(minutes=59))  # 10:59
        counter.count(h, s, "app", SOLD_OUT, NOW + timedelta(minutes=60))  # 11:00
        counter.count(h, s, "wechat", "limit_exceeded", NOW - timedelta(hours=10))  # 00:00
        counter.count(h, s, "wechat", "limit_exceeded", NOW - timedelta(hours=10, seconds=1))
        assert await counter.flush(ctx.db) == 6
        assert counter.pending() == {}
        assert await written(ctx, world) == {
            (s, "app", TODAY, 10, BOOKED): 1,
            (s, "app", TODAY, 10, SOLD_OUT): 2,
            (s, "app", TODAY, 11, SOLD_OUT): 1,
            (s, "wechat", TODAY, 0, "limit_exceeded"): 1,
            # One second earlier is the day before on the hospital's clock.
            (s, "wechat", TODAY - timedelta(days=1), 23, "limit_exceeded"): 1,
        }
        assert await counter.flush(ctx.db) == 0

    async def test_several_flushes_add_up(self, ctx: AppContext, world: World) -> None:
        counter = DemandCounter()
        h, s = world.hospital.id, world.session.id
        for round_ in range(3):
            for _ in range(round_ + 1):
                counter.count(h, s, "app", SOLD_OUT, NOW)
            assert await counter.flush(ctx.db) == round_ + 1
        assert await written(ctx, world) == {(s, "app", TODAY, 10, SOLD_OUT): 6}

    async def test_a_failed_flush_keeps_every_count_and_the_retry_writes_them_once(
        self, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        counter = DemandCounter()
        h, s = world.hospital.id, world.session.id
        counter.count(h, s, "app", BOOKED, NOW)
        assert await counter.flush(ctx.db) == 1
        counter.count(h, s, "app", BOOKED, NOW)
        counter.count(h, s, "app", SOLD_OUT, NOW)
        before = counter.pending()
        add = demand.add_attempts

        async def written_then_failed(session: AsyncSession, counts: Any) -> None:
            await add(session, counts)  # the rows are in the transaction…
            raise ConnectionError("the database went away")  # …which rolls back

        monkeypatch.setattr(demand, "add_attempts", written_then_failed)
        with pytest.raises(ConnectionError):
            await counter.flush(ctx.db)
        await counter.flush_quietly(ctx.db)  # the periodic flush logs and carries on
        assert counter.pending() == before
        assert await written(ctx, world) == {(s, "app", TODAY, 10, BOOKED): 1}

        monkeypatch.setattr(demand, "add_attempts", add)
        assert await counter.flush(ctx.db) == 2
        assert counter.pending() == {}
        assert await written(ctx, world) == {
            (s, "app", TODAY, 10, BOOKED): 2,
            (s, "app", TODAY, 10, SOLD_OUT): 1,
        }

    async def test_attempts_counted_during_a_flush_wait_for_the_next(
        self, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        counter = DemandCounter()
        h, s = world.hospital.id, world.session.id
        counter.count(h, s, "app", SOLD_OUT, NOW)
        add = demand.add_attempts

        async def meanwhile(session: AsyncSession, counts: Any) -> None:
            await add(session, counts)
            # Requests answered while the flush waits for the database.
            counter.count(h, s, "app", SOLD_OUT, NOW)
            counter.count(h, s, "app", BOOKED, NOW)

        monkeypatch.setattr(demand, "add_attempts", meanwhile)
        assert await counter.flush(ctx.db) == 1
        assert outcomes(counter.pending()) == {SOLD_OUT: 1, BOOKED: 1}
        assert await written(ctx, world) == {(s, "app", TODAY, 10, SOLD_OUT): 1}
        monkeypatch.setattr(demand, "add_attempts", add)
        assert await counter.flush(ctx.db) == 2
        assert await written(ctx, world) == {
            (s, "app", TODAY, 10, SOLD_OUT): 2,
            (s, "app", TODAY, 10, BOOKED): 1,
        }

    async def test_two_processes_add_their_own_counts_to_one_table(
        self, ctx: AppContext, world: World
    ) -> None:
        first, second = DemandCounter(), DemandCounter()
        h, s = world.hospital.id, world.session.id
        for _ in range(3):
            first.count(h, s, "app", SOLD_OUT, NOW)
        for _ in range(4):
            second.count(h, s, "app", SOLD_OUT, NOW + timedelta(minutes=30))
        second.count(h, s, "kiosk", BOOKED, NOW)
        assert await first.flush(ctx.db) == 3
        assert await second.flush(ctx.db) == 5
        first.count(h, s, "app", SOLD_OUT, NOW)
        assert await first.flush(ctx.db) == 1
        assert await written(ctx, world) == {
            (s, "app", TODAY, 10, SOLD_OUT): 8,
            (s, "kiosk", TODAY, 10, BOOKED): 1,
        }

    async def test_two_processes_flushing_at_once_both_add(
        self, ctx: AppContext, world: World
    ) -> None:
        first, second = DemandCounter(), DemandCounter()
        sessions = [uuid.uuid4() for _ in range(40)]
        for clinic in sessions:
            first.count(world.hospital.id, clinic, "app", SOLD_OUT, NOW)
        for clinic in reversed(sessions):  # the same rows, counted in the other order
            second.count(world.hospital.id, clinic, "app", SOLD_OUT, NOW)
            second.count(world.hospital.id, clinic, "app", SOLD_OUT, NOW)
        assert await asyncio.gather(first.flush(ctx.db), second.flush(ctx.db)) == [40, 80]
        found = await written(ctx, world, *sessions)
        assert found == {(clinic, "app", TODAY, 10, SOLD_OUT): 3 for clinic in sessions}

    async def test_serving_ends_with_a_last_flush(self, db: Database, world: World) -> None:
        settings = Settings(database_url=db.url, secret_key=SECRET, worker_in_process=False)
        app = create_app(settings, clock=FixedClock(NOW), database=db, run_worker=False)
        async with app.router.lifespan_context(app):
            serving: AppContext = app.state.ctx
            serving.demand.count(world.hospital.id, world.session.id, "app", SOLD_OUT, NOW)
        assert serving.demand.pending() == {}
        async with db.read() as session:
            rows = await demand.session_attempts(
                session, hospital_id=world.hospital.id, session_ids=[world.session.id]
            )
        assert [(r.outcome, r.attempts) for r in rows] == [(SOLD_OUT, 1)]

    async def test_the_server_flushes_periodically(self, ctx: AppContext, world: World) -> None:
        counter = DemandCounter()
        counter.count(world.hospital.id, world.session.id, "app", BOOKED, NOW)
        counter.start(ctx.db, every=0.01)
        try:
            for _ in range(300):
                if not counter.pending():
                    break
                await _sleep()
        finally:
            await counter.stop(ctx.db)
        assert await written(ctx, world) == {(world.session.id, "app", TODAY, 10, BOOKED): 1}


async def _sleep() -> None:
    await asyncio.sleep(0.01)


def _sold_out_refusals() -> float:
    return float(REFUSALS.labels("sold_out")._value.get())


class TestCountedOnTheBookingPath:
    async def test_booked_and_refused_attempts_are_counted_where_they_are_answered(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        clinic = await app_only_session(ctx, world, capacity=1)
        body = {"patient_id": str(world.patient.id), "session_id": str(clinic.id)}
        first = await client.post(
            "/api/v1/appointments", json=body, headers={**world.auth, "Idempotency-Key": "k1"}
        )
        assert first.status_code == 201, first.text
        assert outcomes(ctx.demand.pending()) == {BOOKED: 1}
        # The full path finds the session full and remembers it.
        assert_problem(
            await book(client, world, patient=world.other_patient, session=clinic), 409, "sold_out"
        )
        assert outcomes(ctx.demand.pending()) == {BOOKED: 1, SOLD_OUT: 1}
        # The next one is answered by the fast path, in front of the router, from memory.
        fast_before = _sold_out_refusals()
        fast = await book(client, world, patient=world.other_patient, session=clinic)
        assert_problem(fast, 409, "sold_out")
        assert _sold_out_refusals() == fast_before + 1
        assert outcomes(ctx.demand.pending()) == {BOOKED: 1, SOLD_OUT: 2}
        # A retry answered from its idempotency record is not another attempt; a request
        # the route rejects as malformed says nothing about demand.
        retry = await client.post(
            "/api/v1/appointments", json=body, headers={**world.auth, "Idempotency-Key": "k1"}
        )
        assert retry.headers["Idempotent-Replayed"] == "true"
        malformed = await client.post(
            "/api/v1/appointments", json={**body, "vip": True}, headers=world.auth
        )
        assert_problem(malformed, 422, "validation_error")
        # Another rule's refusal is counted under its code.
        assert_problem(await book(client, world), 409, "limit_exceeded")
        assert outcomes(ctx.demand.pending()) == {BOOKED: 1, SOLD_OUT: 2, "limit_exceeded": 1}

        assert await ctx.demand.flush(ctx.db) == 4
        assert await written(ctx, world, clinic.id, world.session.id) == {
            (clinic.id, "app", TODAY, 10, BOOKED): 1,
            (clinic.id, "app", TODAY, 10, SOLD_OUT): 2,
            (world.session.id, "app", TODAY, 10, "limit_exceeded"): 1,
        }
