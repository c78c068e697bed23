"""The scheduler's pages for the hospital's structure over HTTP: adding, editing and
deactivating departments and doctors. Every change is audited by the service and shows at
once on the patients' pages; every refusal is a sentence in the form, keeps what was typed
and changes nothing; only schedulers (and administrators) may open them."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from tests.frontdesk.test_pages import Floor, floor, http, staff  # noqa: F401  (fixtures)
from tests.frontdesk.test_scheduling_pages import audit_actions, scheduler
from tests.helpers import row_counts
from yuyue.scheduling.models import Department, Doctor


def department_form(**changes: str) -> dict[str, str]:
    return {
        "code": "PED",
        "name": "儿科",
        "name_en": "Paediatrics",
        "location": "门诊楼 2 层",
        "max_age_years": "14",
        "what_to_bring": "儿童医保卡",
        **changes,
    }


class TestDepartmentPages:
    async def test_a_scheduler_adds_edits_and_deactivates_a_department(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/departments")
        added = await office.submit("/scheduling/departments", department_form())
        assert added.status_code == 303, added.text
        shown = await office.page(added.headers["location"])
        assert "已新增科室" in shown.text and "儿科" in shown.text
        async with floor.ctx.db.read() as s:
            department = await s.scalar(select(Department).where(Department.code == "PED"))
        assert department is not None and department.max_age_years == 14
        assert "儿科" in (await http.get("/departments")).text

        edit = await office.page(f"/scheduling/departments/{department.id}")
        assert edit.status_code == 200 and 'value="儿童医保卡"' not in edit.text
        assert "儿童医保卡" in edit.text
        saved = await office.submit(
            f"/scheduling/departments/{department.id}",
            department_form(name="小儿内科", max_age_years="", min_age_years=""),
        )
        assert saved.status_code == 303, saved.text
        assert "小儿内科" in (await http.get("/departments")).text

        gone = await office.submit(f"/scheduling/departments/{department.id}/deactivate")
        assert gone.status_code == 303, gone.text
        listing = await office.page(gone.headers["location"])
        assert "科室已停用" in listing.text and 'data-active="no"' in listing.text
        assert "小儿内科" not in (await http.get("/departments")).text
        async with floor.ctx.db.read() as s:
            kept = await s.get(Department, department.id)
        assert kept is not None and not kept.active and kept.max_age_years is None
        assert {"add_department", "update_department", "deactivate_department"} <= set(
            await audit_actions(floor)
        )

    @pytest.mark.parametrize(
        ("changes", "sentence"),
        [
            ({"name": ""}, "名称不能为空"),
            ({"min_age_years": "15", "max_age_years": "14"}, "最小年龄不能大于最大年龄"),
            ({"code": "儿 科"}, "编码须为"),
            ({"max_age_years": "old"}, "最大年龄"),
        ],
    )
    async def test_bad_input_is_a_sentence_in_the_form_and_saves_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        changes: dict[str, str],
        sentence: str,
    ) -> None:
        office = await scheduler(http, "/scheduling/departments")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit("/scheduling/departments", department_form(**changes))
        assert refused.status_code == 422, refused.text
        assert sentence in refused.text
        # What was typed is still in the form.
        assert 'value="门诊楼 2 层"' in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_a_code_in_use_is_refused_in_english_too(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/departments")
        before = await row_counts(floor.ctx.db)
        code = floor.world.department.code
        refused = await office.submit("/scheduling/departments", department_form(code=code))
        assert refused.status_code == 409 and f"编码 {code} 已在本院使用" in refused.text
        english = await http.post(
            "/scheduling/departments",
            data={"csrf": office.csrf, **department_form(code=code)},
            headers={"Accept-Language": "en"},
        )
        assert f"The code {code} is already used in the hospital" in english.text
        assert await row_counts(floor.ctx.db) == before


class TestDoctorPages:
    async def test_a_scheduler_adds_edits_and_deactivates_a_doctor(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        office = await scheduler(http, "/scheduling/doctors")
        added = await office.submit(
            "/scheduling/doctors",
            {
                "name": "周敏",
                "title": "副主任医师",
                "title_en": "Associate Chief Physician",
                "department_id": str(world.department.id),
                "level_code": world.fee_level.code,
                "room": "内科 7 诊室",
            },
        )
        assert added.status_code == 303, added.text
        listing = await office.page(added.headers["location"])
        assert "已新增医生 周敏" in listing.text
        async with floor.ctx.db.read() as s:
            doctor = await s.scalar(select(Doctor).where(Doctor.name == "周敏"))
        assert doctor is not None and doctor.room == "内科 7 诊室"
        assert doctor.level_id == world.fee_level.id

        edit = await office.page(f"/scheduling/doctors/{doctor.id}")
        assert edit.status_code == 200 and 'value="副主任医师"' in edit.text
        saved = await office.submit(
            f"/scheduling/doctors/{doctor.id}/edit",
            {
                "code": doctor.code,
                "name": "周敏",
                "title": "主任医师",
                "department_id": str(world.department.id),
                "level_code": world.free_level.code,
                "room": "内科 8 诊室",
            },
        )
        assert saved.status_code == 303, saved.text
        gone = await office.submit(f"/scheduling/doctors/{doctor.id}/deactivate")
        assert gone.status_code == 303, gone.text
        listing = await office.page(gone.headers["location"])
        assert "已停用 周敏" in listing.text and 'data-testid="inactive-doctor"' in listing.text
        async with floor.ctx.db.read() as s:
            kept = await s.get(Doctor, doctor.id)
        assert kept is not None and not kept.active
        assert (kept.title, kept.room, kept.level_id) == (
            "主任医师",
            "内科 8 诊室",
            world.free_level.id,
        )
        assert {"add_doctor", "edit_doctor", "deactivate_doctor"} <= set(await audit_actions(floor))

    @pytest.mark.parametrize(
        ("changes", "status", "sentence"),
        [
            ({"name": ""}, 422, "名称不能为空"),
            ({"level_code": "nonesuch"}, 404, "未找到号别"),
            ({"code": "DR 1"}, 422, "编码须为"),
            ({"department_id": "not-a-department"}, 422, "科室"),
        ],
    )
    async def test_bad_input_is_a_sentence_in_the_form_and_saves_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        changes: dict[str, str],
        status: int,
        sentence: str,
    ) -> None:
        world = floor.world
        office = await scheduler(http, "/scheduling/doctors")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            "/scheduling/doctors",
            {
                "name": "周敏",
                "department_id": str(world.department.id),
                "level_code": world.free_level.code,
                "room": "内科 7 诊室",
            }
            | changes,
        )
        assert refused.status_code == status, refused.text
        assert sentence in refused.text
        assert 'value="内科 7 诊室"' in refused.text
        assert await row_counts(floor.ctx.db) == before


class TestWhoMay:
    async def test_a_nurse_opens_nothing_and_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        for path in (
            "/scheduling/departments",
            f"/scheduling/departments/{world.department.id}",
            f"/scheduling/doctors/{world.doctor.id}",
        ):
            assert (await nurse.page(path)).status_code == 403, path
        before = await row_counts(floor.ctx.db)
        for path, form in (
            ("/scheduling/departments", department_form()),
            (f"/scheduling/departments/{world.department.id}", department_form()),
            (f"/scheduling/departments/{world.department.id}/deactivate", {}),
            (f"/scheduling/departments/{world.department.id}/reactivate", {}),
            (
                "/scheduling/doctors",
                {
                    "name": "周敏",
                    "department_id": str(world.department.id),
                    "level_code": world.free_level.code,
                },
            ),
            (f"/scheduling/doctors/{world.doctor.id}/edit", {"name": "改名"}),
            (f"/scheduling/doctors/{world.doctor.id}/deactivate", {}),
            (f"/scheduling/doctors/{uuid.uuid4()}/reactivate", {}),
        ):
            assert (await nurse.submit(path, form)).status_code == 403, path
        assert await row_counts(floor.ctx.db) == before

    async def test_a_form_without_its_token_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await scheduler(http, "/scheduling/departments")
        before = await row_counts(floor.ctx.db)
        for path in (
            "/scheduling/departments",
            f"/scheduling/departments/{floor.world.department.id}/deactivate",
            f"/scheduling/doctors/{floor.world.doctor.id}/deactivate",
        ):
            assert (await http.post(path, data=department_form())).status_code == 403, path
        assert await row_counts(floor.ctx.db) == before
