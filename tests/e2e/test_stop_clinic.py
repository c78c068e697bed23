"""Stopping a clinic with a substitute (停诊/替诊) in a browser: the demo's scheduler finds
Dr Lin's Monday afternoon clinic from the console's menu, sees its two bookings,
chooses a colleague of the same level who has room, previews what happens to each booking
and confirms; both patients keep their number and time with the new doctor. Screenshots
for docs/staff-guide.md."""

from __future__ import annotations

import uuid

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests import factories as f
from tests.e2e import hospital as h
from tests.e2e.conftest import NOW, LiveServer, screenshot
from tests.e2e.test_visit_day import (  # noqa: F401  (fixture)
    MONDAY,
    booked_token,
    desktop,
    staff_sign_in,
)
from yuyue.booking.models import Appointment
from yuyue.booking.states import ACTIVE_STATUSES
from yuyue.scheduling.enums import Period
from yuyue.scheduling.models import ClinicSession, Department, Doctor, RegistrationLevel
from yuyue.web.context import AppContext


async def colleague_session(ctx: AppContext, session_id: uuid.UUID, name: str) -> uuid.UUID:
    """A doctor of the same department and level, holding the same Monday afternoon (made
    for this test, so the other browser tests' clinics stay as they are)."""
    async with ctx.db.session_scope() as s:
        clinic = await s.get(ClinicSession, session_id)
        assert clinic is not None
        hospital = await h.demo_hospital(ctx)
        department = await s.get(Department, clinic.department_id)
        level = await s.get(RegistrationLevel, clinic.level_id)
        assert department is not None and level is not None
        doctor = await f.make_doctor(
            s, hospital=hospital, department=department, level=level, name=name
        )
        substitute = await f.make_session(
            s,
            hospital=hospital,
            department=department,
            level=level,
            doctor=doctor,
            day=clinic.date,
            period=Period(clinic.period),
            start=clinic.start_time,
            end=clinic.end_time,
            capacity=clinic.capacity,
            slot_minutes=clinic.slot_minutes,
            now=NOW,
        )
        return substitute.id


async def active_with(ctx: AppContext, session_id: uuid.UUID) -> list[tuple[int, str]]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(Appointment.sequence_number, Doctor.name)
            .join(Doctor, Doctor.id == Appointment.doctor_id)
            .where(Appointment.session_id == session_id, Appointment.status.in_(ACTIVE_STATUSES))
            .order_by(Appointment.sequence_number)
        )
        return [(number, name) for number, name in rows]


class TestStopClinic:
    async def test_the_scheduler_moves_a_clinic_to_a_colleague(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        model = await live_server.acall(
            lambda ctx: h.session_of(ctx, doctor_code="D003", day=MONDAY)
        )
        clinic = await live_server.acall(lambda ctx: colleague_session(ctx, model, "林嘉怡"))
        substitute = await live_server.acall(lambda ctx: colleague_session(ctx, model, "陈思远"))
        _, first = await live_server.acall(lambda ctx: booked_token(ctx, clinic, "吴晓梅"))
        _, second = await live_server.acall(lambda ctx: booked_token(ctx, clinic, "郑国栋"))

        page = await desktop.new_page()
        await staff_sign_in(page, "scheduler", "scheduler123")
        await page.get_by_role("link", name="停诊与替诊").click()
        await page.get_by_label("日期").fill(MONDAY.isoformat())
        await page.get_by_role("button", name="查看出诊").click()
        await page.locator(f'a[href="/desk/stop-clinic/{clinic}"]').click()

        await expect(page.get_by_test_id("stop-booking")).to_have_count(2)
        candidate = page.locator(f'input[data-testid="stop-candidate"][value="{substitute}"]')
        await candidate.check()
        await page.get_by_label("停诊原因").fill("张医生临时外出会诊")
        await screenshot(page, "65-stop-clinic-choose.png", full_page=True)
        await page.get_by_test_id("stop-preview").click()

        summary = page.get_by_test_id("stop-plan-summary")
        await expect(summary).to_contain_text("2 个预约改由替诊医生接诊，0 个取消")
        await expect(page.get_by_test_id("stop-plan")).to_have_count(2)
        await expect(page.get_by_test_id("stop-plan").first).to_contain_text("号序和时间不变")
        await screenshot(page, "66-stop-clinic-preview.png", full_page=True)
        await page.get_by_test_id("stop-confirm").click()

        await expect(page.get_by_role("status")).to_contain_text("已停诊：2 个预约由替诊医生接诊")
        await expect(page.get_by_test_id("stop-status")).to_have_text("已停诊")
        await screenshot(page, "67-stop-clinic-done.png")
        moved = await live_server.acall(lambda ctx: active_with(ctx, substitute))
        assert moved == [(first, "陈思远"), (second, "陈思远")]
        assert await live_server.acall(lambda ctx: active_with(ctx, clinic)) == []
