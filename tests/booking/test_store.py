"""The hand-written booking write path (`booking.store` on `kit.sql`), on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.conftest import NOW, World
from yuyue.booking import service, store
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.kit.crypto import api_key_digest
from yuyue.kit.sql import Driver, HotLane, Statement, driver
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import SlotPool
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext


def _app(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id, kind=ActorKind.CHANNEL, id="test", channel=Channel.APP
    )


class Boom(Exception):
    pass


class TestDriver:
    async def test_driver_statements_roll_back_with_session(
        self, ctx: AppContext, world: World
    ) -> None:
        """Statements sent on the driver belong to the session's transaction: if the entry
        point rolls back, they are gone (fails if the driver ran outside the transaction)."""
        pool_id = (await _pools(ctx, world.session.id))[0]

        async def take_then_fail() -> None:
            async with ctx.db.session_scope() as s:
                db = await driver(s)
                await db.execute(
                    Statement("UPDATE slot_pool SET taken = taken + 1 WHERE id = $1"), pool_id
                )
                raise Boom()

        with pytest.raises(Boom):
            await take_then_fail()
        async with ctx.db.read() as s:
            taken = await s.scalar(select(SlotPool.taken).where(SlotPool.id == pool_id))
        assert taken == 0

    async def test_driver_sees_pending_orm_changes(self, ctx: AppContext, world: World) -> None:
        pool_id = (await _pools(ctx, world.session.id))[0]
        async with ctx.db.session_scope() as s:
            row = await s.get(SlotPool, pool_id)
            assert row is not None
            row.taken = 1
            db = await driver(s)
            found = await db.fetchrow(
                Statement("SELECT taken FROM slot_pool WHERE id = $1"), pool_id
            )
            assert found is not None and found[0] == 1
            row.taken = 0


async def _pools(ctx: AppContext, session_id: uuid.UUID) -> list[uuid.UUID]:
    async with ctx.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(SlotPool.id)
                    .where(SlotPool.session_id == session_id)
                    .order_by(SlotPool.slot_ordinal, SlotPool.first_number)
                )
            ).all()
        )


class TestRecord:
    async def test_a_taken_voucher_code_is_replaced_never_shown(
        self, ctx: AppContext, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with ctx.db.session_scope() as s:
            first = await service.book(
                s,
                actor=_app(world),
                patient_id=world.patient.id,
                session_id=world.session.id,
                slot_id=None,
                now=NOW,
            )
        taken_code = first.appointment.voucher_code
        codes = iter([taken_code, taken_code, "12345678"])
        monkeypatch.setattr(store, "new_voucher_code", lambda: next(codes))
        async with ctx.db.session_scope() as s:
            second = await service.book(
                s,
                actor=_app(world),
                patient_id=world.other_patient.id,
                session_id=world.session.id,
                slot_id=None,
                now=NOW,
            )
        assert second.appointment.voucher_code == "12345678"
        async with ctx.db.read() as s:
            stored = await s.get(Appointment, second.appointment.id)
            audits = await s.scalar(
                select(func.count()).where(AuditEntry.entity_id == second.appointment.id)
            )
        assert stored is not None and stored.voucher_code == "12345678"
        assert audits == 1

    async def test_booking_writes_its_audit_row_and_messages(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            booked = await service.book(
                s,
                actor=_app(world),
                patient_id=world.patient.id,
                session_id=world.session.id,
                slot_id=None,
                now=NOW,
            )
        aid = booked.appointment.id
        async with ctx.db.read() as s:
            stored = await s.get(Appointment, aid)
            audit = (await s.scalars(select(AuditEntry).where(AuditEntry.entity_id == aid))).one()
            messages = (
                await s.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.appointment_id == aid)
                    .order_by(OutboxMessage.available_at)
                )
            ).all()
        assert stored is not None
        assert stored.sequence_number == booked.appointment.sequence_number == 1
        assert stored.created_at == NOW and stored.booked_at == NOW
        assert audit.action == "book" and audit.actor == _app(world).audit_name
        assert audit.after == service.snapshot(stored)
        kinds = [m.kind for m in messages]
        assert kinds[0] == MessageKind.BOOKING_CONFIRMED.value
        assert set(kinds[1:]) <= {MessageKind.REMINDER.value}
        assert messages[0].payload["voucher_code"] == stored.voucher_code
        assert all(m.status == "pending" and m.patient_id == world.patient.id for m in messages)


class TestPatientFactsFunction:
    async def test_the_function_counts_the_same_statuses_as_active(self, ctx: AppContext) -> None:
        """`yuyue_patient_facts` spells the active statuses out in SQL; they must be the
        ones that occupy a place, or the per-patient limits would miss bookings."""
        if ctx.db.is_sqlite:
            pytest.skip("PostgreSQL only: SQLite sends the two statements")
        async with ctx.db.read() as s:
            source = await s.scalar(
                select(func.pg_get_functiondef(text("'yuyue_patient_facts'::regproc")))
            )
        assert source is not None
        listed = source.split("a.status IN (", 1)[1].split(")", 1)[0]
        assert {v.strip(" '") for v in listed.split(",")} == {s.value for s in ACTIVE_STATUSES}


class TestHotLane:
    async def test_a_failed_lane_transaction_changes_nothing_and_the_lane_goes_on(
        self, ctx: AppContext, world: World
    ) -> None:
        pool_id = (await _pools(ctx, world.session.id))[0]
        take = Statement("UPDATE slot_pool SET taken = taken + 1 WHERE id = $1")

        async def take_then_fail(db: Driver) -> None:
            await db.execute(take, pool_id)
            raise Boom()

        async def take_one(db: Driver) -> None:
            await db.execute(take, pool_id)

        for _ in range(3):
            with pytest.raises(Boom):
                await ctx.db.transact_driver(take_then_fail)
        await ctx.db.transact_driver(take_one)
        async with ctx.db.read() as s:
            taken = await s.scalar(select(SlotPool.taken).where(SlotPool.id == pool_id))
        assert taken == 1

    async def test_a_broken_connection_is_replaced(self, ctx: AppContext, world: World) -> None:
        if ctx.db.hot_lane is None:
            pytest.skip("PostgreSQL only: SQLite books on its single writer")
        seen: list[Any] = []

        async def grab(db: Driver) -> None:
            seen.append(db)
            await db.fetch(Statement("SELECT 1"))

        await ctx.db.transact_driver(grab)
        connection = seen[0]._connection
        await connection.close()
        await ctx.db.transact_driver(grab)
        assert seen[1]._connection is not connection


class TestHotLaneSaturated:
    async def test_a_saturated_lane_times_out_like_the_pool(self, ctx: AppContext) -> None:
        if ctx.db.hot_lane is None:
            pytest.skip("PostgreSQL only: SQLite books on its single writer")
        lane = HotLane(
            ctx.db.hot_lane._dsn, size=1, connect_args=ctx.db.hot_lane._connect_args, timeout=0.3
        )
        try:
            async with lane.transaction():
                with pytest.raises(PoolTimeout):
                    async with lane.transaction():
                        pass
        finally:
            await lane.close()


class TestWarmStart:
    async def test_start_up_warms_the_callers_the_sessions_and_the_lane(
        self, ctx: AppContext, world: World
    ) -> None:
        ctx.actors.forget_all()
        ctx.session_infos.clear()
        await ctx._warm_booking_path()
        assert ctx.session_infos.get(world.session.id) is not None
        cached = ctx.actors.get(api_key_digest(world.api_key))
        assert isinstance(cached, Actor) and cached.hospital_id == world.hospital.id
        if ctx.db.hot_lane is not None:
            assert ctx.db.hot_lane._opened == ctx.db.hot_lane._size


class TestFactsAndClaim:
    """On PostgreSQL the place is taken in the same call that reads the patient's facts,
    before the rules have seen them; a refusal gives it back in the same transaction."""

    async def test_the_function_counts_the_same_statuses_as_active(self, ctx: AppContext) -> None:
        if ctx.db.is_sqlite:
            pytest.skip("PostgreSQL only: SQLite claims after the rules")
        async with ctx.db.read() as s:
            source = await s.scalar(
                select(func.pg_get_functiondef(text("'yuyue_facts_and_claim'::regproc")))
            )
        assert source is not None
        lists = [part.split(")", 1)[0] for part in source.split("a.status IN (")[1:]]
        assert len(lists) == 2  # the patient's bookings and the pool's numbers in use
        for listed in lists:
            assert {v.strip(" '") for v in listed.split(",")} == {s.value for s in ACTIVE_STATUSES}

    async def test_a_refused_booking_leaves_every_place_as_it_was(
        self, ctx: AppContext, world: World, client: Any
    ) -> None:
        body = {"patient_id": str(world.patient.id), "session_id": str(world.session.id)}
        first = await client.post("/api/v1/appointments", json=body, headers=world.auth)
        assert first.status_code == 201
        before = await _taken(ctx, world.session.id)
        again = await client.post("/api/v1/appointments", json=body, headers=world.auth)
        assert again.status_code == 409 and again.json()["code"] == "already_booked"
        assert await _taken(ctx, world.session.id) == before == 1
        async with ctx.db.read() as s:
            count = await s.scalar(
                select(func.count())
                .select_from(Appointment)
                .where(Appointment.patient_id == world.patient.id)
            )
        assert count == 1


async def _taken(ctx: AppContext, session_id: uuid.UUID) -> int:
    async with ctx.db.read() as s:
        return int(
            await s.scalar(
                select(func.coalesce(func.sum(SlotPool.taken), 0)).where(
                    SlotPool.session_id == session_id
                )
            )
            or 0
        )
