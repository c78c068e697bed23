"""The hospital's structure on SQLite and PostgreSQL: a scheduler adds, edits and
deactivates departments and doctors, through the service and through the API."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import NOW, VISIT_DAY, World
from tests.helpers import assert_problem, row_counts, staff_auth
from yuyue.scheduling import rules
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import ClinicSession, Department, Doctor, ScheduleTemplate
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ActorKind
from yuyue.web.context import AppContext

NEXT_MONDAY = VISIT_DAY + timedelta(days=7)


def scheduler_actor(world: World) -> Actor:
    return Actor(
        hospital_id=world.hospital.id,
        kind=ActorKind.STAFF,
        id="scheduler",
        channel=STAFF_CHANNEL,
        roles=frozenset({Role.SCHEDULER}),
        name="scheduler",
    )


def monday_shape(world: World, doctor_id: Any, *, room: str = "") -> scheduling.TemplateShape:
    return scheduling.TemplateShape(
        department_id=world.department.id,
        doctor_id=doctor_id,
        level_id=world.free_level.id,
        weekday=0,
        period=Period.AFTERNOON,
        start_time=rules.DEFAULT_PERIOD_HOURS[Period.AFTERNOON][0],
        end_time=rules.DEFAULT_PERIOD_HOURS[Period.AFTERNOON][1],
        capacity=10,
        slot_minutes=30,
        room=room,
    )


async def sessions_on(ctx: AppContext, day: Any) -> list[ClinicSession]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(ClinicSession).where(ClinicSession.date == day))).all())


class TestDepartmentsInTheService:
    async def test_a_new_department_is_listed_and_audited(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            department = await scheduling.add_department(
                s,
                actor=scheduler_actor(world),
                facts=rules.DepartmentFacts(
                    code="PED",
                    name="儿科",
                    name_en="Paediatrics",
                    location="门诊楼 2 层",
                    max_age_years=14,
                    what_to_bring="儿童医保卡",
                ),
                now=NOW,
            )
        async with ctx.db.read() as s:
            listed = await scheduling.active_departments(s, hospital_id=world.hospital.id)
            audit = await s.scalar(select(AuditEntry).where(AuditEntry.entity_id == department.id))
        assert [d.code for d in listed][-1] == "PED"
        assert listed[-1].max_age_years == 14 and listed[-1].what_to_bring == "儿童医保卡"
        assert audit is not None and audit.action == "add_department"
        assert audit.after is not None and audit.after["name"] == "儿科"

    async def test_a_code_in_use_saves_nothing(self, ctx: AppContext, world: World) -> None:
        before = await row_counts(ctx.db)
        with pytest.raises(rules.CodeTaken):
            async with ctx.db.session_scope() as s:
                await scheduling.add_department(
                    s,
                    actor=scheduler_actor(world),
                    facts=rules.DepartmentFacts(
                        code=world.department.code.lower(), name="另一个内科"
                    ),
                    now=NOW,
                )
        assert await row_counts(ctx.db) == before

    async def test_renaming_keeps_the_code_free_check_to_other_departments(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            department = await scheduling.update_department(
                s,
                actor=scheduler_actor(world),
                department_id=world.department.id,
                changes={"name": "普通内科", "min_age_years": 14},
                now=NOW,
            )
        assert (department.code, department.name) == (world.department.code, "普通内科")
        with pytest.raises(rules.InvalidStructure):
            async with ctx.db.session_scope() as s:
                await scheduling.update_department(
                    s,
                    actor=scheduler_actor(world),
                    department_id=world.department.id,
                    changes={"max_age_years": 10},
                    now=NOW,
                )
        async with ctx.db.read() as s:
            kept = await s.get(Department, world.department.id)
        assert kept is not None and kept.max_age_years is None and kept.min_age_years == 14

    async def test_a_deactivated_department_is_hidden_and_generates_nothing_new(
        self, ctx: AppContext, world: World
    ) -> None:
        actor = scheduler_actor(world)
        async with ctx.db.session_scope() as s:
            await scheduling.add_template(
                s, actor=actor, shape=monday_shape(world, world.doctor.id), now=NOW
            )
            await scheduling.set_department_active(
                s, actor=actor, department_id=world.department.id, active=False, now=NOW
            )
        async with ctx.db.session_scope() as s:
            report = await scheduling.generate_sessions(
                s, hospital_id=world.hospital.id, start=NEXT_MONDAY, days=1, now=NOW
            )
            listed = await scheduling.active_departments(s, hospital_id=world.hospital.id)
        assert report.created == 0 and listed == []
        # The session already made (and anything booked in it) stays.
        assert [c.id for c in await sessions_on(ctx, VISIT_DAY)] == [world.session.id]
        with pytest.raises(rules.DepartmentInactive):
            async with ctx.db.session_scope() as s:
                await scheduling.add_template(
                    s, actor=actor, shape=monday_shape(world, None), now=NOW
                )
        with pytest.raises(rules.DepartmentInactive):
            async with ctx.db.session_scope() as s:
                await scheduling.add_doctor(
                    s,
                    actor=actor,
                    facts=rules.DoctorFacts(code="", name="周医生"),
                    department_id=world.department.id,
                    level_id=world.free_level.id,
                    now=NOW,
                )
        async with ctx.db.session_scope() as s:
            await scheduling.set_department_active(
                s, actor=actor, department_id=world.department.id, active=True, now=NOW
            )
            report = await scheduling.generate_sessions(
                s, hospital_id=world.hospital.id, start=NEXT_MONDAY, days=1, now=NOW
            )
        assert report.created == 1


class TestDoctorsInTheService:
    async def add_doctor(self, ctx: AppContext, world: World, **facts: Any) -> Doctor:
        async with ctx.db.session_scope() as s:
            return await scheduling.add_doctor(
                s,
                actor=scheduler_actor(world),
                facts=rules.DoctorFacts(**({"code": "", "name": "周医生"} | facts)),
                department_id=world.department.id,
                level_id=world.fee_level.id,
                now=NOW,
            )

    async def test_a_new_doctor_gets_a_code_and_their_rows_their_room(
        self, ctx: AppContext, world: World
    ) -> None:
        doctor = await self.add_doctor(ctx, world, title="主治医师", room="内科 3 诊室")
        assert doctor.code.startswith("DR") and len(doctor.code) == 8
        async with ctx.db.session_scope() as s:
            template = await scheduling.add_template(
                s, actor=scheduler_actor(world), shape=monday_shape(world, doctor.id), now=NOW
            )
            report = await scheduling.generate_sessions(
                s, hospital_id=world.hospital.id, start=NEXT_MONDAY, days=1, now=NOW
            )
        assert template.room == "内科 3 诊室" and report.created == 1
        [clinic] = await sessions_on(ctx, NEXT_MONDAY)
        assert (clinic.doctor_id, clinic.room) == (doctor.id, "内科 3 诊室")

    async def test_a_deactivated_doctor_gets_no_new_sessions_and_keeps_old_ones(
        self, ctx: AppContext, world: World
    ) -> None:
        actor = scheduler_actor(world)
        async with ctx.db.session_scope() as s:
            await scheduling.add_template(
                s, actor=actor, shape=monday_shape(world, world.doctor.id), now=NOW
            )
            await scheduling.set_doctor_active(
                s, actor=actor, doctor_id=world.doctor.id, active=False, now=NOW
            )
            report = await scheduling.generate_sessions(
                s, hospital_id=world.hospital.id, start=NEXT_MONDAY, days=1, now=NOW
            )
            rows = await scheduling.department_templates(
                s, hospital_id=world.hospital.id, department_id=world.department.id
            )
        assert report.created == 0 and rows == []
        assert [c.id for c in await sessions_on(ctx, VISIT_DAY)] == [world.session.id]
        with pytest.raises(rules.DoctorInactive):
            async with ctx.db.session_scope() as s:
                await scheduling.add_extra_session(
                    s,
                    actor=actor,
                    shape=scheduling.SessionShape(
                        department_id=world.department.id,
                        doctor_id=world.doctor.id,
                        level_id=world.free_level.id,
                        date=NEXT_MONDAY,
                        period=Period.MORNING,
                        start_time=rules.DEFAULT_PERIOD_HOURS[Period.MORNING][0],
                        end_time=rules.DEFAULT_PERIOD_HOURS[Period.MORNING][1],
                        capacity=5,
                        slot_minutes=30,
                    ),
                    today=VISIT_DAY,
                    now=NOW,
                )

    async def test_editing_moves_level_and_room_of_their_rows(
        self, ctx: AppContext, world: World
    ) -> None:
        actor = scheduler_actor(world)
        async with ctx.db.session_scope() as s:
            template = await scheduling.add_template(
                s, actor=actor, shape=monday_shape(world, world.doctor.id, room="1 诊室"), now=NOW
            )
            doctor = await scheduling.edit_doctor(
                s,
                actor=actor,
                doctor_id=world.doctor.id,
                changes={"name": "王建国", "level_id": world.fee_level.id, "room": "5 诊室"},
                now=NOW,
            )
        async with ctx.db.read() as s:
            row = await s.get(ScheduleTemplate, template.id)
        assert (doctor.name, doctor.room) == ("王建国", "5 诊室")
        assert row is not None and (row.level_id, row.room) == (world.fee_level.id, "5 诊室")

    async def test_a_doctor_with_rows_stays_in_their_department(
        self, ctx: AppContext, world: World
    ) -> None:
        actor = scheduler_actor(world)
        async with ctx.db.session_scope() as s:
            other = await scheduling.add_department(
                s, actor=actor, facts=rules.DepartmentFacts(code="SURG", name="外科"), now=NOW
            )
            await scheduling.add_template(
                s, actor=actor, shape=monday_shape(world, world.doctor.id), now=NOW
            )
        with pytest.raises(rules.InvalidStructure):
            async with ctx.db.session_scope() as s:
                await scheduling.edit_doctor(
                    s,
                    actor=actor,
                    doctor_id=world.doctor.id,
                    changes={"department_id": other.id},
                    now=NOW,
                )
        moved = await self.add_doctor(ctx, world, code="DR-NEW")
        async with ctx.db.session_scope() as s:
            doctor = await scheduling.edit_doctor(
                s, actor=actor, doctor_id=moved.id, changes={"department_id": other.id}, now=NOW
            )
        assert doctor.department_id == other.id


# --- the API -----------------------------------------------------------------------------


async def scheduler(client: httpx.AsyncClient, ctx: AppContext, world: World) -> dict[str, str]:
    return await staff_auth(client, ctx, world, Role.SCHEDULER)


class TestDepartmentsApi:
    async def test_a_scheduler_adds_renames_and_deactivates_a_department(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        created = await client.post(
            "/api/v1/departments",
            json={
                "code": "DERM",
                "name": "皮肤科",
                "name_en": "Dermatology",
                "location": "门诊楼 4 层",
                "min_age_years": 3,
                "sex_restriction": None,
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        department = created.json()
        assert department["active"] is True and department["min_age_years"] == 3

        def codes(response: httpx.Response) -> list[str]:
            return [d["code"] for d in response.json()]

        assert "DERM" in codes(await client.get("/api/v1/departments", headers=world.auth))
        renamed = await client.patch(
            f"/api/v1/departments/{department['id']}",
            json={"name": "皮肤性病科", "min_age_years": None},
            headers=auth,
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "皮肤性病科" and renamed.json()["min_age_years"] is None
        gone = await client.post(f"/api/v1/departments/{department['id']}/deactivate", headers=auth)
        assert gone.status_code == 200 and gone.json()["active"] is False
        assert "DERM" not in codes(await client.get("/api/v1/departments", headers=world.auth))
        # The doctors of a deactivated department are not offered either.
        gone_world = await client.post(
            f"/api/v1/departments/{world.department.id}/deactivate", headers=auth
        )
        assert gone_world.status_code == 200
        doctors = await client.get("/api/v1/doctors", headers=world.auth)
        assert str(world.doctor.id) not in [d["id"] for d in doctors.json()]
        async with ctx.db.read() as s:
            actions = (
                await s.scalars(
                    select(AuditEntry.action)
                    .where(AuditEntry.entity_type == "department")
                    .order_by(AuditEntry.at, AuditEntry.id)
                )
            ).all()
        assert set(actions) >= {"add_department", "update_department", "deactivate_department"}

    async def test_a_rename_shows_at_once_in_the_sessions_patients_read(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        params = {"department_id": str(world.department.id)}
        first = await client.get("/api/v1/sessions", params=params, headers=world.auth)
        assert first.json()[0]["department"]["name"] == world.department.name
        response = await client.patch(
            f"/api/v1/departments/{world.department.id}", json={"name": "全科"}, headers=auth
        )
        assert response.status_code == 200, response.text
        doctor = await client.patch(
            f"/api/v1/doctors/{world.doctor.id}", json={"name": "王建国"}, headers=auth
        )
        assert doctor.status_code == 200, doctor.text
        again = (await client.get("/api/v1/sessions", params=params, headers=world.auth)).json()
        assert again[0]["department"]["name"] == "全科"
        assert again[0]["doctor"]["name"] == "王建国"

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"code": "X1", "name": ""}, 422, "invalid_structure"),
            (
                {"code": "X1", "name": "儿科", "min_age_years": 15, "max_age_years": 14},
                422,
                "invalid_structure",
            ),
            ({"code": "儿科", "name": "儿科"}, 422, "invalid_structure"),
            ({"code": "X1", "name": "儿科", "sex_restriction": "X"}, 422, "validation_error"),
            (
                {"code": "X1", "name": "儿科", "campus_id": "00000000-0000-7000-8000-000000000001"},
                422,
                "invalid_structure",
            ),
        ],
    )
    async def test_bad_input_is_refused_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        body: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        assert_problem(
            await client.post("/api/v1/departments", json=body, headers=auth), status, code
        )
        assert await row_counts(ctx.db) == before

    async def test_a_duplicate_code_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        refused = await client.post(
            "/api/v1/departments",
            json={"code": world.department.code, "name": "又一个内科"},
            headers=auth,
        )
        assert assert_problem(refused, 409, "code_taken")["value"] == world.department.code
        assert await row_counts(ctx.db) == before

    async def test_a_nurse_and_a_channel_key_are_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        nurse = await staff_auth(client, ctx, world, Role.NURSE)
        before = await row_counts(ctx.db)
        dep, doc = world.department.id, world.doctor.id
        calls = [
            ("POST", "/api/v1/departments", {"code": "N1", "name": "护理部"}),
            ("PATCH", f"/api/v1/departments/{dep}", {"name": "改名"}),
            ("POST", f"/api/v1/departments/{dep}/deactivate", None),
            ("POST", f"/api/v1/departments/{dep}/reactivate", None),
            (
                "POST",
                "/api/v1/doctors",
                {"name": "周医生", "department_id": str(dep), "level_code": "x"},
            ),
            ("PATCH", f"/api/v1/doctors/{doc}", {"name": "改名"}),
            ("POST", f"/api/v1/doctors/{doc}/deactivate", None),
            ("POST", f"/api/v1/doctors/{doc}/reactivate", None),
        ]
        for headers in (nurse, world.auth):
            for method, path, body in calls:
                response = await client.request(method, path, json=body, headers=headers)
                assert response.status_code == 403, (method, path, response.text)
        assert await row_counts(ctx.db) == before


class TestDoctorsApi:
    async def test_a_scheduler_adds_edits_and_deactivates_a_doctor(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        created = await client.post(
            "/api/v1/doctors",
            json={
                "name": "周敏",
                "title": "副主任医师",
                "title_en": "Associate Chief Physician",
                "department_id": str(world.department.id),
                "level_code": world.fee_level.code,
                "room": "内科 7 诊室",
            },
            headers=auth,
        )
        assert created.status_code == 201, created.text
        doctor = created.json()
        assert doctor["level_code"] == world.fee_level.code and doctor["room"] == "内科 7 诊室"
        listed = await client.get("/api/v1/doctors", headers=world.auth)
        assert doctor["id"] in [d["id"] for d in listed.json()]
        edited = await client.patch(
            f"/api/v1/doctors/{doctor['id']}",
            json={"level_code": world.free_level.code, "title": "主任医师"},
            headers=auth,
        )
        assert edited.status_code == 200, edited.text
        assert (edited.json()["level_code"], edited.json()["title"]) == (
            world.free_level.code,
            "主任医师",
        )
        gone = await client.post(f"/api/v1/doctors/{doctor['id']}/deactivate", headers=auth)
        assert gone.status_code == 200 and gone.json()["active"] is False
        listed = await client.get("/api/v1/doctors", headers=world.auth)
        assert doctor["id"] not in [d["id"] for d in listed.json()]
        refused = await client.post(
            "/api/v1/schedule-templates",
            json={
                "department_id": str(world.department.id),
                "doctor_id": doctor["id"],
                "weekday": 0,
                "period": "morning",
            },
            headers=auth,
        )
        assert_problem(refused, 409, "doctor_inactive")

    @pytest.mark.parametrize(
        ("changes", "status", "code"),
        [
            ({"name": ""}, 422, "invalid_structure"),
            ({"level_code": "nonesuch"}, 404, "not_found"),
            ({"department_id": "00000000-0000-7000-8000-000000000001"}, 404, "not_found"),
            ({"code": "DR X"}, 422, "invalid_structure"),
            ({"room": "室" * 101}, 422, "validation_error"),
        ],
    )
    async def test_bad_input_is_refused_and_changes_nothing(
        self,
        client: httpx.AsyncClient,
        ctx: AppContext,
        world: World,
        changes: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        auth = await scheduler(client, ctx, world)
        before = await row_counts(ctx.db)
        body = {
            "name": "周敏",
            "department_id": str(world.department.id),
            "level_code": world.free_level.code,
        } | changes
        assert_problem(await client.post("/api/v1/doctors", json=body, headers=auth), status, code)
        assert await row_counts(ctx.db) == before

    async def test_a_doctor_is_not_added_to_a_deactivated_department(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await scheduler(client, ctx, world)
        response = await client.post(
            f"/api/v1/departments/{world.department.id}/deactivate", headers=auth
        )
        assert response.status_code == 200
        before = await row_counts(ctx.db)
        refused = await client.post(
            "/api/v1/doctors",
            json={
                "name": "周敏",
                "department_id": str(world.department.id),
                "level_code": world.free_level.code,
            },
            headers=auth,
        )
        assert_problem(refused, 409, "department_inactive")
        assert await row_counts(ctx.db) == before


class TestCodesUnderConcurrency:
    async def test_two_schedulers_saving_one_code_at_once_make_one_department(
        self, ctx: AppContext, world: World
    ) -> None:
        """Both read the codes before either saves; the unique constraint turns the second
        into `code_taken`, never a second department or an unexplained failure."""

        async def add(name: str) -> None:
            async def work(s: AsyncSession) -> None:
                await scheduling.add_department(
                    s,
                    actor=scheduler_actor(world),
                    facts=rules.DepartmentFacts(code="ICU", name=name),
                    now=NOW,
                )

            await ctx.db.transact(work)

        results = await asyncio.gather(add("重症医学科"), add("ICU"), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["CodeTaken", "NoneType"], results
        async with ctx.db.read() as s:
            saved = (await s.scalars(select(Department.name).where(Department.code == "ICU"))).all()
        assert len(saved) == 1
