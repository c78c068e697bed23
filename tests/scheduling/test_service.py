"""Scheduling on SQLite and PostgreSQL: templates → sessions → slots and pools, pool ratios,
extra sessions (加诊) and extra places (加号), through the API with a scheduler token and
through the service."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, time, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import ClinicSession, ScheduleTemplate, SlotPool, TimeSlot
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

TUESDAY, THURSDAY = 1, 3
# VISIT_DAY is Monday 2026-11-23; two weeks from it hold two Tuesdays and two Thursdays.
WEEK_1_TUESDAY = VISIT_DAY + timedelta(days=1)
WEEK_2_TUESDAY = VISIT_DAY + timedelta(days=8)


async def scheduler(client: httpx.AsyncClient, ctx: AppContext, world: World) -> dict[str, str]:
    return await staff_auth(client, ctx, world, Role.SCHEDULER)


async def add_template(
    client: httpx.AsyncClient, world: World, auth: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "department_id": str(world.department.id),
        "doctor_id": str(world.doctor.id),
        "weekday": TUESDAY,
        "period": "morning",
        **fields,
    }
    response = await client.post("/api/v1/schedule-templates", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def generate(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    *,
    start: date = VISIT_DAY,
    days: int = 14,
) -> dict[str, int]:
    response = await client.post(
        "/api/v1/sessions/generate",
        json={"start": start.isoformat(), "days": days},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def template_sessions(ctx: AppContext, template_id: Any) -> list[ClinicSession]:
    async with ctx.db.read() as s:
        rows = await s.scalars(
            select(ClinicSession)
            .where(ClinicSession.template_id == uuid.UUID(str(template_id)))
            .order_by(ClinicSession.date)
        )
        return list(rows.all())


async def inventory(
    ctx: AppContext, session_id: Any
) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    """(slot times in order, places per pool) of one session."""
    async with ctx.db.read() as s:
        slots = [
            (row.start_time, row.end_time)
            for row in await s.scalars(
                select(TimeSlot).where(TimeSlot.session_id == session_id).order_by(TimeSlot.ordinal)
            )
        ]
        per_pool: dict[str, int] = defaultdict(int)
        for pool in await s.scalars(select(SlotPool).where(SlotPool.session_id == session_id)):
            per_pool[pool.pool] += pool.capacity
    return slots, dict(per_pool)


async def pool_rows(ctx: AppContext, session_id: Any) -> list[tuple[Any, ...]]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(
                SlotPool.id,
                SlotPool.slot_id,
                SlotPool.slot_ordinal,
                SlotPool.pool,
                SlotPool.capacity,
                SlotPool.taken,
                SlotPool.first_number,
                SlotPool.is_open,
            )
            .where(SlotPool.session_id == session_id)
            .order_by(SlotPool.first_number)
        )
        return [tuple(r) for r in rows]


async def listed(
    client: httpx.AsyncClient, auth: dict[str, str], day: date
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/sessions",
        params={"date_from": day.isoformat(), "date_to": day.isoformat()},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    return list(response.json())


MORNING_SLOTS = [
    (time(8, 0), time(8, 30)),
    (time(8, 30), time(9, 0)),
    (time(9, 0), time(9, 30)),
    (time(9, 30), time(10, 0)),
    (time(10, 0), time(10, 30)),
    (time(10, 30), time(11, 0)),
    (time(11, 0), time(11, 30)),
    (time(11, 30), time(12, 0)),
]


class TestGenerate:
    async def test_templates_become_sessions_on_their_weekdays_with_slots_and_pools(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        doctor_template = await add_template(client, world, auth)
        department_template = await add_template(
            client,
            world,
            auth,
            doctor_id=None,
            level_code=world.fee_level.code,
            weekday=THURSDAY,
            period="afternoon",
            capacity=16,
        )
        report = await generate(client, auth)
        assert report == {"created": 4, "rebuilt": 0, "unchanged": 0, "kept_with_bookings": 0}

        tuesdays = await template_sessions(ctx, doctor_template["id"])
        assert [c.date for c in tuesdays] == [WEEK_1_TUESDAY, WEEK_2_TUESDAY]
        for clinic in tuesdays:
            assert clinic.period == Period.MORNING
            assert clinic.doctor_id == world.doctor.id
            assert clinic.capacity == 25 and clinic.fee_fen == 0 and not clinic.is_extra
            slots, pools = await inventory(ctx, clinic.id)
            assert slots == MORNING_SLOTS
            assert pools == {"appointment": 15, "onsite": 8, "reserved": 2}
            assert sum(pools.values()) == clinic.capacity

        thursdays = await template_sessions(ctx, department_template["id"])
        assert [c.date.weekday() for c in thursdays] == [THURSDAY, THURSDAY]
        for clinic in thursdays:
            assert clinic.doctor_id is None
            assert clinic.fee_fen == 8000
            slots, pools = await inventory(ctx, clinic.id)
            assert slots[0] == (time(13, 30), time(14, 0)) and len(slots) == 8
            assert sum(pools.values()) == 16

    async def test_generated_sessions_are_listed_to_channels(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        await add_template(client, world, auth)
        await generate(client, auth)
        [tuesday] = await listed(client, world.auth, WEEK_1_TUESDAY)
        assert tuesday["doctor"]["id"] == str(world.doctor.id)
        assert tuesday["status"] == "open" and tuesday["is_extra"] is False
        assert tuesday["remaining"] == 15
        slots = (
            await client.get(f"/api/v1/sessions/{tuesday['id']}/slots", headers=world.auth)
        ).json()
        assert [s["start"] for s in slots][:2] == ["08:00:00", "08:30:00"]
        assert sum(s["remaining"] for s in slots) == 15

    async def test_generating_again_changes_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        await add_template(client, world, auth)
        await add_template(client, world, auth, weekday=THURSDAY, period="evening")
        await generate(client, auth)
        before = await row_counts(ctx.db)
        report = await generate(client, auth)
        assert report == {"created": 0, "rebuilt": 0, "unchanged": 4, "kept_with_bookings": 0}
        assert await row_counts(ctx.db) == before

    async def test_an_overlapping_window_only_adds_the_new_days(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        await add_template(client, world, auth)
        assert (await generate(client, auth, days=7))["created"] == 1
        report = await generate(client, auth, days=21)
        assert report == {"created": 2, "rebuilt": 0, "unchanged": 1, "kept_with_bookings": 0}

    async def test_a_changed_template_rebuilds_unbooked_sessions_and_keeps_booked_ones(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        template = await add_template(client, world, auth)
        await generate(client, auth)
        booked_session, free_session = await template_sessions(ctx, template["id"])
        booking = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(booked_session.id)},
            headers=world.auth,
        )
        assert booking.status_code == 201, booking.text
        kept_pools = await pool_rows(ctx, booked_session.id)
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ScheduleTemplate)
                .where(ScheduleTemplate.id == uuid.UUID(template["id"]))
                .values(capacity=30)
            )

        report = await generate(client, auth)
        assert report == {"created": 0, "rebuilt": 1, "unchanged": 0, "kept_with_bookings": 1}

        kept, rebuilt = await template_sessions(ctx, template["id"])
        assert (kept.id, rebuilt.id) == (booked_session.id, free_session.id)
        assert kept.capacity == 25
        assert await pool_rows(ctx, kept.id) == kept_pools
        assert rebuilt.capacity == 30
        slots, pools = await inventory(ctx, rebuilt.id)
        assert slots == MORNING_SLOTS
        assert sum(pools.values()) == 30
        assert pools == {"appointment": 18, "onsite": 9, "reserved": 3}
        # Settled: the next run finds one session still kept back, and nothing else to do.
        again = await generate(client, auth)
        assert again == {"created": 0, "rebuilt": 0, "unchanged": 1, "kept_with_bookings": 1}

    async def test_a_cancelled_booking_still_keeps_the_session_as_it_is(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        template = await add_template(client, world, auth)
        await generate(client, auth, days=7)
        [clinic] = await template_sessions(ctx, template["id"])
        booking = await client.post(
            "/api/v1/appointments",
            json={"patient_id": str(world.patient.id), "session_id": str(clinic.id)},
            headers=world.auth,
        )
        cancelled = await client.post(
            f"/api/v1/appointments/{booking.json()['id']}/cancel", headers=world.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        pools = await pool_rows(ctx, clinic.id)
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ScheduleTemplate)
                .where(ScheduleTemplate.id == uuid.UUID(template["id"]))
                .values(slot_minutes=60)
            )
        report = await generate(client, auth, days=7)
        assert report["kept_with_bookings"] == 1 and report["rebuilt"] == 0
        assert await pool_rows(ctx, clinic.id) == pools

    async def test_a_rebuilt_session_takes_the_templates_new_period(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        template = await add_template(client, world, auth)
        await generate(client, auth, days=7)
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ScheduleTemplate)
                .where(ScheduleTemplate.id == uuid.UUID(template["id"]))
                .values(period=Period.AFTERNOON, start_time=time(13, 30), end_time=time(17, 30))
            )
        report = await generate(client, auth, days=7)
        assert report["rebuilt"] == 1
        [clinic] = await template_sessions(ctx, template["id"])
        assert clinic.start_time == time(13, 30)
        assert clinic.period == Period.AFTERNOON, "rebuilt at 13:30 but still a morning session"

    async def test_a_template_no_longer_valid_generates_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        await add_template(client, world, auth, valid_until="2026-11-01")
        before = await row_counts(ctx.db)
        report = await generate(client, auth)
        assert report == {"created": 0, "rebuilt": 0, "unchanged": 0, "kept_with_bookings": 0}
        assert await row_counts(ctx.db) == before

    async def test_a_template_generates_only_inside_its_validity(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        starts_later = await add_template(client, world, auth, valid_from="2026-11-25")
        ends_soon = await add_template(
            client, world, auth, weekday=THURSDAY, valid_until="2026-11-26"
        )
        assert (await generate(client, auth))["created"] == 2
        assert [c.date for c in await template_sessions(ctx, starts_later["id"])] == [
            WEEK_2_TUESDAY
        ]
        assert [c.date for c in await template_sessions(ctx, ends_soon["id"])] == [
            date(2026, 11, 26)
        ]

    async def test_the_service_generates_for_every_matching_weekday(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            for weekday in (0, 2, 4):
                s.add(
                    ScheduleTemplate(
                        hospital_id=world.hospital.id,
                        department_id=world.department.id,
                        doctor_id=world.doctor.id,
                        level_id=world.free_level.id,
                        weekday=weekday,
                        period=Period.AFTERNOON,
                        start_time=time(14, 0),
                        end_time=time(16, 0),
                        capacity=10,
                        slot_minutes=20,
                    )
                )
            await s.flush()
            report = await scheduling_service.generate_sessions(
                s, hospital_id=world.hospital.id, start=date(2026, 12, 1), days=28, now=NOW
            )
        assert (report.created, report.unchanged) == (12, 0)
        async with ctx.db.read() as s:
            days = (
                await s.scalars(
                    select(ClinicSession.date).where(ClinicSession.template_id.is_not(None))
                )
            ).all()
            slot_count = await s.scalar(
                select(func.count())
                .select_from(TimeSlot)
                .join(ClinicSession, ClinicSession.id == TimeSlot.session_id)
                .where(ClinicSession.template_id.is_not(None))
            )
        assert sorted({d.weekday() for d in days}) == [0, 2, 4]
        assert all(date(2026, 12, 1) <= d < date(2026, 12, 29) for d in days)
        assert slot_count == 12 * 6


class TestTemplates:
    async def test_a_department_template_without_a_doctor_needs_a_level(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/schedule-templates",
            json={"department_id": str(world.department.id), "weekday": 0, "period": "morning"},
            headers=auth,
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["level_code"]
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_level_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/schedule-templates",
            json={
                "department_id": str(world.department.id),
                "level_code": "no-such-level",
                "weekday": 0,
                "period": "morning",
            },
            headers=auth,
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before

    async def test_a_start_after_the_periods_end_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/schedule-templates",
            json={
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "weekday": 0,
                "period": "morning",
                "start": "12:30",
            },
            headers=auth,
        )
        assert_problem(response, 422, "invalid_schedule")
        assert await row_counts(ctx.db) == before

    async def test_a_doctor_of_another_department_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            surgery = await f.make_department(s, hospital=world.hospital, name="外科")
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/schedule-templates",
            json={
                "department_id": str(surgery.id),
                "doctor_id": str(world.doctor.id),
                "weekday": 0,
                "period": "morning",
            },
            headers=auth,
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestPoolRatios:
    async def test_department_ratios_change_the_split_of_later_sessions(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        response = await client.put(
            "/api/v1/pool-ratios",
            json={
                "department_id": str(world.department.id),
                "ratios": {"appointment": 50, "onsite": 50},
            },
            headers=auth,
        )
        assert response.status_code == 204, response.text
        template = await add_template(client, world, auth, capacity=24)
        await generate(client, auth, days=7)
        [clinic] = await template_sessions(ctx, template["id"])
        _slots, pools = await inventory(ctx, clinic.id)
        assert pools == {"appointment": 12, "onsite": 12}
        [listed_session] = await listed(client, world.auth, WEEK_1_TUESDAY)
        assert listed_session["remaining"] == 12
        # Sessions generated before keep the split they were published with.
        _slots, earlier = await inventory(ctx, world.session.id)
        assert earlier == {"appointment": 15, "onsite": 8, "reserved": 2}
        async with ctx.db.read() as s:
            audit = (
                await s.scalars(select(AuditEntry).where(AuditEntry.action == "set_pool_ratios"))
            ).one()
        assert audit.entity_id == world.department.id
        assert audit.after == {"appointment": 50, "onsite": 50}

    async def test_a_doctors_ratios_beat_the_departments(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        for scope in (
            {"department_id": str(world.department.id), "ratios": {"appointment": 100}},
            {"doctor_id": str(world.doctor.id), "ratios": {"onsite": 100}},
        ):
            response = await client.put("/api/v1/pool-ratios", json=scope, headers=auth)
            assert response.status_code == 204, response.text
        template = await add_template(client, world, auth, capacity=10)
        await generate(client, auth, days=7)
        [clinic] = await template_sessions(ctx, template["id"])
        assert (await inventory(ctx, clinic.id))[1] == {"onsite": 10}

    async def test_ratios_not_adding_up_to_100_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        for ratios in ({"appointment": 50, "onsite": 40}, {"appointment": 60, "onsite": 60}, {}):
            response = await client.put(
                "/api/v1/pool-ratios",
                json={"department_id": str(world.department.id), "ratios": ratios},
                headers=auth,
            )
            body = assert_problem(response, 422, "invalid_schedule")
            assert "100" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_an_unknown_pool_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.put(
            "/api/v1/pool-ratios", json={"ratios": {"vip": 100}}, headers=auth
        )
        body = assert_problem(response, 422, "invalid_schedule")
        assert "vip" in body["detail"]
        assert await row_counts(ctx.db) == before

    async def test_a_department_and_a_doctor_at_once_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.put(
            "/api/v1/pool-ratios",
            json={
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "ratios": {"appointment": 100},
            },
            headers=auth,
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == ["doctor_id"]
        assert await row_counts(ctx.db) == before


class TestExtraSession:
    async def test_an_extra_session_is_listed_as_extra(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        response = await client.post(
            "/api/v1/sessions",
            json={
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "date": "2026-11-25",
                "period": "evening",
            },
            headers=auth,
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["period"] == "evening" and created["capacity"] == 25
        [clinic] = await listed(client, world.auth, date(2026, 11, 25))
        assert clinic["id"] == created["id"]
        assert clinic["is_extra"] is True
        assert clinic["start"] == "18:00:00" and clinic["end"] == "21:00:00"
        assert clinic["doctor"]["id"] == str(world.doctor.id)
        assert clinic["remaining"] == 15
        slots, pools = await inventory(ctx, uuid.UUID(created["id"]))
        assert len(slots) == 6 and sum(pools.values()) == 25
        async with ctx.db.read() as s:
            audit = (
                await s.scalars(select(AuditEntry).where(AuditEntry.action == "extra_session"))
            ).one()
        assert str(audit.entity_id) == created["id"]
        assert audit.actor.startswith("staff:")

    async def test_a_department_session_without_a_doctor_requires_a_level(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        body: dict[str, Any] = {
            "department_id": str(world.department.id),
            "date": "2026-11-25",
            "period": "morning",
        }
        before = await row_counts(ctx.db)
        refused = await client.post("/api/v1/sessions", json=body, headers=auth)
        problem = assert_problem(refused, 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == ["level_code"]
        assert await row_counts(ctx.db) == before

        body["level_code"] = world.fee_level.code
        created = await client.post("/api/v1/sessions", json=body, headers=auth)
        assert created.status_code == 201, created.text
        [clinic] = await listed(client, world.auth, date(2026, 11, 25))
        assert clinic["doctor"] is None
        assert clinic["fee"] == 8000 and clinic["level"]["code"] == world.fee_level.code

    async def test_an_extra_session_in_another_hospitals_department_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            elsewhere = await f.make_hospital(s, now=NOW)
            foreign = await f.make_department(s, hospital=elsewhere)
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/sessions",
            json={
                "department_id": str(foreign.id),
                "level_code": world.free_level.code,
                "date": "2026-11-25",
                "period": "morning",
            },
            headers=auth,
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestExtraPlaces:
    async def test_extra_places_are_numbered_after_every_existing_place(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/extra-places", json={"count": 2}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["capacity"] == 27
        [clinic] = await listed(client, world.auth, VISIT_DAY)
        assert clinic["capacity"] == 27 and clinic["remaining"] == 17
        async with ctx.db.read() as s:
            extra = (
                await s.scalars(
                    select(SlotPool).where(
                        SlotPool.session_id == world.session.id, SlotPool.is_extra.is_(True)
                    )
                )
            ).one()
        assert (extra.pool, extra.capacity, extra.first_number) == ("appointment", 2, 26)
        assert extra.slot_ordinal == 7

    async def test_extra_places_on_a_stopped_session_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        stopped = await client.post(
            f"/api/v1/sessions/{world.session.id}/stop",
            json={"reason": "医生临时外出会诊"},
            headers=auth,
        )
        assert stopped.status_code == 200, stopped.text
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/extra-places", json={"count": 2}, headers=auth
        )
        assert_problem(response, 422, "invalid_schedule")
        assert await row_counts(ctx.db) == before

    async def test_extra_places_in_an_unknown_pool_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{world.session.id}/extra-places",
            json={"count": 2, "pool": "vip"},
            headers=auth,
        )
        assert_problem(response, 422, "invalid_schedule")
        assert await row_counts(ctx.db) == before

    async def test_extra_places_for_an_unknown_session_are_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        response = await client.post(
            f"/api/v1/sessions/{uuid.uuid4()}/extra-places", json={"count": 2}, headers=auth
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestNoPastNoResurrection:
    async def test_a_stopped_session_is_never_rebuilt(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        template = await add_template(client, world, auth)
        await generate(client, auth)
        stopped, _other = await template_sessions(ctx, template["id"])
        response = await client.post(
            f"/api/v1/sessions/{stopped.id}/stop", json={"reason": "设备检修"}, headers=auth
        )
        assert response.status_code == 200, response.text
        pools = await pool_rows(ctx, stopped.id)
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(ScheduleTemplate)
                .where(ScheduleTemplate.id == uuid.UUID(template["id"]))
                .values(capacity=30)
            )
        report = await generate(client, auth)
        assert report == {"created": 0, "rebuilt": 1, "unchanged": 0, "kept_with_bookings": 1}
        assert await pool_rows(ctx, stopped.id) == pools

    async def test_sessions_are_not_generated_or_added_for_past_days(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        await add_template(client, world, auth)
        before = await row_counts(ctx.db)
        past = await client.post(
            "/api/v1/sessions/generate", json={"start": "2026-11-19", "days": 3}, headers=auth
        )
        assert_problem(past, 422, "invalid_schedule")
        extra = await client.post(
            "/api/v1/sessions",
            json={
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "date": "2026-11-19",
                "period": "evening",
            },
            headers=auth,
        )
        assert_problem(extra, 422, "invalid_schedule")
        assert await row_counts(ctx.db) == before
