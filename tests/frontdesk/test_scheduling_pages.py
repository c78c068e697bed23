"""The scheduler's pages over HTTP: the week of sessions with their places, extra sessions
and extra places, the weekly timetable and generating from it, pool ratios and the booking
policy, doctors' levels and rooms. Every change is audited by its service; every refusal
is a sentence and changes nothing; only schedulers (and administrators) may open them."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import date, time, timedelta

import httpx
import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY
from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from tests.portal.conftest import Browser
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.frontdesk.timetable import monday_of
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Doctor,
    PoolRatio,
    ScheduleTemplate,
    SlotPool,
)
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import system_actor

# The floor's clock stands on Monday VISIT_DAY (2026-11-23) at 08:10 in Shanghai.
TOMORROW = VISIT_DAY + timedelta(days=1)
NEXT_MONDAY = VISIT_DAY + timedelta(days=7)


async def scheduler(http: httpx.AsyncClient, path: str = "/scheduling/week") -> Browser:  # noqa: F811
    office = await staff(http, "scheduler")
    page = await office.page(path)
    assert page.status_code == 200, page.text
    return office


async def audit_actions(floor: Floor) -> list[str]:  # noqa: F811
    async with floor.ctx.db.read() as s:
        return list((await s.scalars(select(AuditEntry.action).order_by(AuditEntry.at))).all())


async def held_booking(floor: Floor) -> ClinicSession:  # noqa: F811
    """An afternoon session at a fee level with one booking held for payment."""
    world = floor.world
    async with floor.ctx.db.session_scope() as s:
        clinic = await f.make_session(
            s,
            hospital=world.hospital,
            department=world.department,
            level=world.fee_level,
            doctor=world.doctor,
            day=VISIT_DAY,
            period=Period.AFTERNOON,
            start=time(13, 30),
            end=time(17, 30),
            capacity=8,
            now=NOW,
        )
    actor = replace(system_actor(world.hospital.id, "test"), channel=Channel.APP)
    async with floor.ctx.db.session_scope() as s:
        booked = await booking_service.book(
            s,
            actor=actor,
            patient_id=world.other_patient.id,
            session_id=clinic.id,
            slot_id=None,
            now=NOW,
        )
        assert booked.appointment.status == AppointmentStatus.HELD
    return clinic


def numbers(html: str, session_id: object) -> tuple[int, int, int]:
    """(booked, held, free) that the week view shows for a session."""
    found = re.search(
        rf'data-session="{session_id}".*?data-booked="(\d+)" data-held="(\d+)" data-free="(\d+)"',
        html,
        re.S,
    )
    assert found is not None, html
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


class TestMondays:
    @pytest.mark.parametrize(
        ("text", "monday"),
        [
            (None, date(2026, 11, 23)),
            ("2026-11-26", date(2026, 11, 23)),
            ("2026-11-30", date(2026, 11, 30)),
            ("2026-W49", date(2026, 11, 30)),
            ("not a week", date(2026, 11, 23)),
            ("2026-W99", date(2026, 11, 23)),
        ],
    )
    def test_any_day_or_iso_week_means_its_monday(self, text: str | None, monday: date) -> None:
        assert monday_of(text, date(2026, 11, 25)) == monday


class TestWeekView:
    async def test_each_session_shows_booked_held_and_free_places(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await book(floor)
        afternoon = await held_booking(floor)
        office = await scheduler(http)
        week = await office.page(f"/scheduling/week?department={floor.world.department.id}")
        assert week.status_code == 200
        assert week.text.count('data-testid="week-session"') == 2
        assert numbers(week.text, floor.world.session.id) == (1, 0, 24)
        assert numbers(week.text, afternoon.id) == (0, 1, 7)
        # Stopping is the wizard's; the week links to it.
        assert f'href="/desk/stop-clinic/{floor.world.session.id}"' in week.text

        detail = await office.page(f"/scheduling/sessions/{afternoon.id}")
        assert detail.status_code == 200
        pools = dict(re.findall(r'data-pool="(\w+)"><td>[^<]*</td><td>(\d+)</td>', detail.text))
        assert pools == {"appointment": "5", "onsite": "2", "reserved": "1"}
        assert detail.text.count('data-testid="session-slot"') == 8

    async def test_another_week_and_an_unknown_department_still_answer(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http)
        later = await office.page("/scheduling/week?department=nonsense&week=2026-W50")
        assert later.status_code == 200
        assert 'data-testid="week-empty"' in later.text
        assert "12月7日" in later.text
        english = await office.page("/scheduling/week", headers={"Accept-Language": "en"})
        assert "Week of sessions" in english.text

    async def test_an_extra_session_is_added_and_shown_as_extra(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http)
        added = await office.submit(
            "/scheduling/sessions",
            {
                "department": str(floor.world.department.id),
                "doctor_id": str(floor.world.doctor.id),
                "date": TOMORROW.isoformat(),
                "period": "evening",
                "capacity": "12",
                "slot_minutes": "30",
                "room": "3诊室",
            },
        )
        assert added.status_code == 303, added.text
        week = await office.page(added.headers["location"])
        assert "已加诊：11月24日 周二 夜间，12 个号。" in week.text
        assert 'data-testid="session-extra"' in week.text
        assert "3诊室" in week.text
        async with floor.ctx.db.read() as s:
            extra = await s.scalar(select(ClinicSession).where(ClinicSession.is_extra.is_(True)))
        assert extra is not None and extra.capacity == 12 and extra.date == TOMORROW
        assert "extra_session" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "status", "sentence"),
        [
            ({"date": "2026-11-20"}, 422, "加诊不能安排在过去的日期"),
            ({"capacity": "0"}, 422, "号数（1–500）"),
            ({"start": "20:00", "end": "19:00"}, 422, "结束时间"),
            ({"doctor_id": ""}, 422, "号别"),
            ({"level_code": "nonexistent"}, 404, "未找到号别"),
        ],
    )
    async def test_a_bad_extra_session_is_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        status: int,
        sentence: str,
    ) -> None:
        office = await scheduler(http)
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            "/scheduling/sessions",
            {
                "department": str(floor.world.department.id),
                "doctor_id": str(floor.world.doctor.id),
                "date": TOMORROW.isoformat(),
                "period": "evening",
                **fields,
            },
        )
        assert refused.status_code == status, refused.text
        assert sentence in refused.text
        assert 'data-testid="week-grid"' in refused.text
        assert await row_counts(floor.ctx.db) == before


class TestExtraPlaces:
    async def test_places_are_added_to_the_chosen_pool_and_audited(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        clinic = floor.world.session
        office = await scheduler(http, f"/scheduling/sessions/{clinic.id}")
        added = await office.submit(
            f"/scheduling/sessions/{clinic.id}/extra-places", {"count": "3", "pool": "onsite"}
        )
        assert added.status_code == 303, added.text
        page = await office.page(added.headers["location"])
        assert "已加号 3 个" in page.text
        async with floor.ctx.db.read() as s:
            extra = (await s.scalars(select(SlotPool).where(SlotPool.is_extra.is_(True)))).all()
            capacity = await s.scalar(
                select(ClinicSession.capacity).where(ClinicSession.id == clinic.id)
            )
        assert [(p.pool, p.capacity) for p in extra] == [("onsite", 3)]
        assert capacity == 28
        assert "extra_places" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "status", "sentence"),
        [
            ({"count": "0"}, 422, "加号数量（1–100）"),
            ({"count": "many"}, 422, "加号数量"),
            ({"count": "2", "pool": "vip"}, 422, "未知的号源池：vip"),
        ],
    )
    async def test_bad_extra_places_are_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        status: int,
        sentence: str,
    ) -> None:
        clinic = floor.world.session
        office = await scheduler(http, f"/scheduling/sessions/{clinic.id}")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(f"/scheduling/sessions/{clinic.id}/extra-places", fields)
        assert refused.status_code == status, refused.text
        assert sentence in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_a_stopped_session_takes_no_extra_places(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        clinic = floor.world.session
        office = await scheduler(http, f"/desk/stop-clinic/{clinic.id}")
        stopped = await office.submit(
            f"/desk/stop-clinic/{clinic.id}", {"substitute": "none", "reason": "医生出差"}
        )
        assert stopped.status_code == 303
        page = await office.page(f"/scheduling/sessions/{clinic.id}")
        assert 'data-testid="extra-places-form"' not in page.text
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            f"/scheduling/sessions/{clinic.id}/extra-places", {"count": "2"}
        )
        assert refused.status_code == 422
        assert "该出诊已停诊" in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_an_unknown_session_is_not_found(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http)
        assert (await office.page(f"/scheduling/sessions/{uuid.uuid4()}")).status_code == 404


class TestTemplates:
    async def add_row(
        self,
        office: Browser,
        floor: Floor,  # noqa: F811
        **fields: str,
    ) -> httpx.Response:
        return await office.submit(
            "/scheduling/templates",
            {
                "department": str(floor.world.department.id),
                "doctor_id": str(floor.world.doctor.id),
                "weekday": "2",
                "period": "afternoon",
                "capacity": "10",
                "slot_minutes": "60",
                "room": "5诊室",
                **fields,
            },
        )

    async def templates(self, floor: Floor) -> list[ScheduleTemplate]:  # noqa: F811
        async with floor.ctx.db.read() as s:
            return list((await s.scalars(select(ScheduleTemplate))).all())

    async def test_a_row_is_added_and_next_week_generated_from_it(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/templates")
        added = await self.add_row(office, floor)
        assert added.status_code == 303, added.text
        page = await office.page(added.headers["location"])
        assert "已加入排班" in page.text
        assert page.text.count('data-testid="template-row"') == 1
        assert "下午 10号" in page.text
        [template] = await self.templates(floor)
        assert (template.weekday, template.capacity, template.room) == (2, 10, "5诊室")
        assert template.level_id == floor.world.free_level.id  # the doctor's level

        generated = await office.submit(
            "/scheduling/generate",
            {"department": str(floor.world.department.id), "week": NEXT_MONDAY.isoformat()},
        )
        assert generated.status_code == 303, generated.text
        shown = await office.page(generated.headers["location"])
        assert "新建 1 个" in shown.text
        week = await office.page(
            f"/scheduling/week?department={floor.world.department.id}&week={NEXT_MONDAY}"
        )
        assert week.text.count('data-testid="week-session"') == 1
        assert 'data-day="2026-12-02" data-period="afternoon"' in week.text
        cell = week.text.split('data-day="2026-12-02" data-period="afternoon"')[1]
        assert "王医生" in cell.split("</td>")[0]
        # Again: nothing new.
        again = await office.submit(
            "/scheduling/generate",
            {"department": str(floor.world.department.id), "week": NEXT_MONDAY.isoformat()},
        )
        assert "created=0" in again.headers["location"]
        assert "unchanged=1" in again.headers["location"]
        assert (await audit_actions(floor)).count("add_template") == 1

    async def test_a_row_is_changed_and_a_generated_session_follows(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/templates")
        await self.add_row(office, floor)
        await office.submit(
            "/scheduling/generate",
            {"department": str(floor.world.department.id), "week": NEXT_MONDAY.isoformat()},
        )
        [template] = await self.templates(floor)
        changed = await office.submit(
            f"/scheduling/templates/{template.id}",
            {
                "department": str(floor.world.department.id),
                "level_code": floor.world.fee_level.code,
                "period": "afternoon",
                "start": "14:00",
                "end": "17:00",
                "capacity": "6",
                "slot_minutes": "30",
                "room": "6诊室",
            },
        )
        assert changed.status_code == 303, changed.text
        [template] = await self.templates(floor)
        assert (template.capacity, template.start_time, template.room) == (6, time(14), "6诊室")
        assert template.level_id == floor.world.fee_level.id
        regenerated = await office.submit(
            "/scheduling/generate",
            {"department": str(floor.world.department.id), "week": NEXT_MONDAY.isoformat()},
        )
        assert "rebuilt=1" in regenerated.headers["location"]
        async with floor.ctx.db.read() as s:
            clinic = await s.scalar(
                select(ClinicSession).where(ClinicSession.template_id == template.id)
            )
        assert clinic is not None and clinic.capacity == 6 and clinic.fee_fen == 8000
        assert "update_template" in await audit_actions(floor)

    async def test_removing_a_row_withdraws_unbooked_sessions_and_keeps_booked_ones(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/templates")
        await self.add_row(office, floor, weekday="1")  # Tuesdays
        for week in (VISIT_DAY, NEXT_MONDAY):
            await office.submit(
                "/scheduling/generate",
                {"department": str(floor.world.department.id), "week": week.isoformat()},
            )
        [template] = await self.templates(floor)
        async with floor.ctx.db.read() as s:
            tomorrow, next_tuesday = (
                await s.scalars(
                    select(ClinicSession)
                    .where(ClinicSession.template_id == template.id)
                    .order_by(ClinicSession.date)
                )
            ).all()
        actor = replace(system_actor(floor.world.hospital.id, "test"), channel=Channel.APP)
        async with floor.ctx.db.session_scope() as s:
            await booking_service.book(
                s,
                actor=actor,
                patient_id=floor.world.other_patient.id,
                session_id=tomorrow.id,
                slot_id=None,
                now=NOW,
            )
        removed = await office.submit(
            f"/scheduling/templates/{template.id}/remove",
            {"department": str(floor.world.department.id)},
        )
        assert removed.status_code == 303, removed.text
        page = await office.page(removed.headers["location"])
        assert "撤下 1 个无人预约的出诊；1 个已有预约的出诊保留" in page.text
        assert 'data-testid="template-row"' not in page.text
        async with floor.ctx.db.read() as s:
            left = (
                await s.scalars(
                    select(ClinicSession.id).where(ClinicSession.template_id == template.id)
                )
            ).all()
            booked = await s.scalar(
                select(Appointment.session_id).where(
                    Appointment.patient_id == floor.world.other_patient.id
                )
            )
        assert list(left) == [tomorrow.id] and booked == tomorrow.id
        assert next_tuesday.id not in left
        [template] = await self.templates(floor)
        assert template.active is False
        assert "remove_template" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "status", "sentence"),
        [
            ({"capacity": "0"}, 422, "号数（1–500）"),
            ({"slot_minutes": "1"}, 422, "每时段分钟（5–240）"),
            ({"weekday": "7"}, 422, "星期"),
            ({"start": "17:00", "end": "13:00"}, 422, "结束时间"),
            ({"doctor_id": ""}, 422, "号别"),
            ({"doctor_id": str(uuid.UUID(int=7))}, 404, "未找到医生"),
        ],
    )
    async def test_a_bad_row_is_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        status: int,
        sentence: str,
    ) -> None:
        office = await scheduler(http, "/scheduling/templates")
        before = await row_counts(floor.ctx.db)
        refused = await self.add_row(office, floor, **fields)
        assert refused.status_code == status, refused.text
        assert sentence in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_bad_changes_and_past_weeks_are_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/templates")
        await self.add_row(office, floor)
        [template] = await self.templates(floor)
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            f"/scheduling/templates/{template.id}",
            {"level_code": "nonexistent", "period": "afternoon", "capacity": "5"},
        )
        assert refused.status_code == 404
        assert "未找到号别" in refused.text
        past = await office.submit(
            "/scheduling/generate",
            {"department": str(floor.world.department.id), "week": "2026-11-16"},
        )
        assert past.status_code == 422
        assert "不能为已经过去的日期生成出诊" in past.text
        unknown = await office.submit(f"/scheduling/templates/{uuid.uuid4()}/remove", {})
        assert unknown.status_code == 404
        assert await row_counts(floor.ctx.db) == before
        [unchanged] = await self.templates(floor)
        assert unchanged.capacity == 10


class TestSettings:
    async def test_a_departments_pool_ratios_are_saved_and_shown(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        department = floor.world.department.id
        office = await scheduler(http, f"/scheduling/settings?department={department}")
        page = await office.page(f"/scheduling/settings?department={department}")
        assert "系统默认" in page.text
        saved = await office.submit(
            "/scheduling/settings/ratios",
            {
                "department": str(department),
                "ratio_appointment": "50",
                "ratio_onsite": "30",
                "ratio_reserved": "10",
                "ratio_wechat": "10",
                "ratio_window": "0",
            },
        )
        assert saved.status_code == 303, saved.text
        shown = await office.page(saved.headers["location"])
        assert "号源比例已保存" in shown.text and "本科室的设置" in shown.text
        async with floor.ctx.db.read() as s:
            rows = {
                r.pool: r.percent
                for r in (await s.scalars(select(PoolRatio))).all()
                if r.department_id == department
            }
        assert rows == {"appointment": 50, "onsite": 30, "reserved": 10, "wechat": 10}
        assert "set_pool_ratios" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "sentence"),
        [
            ({"ratio_appointment": "60", "ratio_onsite": "30"}, "合计须为 100"),
            ({"ratio_appointment": "abc"}, "比例须为 0 到 100 的整数"),
            ({"ratio_appointment": "150"}, "号源比例（0–100）"),
        ],
    )
    async def test_bad_ratios_are_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        sentence: str,
    ) -> None:
        office = await scheduler(http, "/scheduling/settings")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit("/scheduling/settings/ratios", fields)
        assert refused.status_code == 422, refused.text
        assert sentence in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_the_hospital_policy_and_a_department_override_are_saved(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/settings")
        page = await office.page("/scheduling/settings")
        form = dict(re.findall(r'name="(\w+)" type="(?:time|number)" value="([^"]*)"', page.text))
        assert form["hold_minutes"] == "15" and form["release_time"] == "08:00"
        saved = await office.submit(
            "/scheduling/settings/policy",
            {**form, "hold_minutes": "20", "release_days_ahead": "14", "waitlist_enabled": "on"},
        )
        assert saved.status_code == 303, saved.text
        department = floor.world.department.id
        override = await office.submit(
            "/scheduling/settings/policy",
            {"department": str(department), "cancel_deadline_time": "12:00"},
        )
        assert override.status_code == 303, override.text
        shown = await office.page(override.headers["location"])
        assert "本科室单独的规则" in shown.text
        async with floor.ctx.db.read() as s:
            rows = {r.department_id: r for r in (await s.scalars(select(BookingPolicy))).all()}
        hospital, own = rows[None], rows[department]
        assert (hospital.hold_minutes, hospital.release_days_ahead) == (20, 14)
        assert hospital.same_day_booking is False  # the box was not ticked
        assert own.cancel_deadline_time == time(12, 0) and own.hold_minutes == 20
        assert (await audit_actions(floor)).count("update_policy") == 2

    @pytest.mark.parametrize(
        "fields",
        [
            {"hold_minutes": "0"},
            {"release_days_ahead": "200"},
            {"release_time": "25:00"},
            {"limit_per_day": "x"},
        ],
    )
    async def test_a_bad_policy_is_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
    ) -> None:
        office = await scheduler(http, "/scheduling/settings")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit("/scheduling/settings/policy", fields)
        assert refused.status_code == 422, refused.text
        assert "提交的内容有误" in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_another_hospitals_department_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/settings")
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            "/scheduling/settings/ratios",
            {"department": str(uuid.uuid4()), "ratio_appointment": "100"},
        )
        assert refused.status_code == 404
        assert await row_counts(floor.ctx.db) == before


class TestDoctors:
    async def test_a_doctors_level_and_room_change_with_their_timetable(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        office = await scheduler(http, "/scheduling/templates")
        await TestTemplates().add_row(office, floor)
        page = await office.page("/scheduling/doctors")
        assert "王医生" in page.text and "5诊室" in page.text and "主任医师" in page.text
        changed = await office.submit(
            f"/scheduling/doctors/{world.doctor.id}",
            {"level_code": world.fee_level.code, "room": "8诊室"},
        )
        assert changed.status_code == 303, changed.text
        shown = await office.page(changed.headers["location"])
        assert "已保存 王医生 的号别和诊室" in shown.text and "8诊室" in shown.text
        async with floor.ctx.db.read() as s:
            doctor = await s.get(Doctor, world.doctor.id)
            template = await s.scalar(select(ScheduleTemplate))
        assert doctor is not None and doctor.level_id == world.fee_level.id
        assert template is not None and template.level_id == world.fee_level.id
        assert template.room == "8诊室"
        assert "update_doctor" in await audit_actions(floor)

    async def test_an_unknown_level_or_doctor_is_refused_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, "/scheduling/doctors")
        before = await row_counts(floor.ctx.db)
        unknown_level = await office.submit(
            f"/scheduling/doctors/{floor.world.doctor.id}", {"level_code": "nonexistent"}
        )
        assert unknown_level.status_code == 404 and "未找到号别" in unknown_level.text
        no_level = await office.submit(f"/scheduling/doctors/{floor.world.doctor.id}", {})
        assert no_level.status_code == 422
        unknown_doctor = await office.submit(
            f"/scheduling/doctors/{uuid.uuid4()}", {"level_code": floor.world.fee_level.code}
        )
        assert unknown_doctor.status_code == 404
        long_room = await office.submit(
            f"/scheduling/doctors/{floor.world.doctor.id}",
            {"level_code": floor.world.fee_level.code, "room": "室" * 101},
        )
        assert long_room.status_code == 422
        assert await row_counts(floor.ctx.db) == before


PAGES = [
    "/scheduling/week",
    "/scheduling/templates",
    "/scheduling/settings",
    "/scheduling/doctors",
]


class TestWhoMay:
    async def test_nobody_signed_in_is_sent_to_sign_in(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        for path in PAGES:
            answer = await http.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/staff/signin?next={path}"

    async def test_a_nurse_opens_nothing_and_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        for path in [*PAGES, f"/scheduling/sessions/{floor.world.session.id}"]:
            assert (await nurse.page(path)).status_code == 403, path
        before = await row_counts(floor.ctx.db)
        for path, form in self.posts(floor):
            assert (await nurse.submit(path, form)).status_code == 403, path
        assert await row_counts(floor.ctx.db) == before

    async def test_a_form_without_its_token_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await scheduler(http)
        before = await row_counts(floor.ctx.db)
        for path, form in self.posts(floor):
            assert (await http.post(path, data=form)).status_code == 403, path
            forged = await http.post(path, data={**form, "csrf": "0" * 32})
            assert forged.status_code == 403, path
        assert await row_counts(floor.ctx.db) == before

    def posts(self, floor: Floor) -> list[tuple[str, dict[str, str]]]:  # noqa: F811
        world = floor.world
        return [
            (
                "/scheduling/sessions",
                {
                    "department": str(world.department.id),
                    "date": TOMORROW.isoformat(),
                    "period": "evening",
                    "level_code": world.free_level.code,
                },
            ),
            (f"/scheduling/sessions/{world.session.id}/extra-places", {"count": "2"}),
            (
                "/scheduling/templates",
                {
                    "department": str(world.department.id),
                    "doctor_id": str(world.doctor.id),
                    "weekday": "1",
                    "period": "morning",
                },
            ),
            ("/scheduling/generate", {"week": NEXT_MONDAY.isoformat()}),
            ("/scheduling/settings/ratios", {"ratio_appointment": "100"}),
            ("/scheduling/settings/policy", {"hold_minutes": "30"}),
            (f"/scheduling/doctors/{world.doctor.id}", {"level_code": world.fee_level.code}),
        ]
