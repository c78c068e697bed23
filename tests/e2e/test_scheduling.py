"""Building next week's timetable in a browser (排班): the demo's scheduler opens the weekly
timetable of General Internal Medicine from the console's menu, gives Dr Zhang Yu a Saturday
afternoon clinic in room 3, generates next week, and finds the new session in the week view
with its places per slot and pool; from there the stop-clinic wizard is one click away
(`test_stop_clinic.py` stops a clinic with a substitute). Screenshots for
docs/staff-guide.md."""

from __future__ import annotations

import uuid
from datetime import date

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.test_visit_day import desktop, staff_sign_in  # noqa: F401  (fixture)
from yuyue.scheduling.models import ClinicSession, Doctor
from yuyue.web.context import AppContext

SATURDAY = "2026-11-28"
WEDNESDAY = "2026-11-25"


async def doctor_id(ctx: AppContext, code: str) -> uuid.UUID:
    async with ctx.db.read() as s:
        found = await s.scalar(select(Doctor.id).where(Doctor.code == code))
    assert found is not None
    return found


async def saturday_afternoons(ctx: AppContext, doctor: uuid.UUID) -> list[tuple[int, str]]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(ClinicSession.capacity, ClinicSession.room).where(
                ClinicSession.doctor_id == doctor,
                ClinicSession.date == date.fromisoformat(SATURDAY),
                ClinicSession.period == "afternoon",
            )
        )
        return [(capacity, room) for capacity, room in rows]


class TestScheduling:
    async def test_the_scheduler_builds_next_weeks_timetable(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        zhang = await live_server.acall(lambda ctx: doctor_id(ctx, "D003"))
        assert await live_server.acall(lambda ctx: saturday_afternoons(ctx, zhang)) == []

        page = await desktop.new_page()
        await staff_sign_in(page, "scheduler", "scheduler123")
        await page.get_by_role("link", name="排班模板").click()
        await expect(page.get_by_role("heading", name="每周排班模板")).to_be_visible()
        await expect(page.get_by_label("科室", exact=True).locator("option:checked")).to_have_text(
            "内科"
        )

        form = page.get_by_test_id("template-add")
        await form.get_by_label("医生", exact=True).select_option(str(zhang))
        await form.get_by_label("星期", exact=True).select_option("5")
        await form.get_by_label("时段", exact=True).select_option("afternoon")
        await form.get_by_label("号数", exact=True).fill("20")
        await form.get_by_label("诊室", exact=True).fill("内科3诊室")
        await form.scroll_into_view_if_needed()
        await screenshot(page, "70-timetable-add.png")
        await form.get_by_test_id("template-add-button").click()
        await expect(page.get_by_role("status")).to_contain_text("已加入排班")

        # Next week is the one offered; generating it creates the new Saturday clinic and
        # leaves every session already generated as it was.
        await expect(page.get_by_label("周", exact=True)).to_have_value("2026-11-23")
        await page.get_by_test_id("generate").click()
        generated = page.get_by_test_id("generated")
        await expect(generated).to_contain_text("新建 1 个")
        await screenshot(page, "71-timetable-generated.png")
        assert await live_server.acall(lambda ctx: saturday_afternoons(ctx, zhang)) == [
            (20, "内科3诊室")
        ]

        await generated.get_by_test_id("see-week").click()
        cell = page.locator(
            f'[data-testid="week-cell"][data-day="{SATURDAY}"][data-period="afternoon"]'
        )
        card = cell.get_by_test_id("week-session").filter(has_text="张宇")
        await expect(card).to_have_count(1)
        await expect(card.get_by_test_id("places")).to_have_text("已约 0 · 锁号 0 · 余 20 / 共 20")
        await screenshot(page, "72-week-view.png", full_page=True)

        await card.get_by_test_id("open-session").click()
        await expect(page.get_by_test_id("session-pool")).to_have_count(3)
        # 20 places at the hospital's shares (60/30/10): 12 for appointments, 6 on site.
        await expect(page.locator('[data-pool="appointment"] td').nth(1)).to_have_text("12")
        await expect(page.locator('[data-pool="onsite"] td').nth(1)).to_have_text("6")
        await screenshot(page, "73-session-places.png", full_page=True)

        # Stopping is the wizard's: the session page leads to it.
        await page.get_by_test_id("stop-link").click()
        await expect(page.get_by_role("heading", name="张宇")).to_be_visible()
        await expect(page.get_by_test_id("stop-form")).to_be_visible()

    async def test_the_scheduler_adds_a_doctor_and_gives_them_a_clinic_next_week(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        page = await desktop.new_page()
        await staff_sign_in(page, "scheduler", "scheduler123")
        await page.get_by_role("link", name="科室管理").click()
        await expect(page.get_by_role("heading", name="科室管理")).to_be_visible()
        await expect(
            page.locator('[data-testid="department-row"][data-active="yes"]')
        ).not_to_have_count(0)
        await screenshot(page, "77-departments.png", full_page=True)

        await page.get_by_test_id("scheduling-nav").get_by_role("link", name="科室与医生").click()
        form = page.get_by_test_id("doctor-add-form")
        await form.get_by_label("姓名").fill("苏晓晴")
        await form.get_by_label("职称", exact=True).fill("副主任医师")
        await form.get_by_label("英文职称").fill("Associate Chief Physician")
        await form.get_by_label("科室").select_option(label="内科")
        await form.get_by_label("诊室").fill("内科6诊室")
        await form.scroll_into_view_if_needed()
        await screenshot(page, "78-doctor-add.png")
        await form.get_by_test_id("doctor-add-button").click()
        await expect(page.get_by_role("status")).to_contain_text("已新增医生 苏晓晴")
        su = await live_server.acall(lambda ctx: doctor_named(ctx, "苏晓晴"))

        # The new doctor is offered in the timetable; a row without a room is in theirs.
        await page.get_by_test_id("scheduling-nav").get_by_role("link", name="排班模板").click()
        row = page.get_by_test_id("template-add")
        await row.get_by_label("医生", exact=True).select_option(str(su))
        await row.get_by_label("星期", exact=True).select_option("2")
        await row.get_by_label("时段", exact=True).select_option("morning")
        await row.get_by_label("号数", exact=True).fill("15")
        await row.get_by_test_id("template-add-button").click()
        await expect(page.get_by_role("status")).to_contain_text("已加入排班")
        await page.get_by_test_id("generate").click()
        generated = page.get_by_test_id("generated")
        await expect(generated).to_contain_text("新建 1 个")
        assert await live_server.acall(lambda ctx: sessions_of(ctx, su)) == [
            (WEDNESDAY, 15, "内科6诊室")
        ]
        await generated.get_by_test_id("see-week").click()
        cell = page.locator(
            f'[data-testid="week-cell"][data-day="{WEDNESDAY}"][data-period="morning"]'
        )
        await expect(cell.get_by_test_id("week-session").filter(has_text="苏晓晴")).to_have_count(1)
        await screenshot(page, "79-new-doctor-week.png", full_page=True)


async def doctor_named(ctx: AppContext, name: str) -> uuid.UUID:
    async with ctx.db.read() as s:
        found = await s.scalar(select(Doctor.id).where(Doctor.name == name))
    assert found is not None
    return found


async def sessions_of(ctx: AppContext, doctor: uuid.UUID) -> list[tuple[str, int, str]]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(ClinicSession.date, ClinicSession.capacity, ClinicSession.room).where(
                ClinicSession.doctor_id == doctor
            )
        )
        return [(day.isoformat(), capacity, room) for day, capacity, room in rows]
