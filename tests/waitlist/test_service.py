"""Waitlist use cases on SQLite and PostgreSQL: joining and its refusals, leaving, what the
pages read, and how a returned place travels down the line."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, World
from tests.helpers import row_counts
from tests.waitlist.support import (
    active_appointments,
    call,
    channel_actor,
    entries,
    full_session,
    join_in_order,
    new_patients,
    taken,
)
from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.kit.clock import FixedClock
from yuyue.kit.errors import InvalidState, NotFound, YuyueError
from yuyue.scheduling.models import BookingPolicy, Channel
from yuyue.waitlist import rules
from yuyue.waitlist import service as waitlist
from yuyue.waitlist.models import WaitlistStatus
from yuyue.web.context import AppContext

W = WaitlistStatus


async def join(ctx: AppContext, world: World, clinic: Any, patient: Any, **extra: Any) -> Any:
    return await call(
        ctx,
        waitlist.join,
        actor=extra.pop("actor", channel_actor(world)),
        patient_id=patient.id,
        session_id=clinic.id,
        now=extra.pop("now", ctx.clock.now()),
    )


async def set_policy(ctx: AppContext, world: World, **values: Any) -> None:
    async with ctx.db.session_scope() as s:
        row = await s.scalar(
            select(BookingPolicy).where(BookingPolicy.hospital_id == world.hospital.id)
        )
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)


class TestJoin:
    async def test_a_patient_joins_a_full_session_and_nothing_is_booked(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        before_taken = await taken(ctx, full.clinic)
        entry = await join(ctx, world, full.clinic, world.patient)
        assert entry.status == W.WAITING
        assert entry.channel == "app"
        assert await taken(ctx, full.clinic) == before_taken == 2
        assert len(await active_appointments(ctx, full.clinic)) == 2

    @pytest.mark.parametrize(
        ("setup", "code"),
        [
            ("places_left", "waitlist_not_needed"),
            ("twice", "already_waiting"),
            ("cap", "waitlist_full"),
            ("closed", "waitlist_closed"),
            ("disabled", "waitlist_disabled"),
            ("booked_here", "already_booked"),
            ("daily_limit", "limit_exceeded"),
            ("blacklisted", "blacklisted"),
            ("too_old", "age_not_allowed"),
            ("stopped", "session_stopped"),
            ("before_release", "outside_release_window"),
        ],
    )
    async def test_join_is_refused_and_changes_nothing(
        self, ctx: AppContext, world: World, setup: str, code: str
    ) -> None:
        full = await full_session(ctx, world, capacity=3 if setup == "booked_here" else 2)
        clinic = full.clinic
        patient = world.patient
        now = NOW
        if setup == "places_left":
            await call(
                ctx,
                booking_service.cancel,
                actor=channel_actor(world),
                appointment_id=full.appointments[0],
                note=None,
                now=NOW,
            )
        elif setup == "twice":
            await join(ctx, world, clinic, patient)
        elif setup == "cap":
            await set_policy(ctx, world, waitlist_max_active=1)
            other = await full_session(ctx, world, days=1)
            await join(ctx, world, other.clinic, patient)
        elif setup == "closed":
            # 120 minutes before the 13:30 start (Shanghai) is 03:30 UTC on the day.
            now = clinic_start(clinic) - timedelta(minutes=120)
        elif setup == "disabled":
            await set_policy(ctx, world, waitlist_enabled=False)
        elif setup == "booked_here":
            patient = full.holders[0]
        elif setup == "daily_limit":
            await set_policy(
                ctx,
                world,
                limit_per_day=1,
                limit_per_department_per_day=5,
                limit_per_doctor_per_day=5,
            )
            async with ctx.db.session_scope() as s:
                other_department = await f.make_department(s, hospital=world.hospital, name="外科")
                other_session = await f.make_session(
                    s,
                    hospital=world.hospital,
                    department=other_department,
                    level=world.free_level,
                    day=clinic.date,
                    now=NOW,
                )
            await call(
                ctx,
                booking_service.book,
                actor=channel_actor(world),
                patient_id=patient.id,
                session_id=other_session.id,
                slot_id=None,
                now=NOW,
            )
        elif setup == "blacklisted":
            async with ctx.db.session_scope() as s:
                s.add(booking_models_blacklist(world, patient.id))
        elif setup == "too_old":
            async with ctx.db.session_scope() as s:
                department = await s.get(type(world.department), world.department.id)
                assert department is not None
                department.max_age_years = 14
            ctx.session_infos.clear()
        elif setup == "stopped":
            await call(
                ctx,
                booking_service.stop_clinic,
                actor=staff_actor(world),
                session_id=clinic.id,
                reason="ill",
                now=NOW,
            )
        elif setup == "before_release":
            # Not released yet: nobody may book it, so nobody may wait for it either.
            later = await full_session(ctx, world, days=8, fill=False)
            clinic = later.clinic
        ctx.session_infos.clear()
        ctx.policies.clear()
        before = await row_counts(ctx.db)
        with pytest.raises(YuyueError) as refused:
            await join(ctx, world, clinic, patient, now=now)
        assert refused.value.code == code, refused.value
        assert await row_counts(ctx.db) == before

    async def test_a_session_of_another_hospital_or_an_unknown_patient_is_not_found(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
        stranger = channel_actor(world)
        stranger = type(stranger)(
            hospital_id=elsewhere.id, kind=stranger.kind, id="x", channel=stranger.channel
        )
        before = await row_counts(ctx.db)
        with pytest.raises(NotFound):
            await join(ctx, world, full.clinic, world.patient, actor=stranger)
        with pytest.raises(NotFound):
            await join(ctx, world, full.clinic, type("P", (), {"id": f.new_uuid()})())
        assert await row_counts(ctx.db) == before

    async def test_a_channel_whose_pools_still_have_places_need_not_wait(
        self, ctx: AppContext, world: World
    ) -> None:
        # App places are gone, on-site places remain: the app waits, the window books.
        full = await full_session(ctx, world, capacity=4, ratios={"appointment": 50, "onsite": 50})
        entry = await join(ctx, world, full.clinic, world.patient)
        assert entry.status == W.WAITING
        with pytest.raises(rules.WaitlistNotNeeded) as refused:
            await join(
                ctx,
                world,
                full.clinic,
                world.other_patient,
                actor=channel_actor(world, Channel.WINDOW),
            )
        assert refused.value.values["remaining"] == 2


class TestLeaveAndRead:
    async def test_leaving_while_waiting_and_positions_in_line(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        patients = await new_patients(ctx, world, 3)
        joined = await join_in_order(ctx, world, full.clinic, patients)
        views = await read(ctx, world, patients)
        assert [v.position for v in by_patient(views, patients)] == [1, 2, 3]
        first = by_patient(views, patients)[0]
        assert first.date == full.clinic.date and first.period.value == "afternoon"
        assert first.department_name == world.department.name
        assert first.doctor_name == world.doctor.name
        assert first.offer_expires_at is None

        left = await call(
            ctx,
            waitlist.leave,
            actor=channel_actor(world),
            entry_id=joined[0].id,
            now=ctx.clock.now(),
        )
        assert left.status == W.LEFT
        views = await read(ctx, world, patients)
        assert [v.position for v in by_patient(views, patients)] == [None, 1, 2]
        before = await row_counts(ctx.db)
        with pytest.raises(InvalidState):
            await call(
                ctx,
                waitlist.leave,
                actor=channel_actor(world),
                entry_id=joined[0].id,
                now=ctx.clock.now(),
            )
        assert await row_counts(ctx.db) == before
        # Having left, the patient may join again, at the back of the line.
        again = await join(ctx, world, full.clinic, patients[0])
        views = await read(ctx, world, [patients[0]])
        assert next(v for v in views if v.id == again.id).position == 3

    async def test_entries_of_another_hospital_are_invisible(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world)
        entry = await join(ctx, world, full.clinic, world.patient)
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
        async with ctx.db.read() as s:
            assert (
                await waitlist.entries_for_patients(
                    s, hospital_id=elsewhere.id, patient_ids=[world.patient.id]
                )
                == []
            )
            with pytest.raises(NotFound):
                await waitlist.entry_view(s, hospital_id=elsewhere.id, entry_id=entry.id)
        stranger = channel_actor(world)
        stranger = type(stranger)(
            hospital_id=elsewhere.id, kind=stranger.kind, id="x", channel=stranger.channel
        )
        with pytest.raises(NotFound):
            await call(ctx, waitlist.leave, actor=stranger, entry_id=entry.id, now=NOW)


# --- small helpers -------------------------------------------------------------------------


def clinic_start(clinic: Any) -> Any:
    return booking_rules.local_instant(clinic.date, clinic.start_time, "Asia/Shanghai")


def staff_actor(world: World) -> Any:
    from yuyue.staff.models import Role
    from yuyue.staff.rules import Actor, ActorKind

    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id="staff",
        channel=Channel.WINDOW,
        roles=frozenset({Role.ADMIN}),
    )


def booking_models_blacklist(world: World, patient_id: Any) -> Any:
    from yuyue.booking.models import BlacklistEntry

    return BlacklistEntry(
        hospital_id=world.hospital.id,
        patient_id=patient_id,
        reason="爽约",
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=30),
        created_by="test",
        created_at=NOW,
    )


async def read(ctx: AppContext, world: World, patients: list[Any]) -> list[waitlist.WaitlistView]:
    async with ctx.db.read() as s:
        return await waitlist.entries_for_patients(
            s, hospital_id=world.hospital.id, patient_ids=[p.id for p in patients]
        )


def by_patient(views: list[waitlist.WaitlistView], patients: list[Any]) -> list[Any]:
    """The newest entry of each patient, in the patients' order."""
    newest: dict[Any, Any] = {}
    for view in sorted(views, key=lambda v: v.created_at):
        newest[view.patient_id] = view
    return [newest[p.id] for p in patients]


_ = (date, FixedClock, entries)
