"""The no-show sweep on SQLite and PostgreSQL: exactly the right bookings, idempotent,
safe to run twice at once; bans at the threshold, escalating, never twice for the same
no-shows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.attendance.conftest import sweep, visit
from tests.conftest import NOW, World
from tests.helpers import row_counts
from yuyue.attendance import service as attendance_service
from yuyue.attendance.models import NoShowBan
from yuyue.booking.models import Appointment, BlacklistEntry
from yuyue.booking.states import AppointmentStatus
from yuyue.jobs import mark_no_shows_once
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.scheduling.enums import SessionStatus
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import Actor, ActorKind, system_actor
from yuyue.web.context import AppContext

S = AppointmentStatus
# NOW is Friday 2026-11-20 10:00 in Shanghai.
TODAY = date(2026, 11, 20)
ADMIN_ID = "staff-admin"


async def status_of(ctx: AppContext, appointment_id: uuid.UUID) -> AppointmentStatus:
    async with ctx.db.read() as s:
        appointment = await s.get(Appointment, appointment_id)
    assert appointment is not None
    return AppointmentStatus(appointment.status)


async def count_where(ctx: AppContext, model: type[Any], *conditions: ColumnElement[bool]) -> int:
    async with ctx.db.read() as s:
        query = select(func.count()).select_from(model).where(*conditions)
        return int(await s.scalar(query) or 0)


async def bans(ctx: AppContext, patient_id: uuid.UUID) -> list[BlacklistEntry]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(BlacklistEntry)
            .where(BlacklistEntry.patient_id == patient_id)
            .order_by(BlacklistEntry.starts_at)
        )
        return list(rows.all())


def admin(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id=ADMIN_ID,
        channel=system_actor(world.hospital.id).channel,
        roles=frozenset({Role.ADMIN}),
        name="admin",
    )


class TestTheSweep:
    async def test_marks_exactly_the_unattended_bookings_of_ended_sessions(
        self, ctx: AppContext, world: World
    ) -> None:
        missed = await visit(ctx, world, day=date(2026, 11, 18))
        # Ended at 09:30 today: 30 minutes of grace are over exactly now.
        just_due = await visit(ctx, world, day=TODAY, start=time(8, 0), end=time(9, 30))
        untouched = [
            await visit(ctx, world, day=date(2026, 11, 18), status=S.CHECKED_IN),
            await visit(ctx, world, day=date(2026, 11, 18), status=S.CANCELLED),
            await visit(ctx, world, day=date(2026, 11, 18), status=S.COMPLETED),
            await visit(ctx, world, day=date(2026, 11, 18), status=S.HELD),
            # Within the grace: ended 09:40, due at 10:10.
            await visit(ctx, world, day=TODAY, start=time(8, 0), end=time(9, 40)),
            # Still running, and tomorrow.
            await visit(ctx, world, day=TODAY, start=time(8, 0), end=time(12, 0)),
            await visit(ctx, world, day=date(2026, 11, 23)),
            # A stopped clinic is never the patient's fault.
            await visit(ctx, world, day=date(2026, 11, 18), session_status=SessionStatus.STOPPED),
        ]
        before = {a: await status_of(ctx, a) for a in untouched}

        result = await sweep(ctx, world)

        assert sorted(result.marked) == sorted([missed, just_due])
        assert await status_of(ctx, missed) is S.NO_SHOW
        assert await status_of(ctx, just_due) is S.NO_SHOW
        assert {a: await status_of(ctx, a) for a in untouched} == before
        assert result.bans == []  # two no-shows are below the threshold
        assert (
            await count_where(
                ctx, AuditEntry, AuditEntry.action == "mark_no_show", AuditEntry.entity_id == missed
            )
            == 1
        )
        assert (
            await count_where(
                ctx,
                OutboxMessage,
                OutboxMessage.kind == MessageKind.NO_SHOW.value,
                OutboxMessage.appointment_id == missed,
            )
            == 1
        )

    async def test_running_it_again_changes_nothing(self, ctx: AppContext, world: World) -> None:
        for day in (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)):
            await visit(ctx, world, day=day)
        first = await sweep(ctx, world)
        assert len(first.marked) == 3 and len(first.bans) == 1
        after_first = await row_counts(ctx.db)

        second = await sweep(ctx, world)

        assert second.marked == [] and second.bans == []
        assert await row_counts(ctx.db) == after_first

    async def test_two_sweeps_at_once_mark_each_booking_once(
        self, ctx: AppContext, world: World
    ) -> None:
        patients = [world.patient, world.other_patient]
        async with ctx.db.session_scope() as s:
            for n in range(2):
                patients.append(
                    await f.make_patient(
                        s,
                        hospital=world.hospital,
                        cipher=ctx.cipher,
                        now=NOW,
                        name="王五赵六"[n * 2 : n * 2 + 2],
                    )
                )
        for patient in patients:
            for day in (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)):
                await visit(ctx, world, day=day, patient=patient)

        async def one_pass() -> attendance_service.SweepResult:
            actor = system_actor(world.hospital.id, "no-show-sweep")

            async def work(s: AsyncSession) -> attendance_service.SweepResult:
                return await attendance_service.mark_no_shows(s, actor=actor, now=NOW)

            return await ctx.db.transact(work)

        results = await asyncio.gather(*(one_pass() for _ in range(3)))
        leftovers = await sweep(ctx, world)  # anything skipped while locked

        marked = [a for r in [*results, leftovers] for a in r.marked]
        made = [b for r in [*results, leftovers] for b in r.bans]
        assert len(marked) == len(set(marked)) == 12
        assert len(made) == len(set(made)) == 4
        assert await count_where(ctx, AuditEntry, AuditEntry.action == "mark_no_show") == 12
        assert await count_where(ctx, BlacklistEntry) == 4
        assert (
            await count_where(
                ctx, OutboxMessage, OutboxMessage.kind == MessageKind.BLACKLISTED.value
            )
            == 4
        )

    async def test_the_job_sweeps_every_hospital(self, ctx: AppContext, world: World) -> None:
        missed = await visit(ctx, world, day=date(2026, 11, 18))
        result = await mark_no_shows_once(ctx)
        assert result.marked == [missed]
        assert (await mark_no_shows_once(ctx)).marked == []


class TestBans:
    async def test_the_threshold_makes_exactly_one_ban_naming_the_days(
        self, ctx: AppContext, world: World
    ) -> None:
        for day in (date(2026, 11, 2), date(2026, 11, 9)):
            await visit(ctx, world, day=day)
        assert (await sweep(ctx, world)).bans == []
        await visit(ctx, world, day=date(2026, 11, 16))

        result = await sweep(ctx, world)

        assert len(result.bans) == 1
        [entry] = await bans(ctx, world.patient.id)
        assert entry.starts_at == NOW
        assert entry.ends_at == NOW + timedelta(days=180)
        assert entry.lifted_at is None
        assert entry.reason == "365 天内爽约 3 次（11月2日 周一、11月9日 周一、11月16日 周一）"
        async with ctx.db.read() as s:
            message = await s.scalar(
                select(OutboxMessage).where(OutboxMessage.kind == MessageKind.BLACKLISTED.value)
            )
            link = await s.scalar(select(NoShowBan).where(NoShowBan.entry_id == entry.id))
        assert message is not None and message.patient_id == world.patient.id
        assert message.payload["until"] == "2027-05-19"
        assert message.payload["dates"] == "2026-11-02, 2026-11-09, 2026-11-16"
        assert link is not None and link.step == 1 and len(link.appointment_ids) == 3
        assert (
            await count_where(
                ctx,
                AuditEntry,
                AuditEntry.action == "blacklist",
                AuditEntry.entity_id == world.patient.id,
            )
            == 1
        )

    async def test_no_shows_outside_the_window_do_not_count(
        self, ctx: AppContext, world: World
    ) -> None:
        for day in (date(2025, 11, 1), date(2026, 11, 9), date(2026, 11, 16)):
            await visit(ctx, world, day=day)
        result = await sweep(ctx, world)
        assert len(result.marked) == 3 and result.bans == []

    async def test_the_next_ban_within_the_window_doubles_and_follows_the_first(
        self, ctx: AppContext, world: World
    ) -> None:
        for day in (date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)):
            await visit(ctx, world, day=day)
        await sweep(ctx, world)
        # Bookings made at the window before the ban, missed too.
        for day in (date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)):
            await visit(ctx, world, day=day)

        later = NOW + timedelta(days=7)
        result = await sweep(ctx, world, now=later)

        assert len(result.marked) == 3 and len(result.bans) == 1
        first, second = await bans(ctx, world.patient.id)
        assert second.starts_at == first.ends_at  # never two bans at once
        assert second.ends_at == first.ends_at + timedelta(days=360)

    async def test_the_hospitals_policy_decides(self, ctx: AppContext, world: World) -> None:
        async with ctx.db.session_scope() as s:
            await attendance_service.update_policy(
                s,
                actor=admin(world),
                changes={"threshold": 2, "window_days": 90, "ban_days": [90, 180]},
                now=NOW,
            )
        for day in (date(2026, 11, 9), date(2026, 11, 16)):
            await visit(ctx, world, day=day)
        result = await sweep(ctx, world)
        assert len(result.bans) == 1
        [entry] = await bans(ctx, world.patient.id)
        assert entry.ends_at == NOW + timedelta(days=90)
        assert entry.reason.startswith("90 天内爽约 2 次")
