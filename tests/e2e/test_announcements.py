"""An announcement (公告) in a real browser: the administrator posts a clinic delay for one
department on the staff page, texting the patients booked there that day; the department's
waiting-room screen, already open, shows it without a reload (Server-Sent Events); the
patient's phone shows it on the home page and the appointment page, and the text message
arrives on the demo phone. Withdrawn, it leaves the screen at once.

Screenshots 50–53 illustrate docs/user-guide.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests import factories as f
from tests.e2e import hospital as h
from tests.e2e.conftest import LiveServer, NewPhone, Person, reload_until, screenshot, sign_in
from tests.e2e.test_visit_day import DESKTOP, department_of, staff_sign_in

MONDAY = date(2026, 11, 23)
TITLE = "内科门诊推迟开诊"
BODY = "因设备检修，周一下午门诊推迟 30 分钟开始，请按时报到后在候诊区等候。"


@pytest_asyncio.fixture
async def office(browser: Browser, live_server: LiveServer) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=live_server.url, **DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    yield context
    await context.close()


async def booked_patient(
    live_server: LiveServer, session_id: uuid.UUID
) -> tuple[Person, uuid.UUID]:
    """A patient booked into the session from the website; their phone and appointment."""
    person = Person(f.phone())
    patient_id = await live_server.acall(
        lambda ctx: h.register(ctx, name="钱文静", account_phone=person.phone)
    )
    await live_server.acall(
        lambda ctx: h.book_on_web(ctx, patient_id=patient_id, session_id=session_id)
    )
    booked = await live_server.acall(lambda ctx: h.appointments_in(ctx, session_id))
    return person, next(a.id for a in booked if a.patient_id == patient_id)


async def post_notice(desk: Page, department_id: uuid.UUID) -> None:
    await desk.goto("/desk/announcements")
    await desk.get_by_label("类型", exact=True).select_option("clinic_delayed")
    await desk.get_by_label("级别", exact=True).select_option("warning")
    await desk.get_by_label("范围", exact=True).select_option(f"department:{department_id}")
    await desk.get_by_label("所涉日期（可选）").fill(MONDAY.isoformat())
    await desk.get_by_label("结束展示").fill("2026-11-23T18:00")
    await desk.get_by_label("标题（中文）").fill(TITLE)
    await desk.get_by_label("内容（中文）").fill(BODY)
    await desk.get_by_label("标题（英文，可选）").fill("Internal medicine starts late")
    await desk.get_by_label("内容（英文，可选）").fill(
        "Monday afternoon clinics start 30 minutes late."
    )
    await desk.get_by_test_id("notify").check()
    await screenshot(desk, "50-announcement-post.png", full_page=True)
    await desk.get_by_test_id("post-notice").click()
    # Our patient, and whoever else other tests booked into Monday's clinics there.
    await expect(desk.get_by_role("status")).to_contain_text(
        re.compile(r"公告已发布，并将短信通知 [1-9]\d* 位患者")
    )


class TestAnnouncements:
    async def test_a_posted_notice_reaches_the_screen_live_and_the_patients_phone(
        self, live_server: LiveServer, office: BrowserContext, new_phone: NewPhone
    ) -> None:
        session_id = await live_server.acall(
            lambda ctx: h.session_of(ctx, doctor_code="D003", day=MONDAY)
        )
        department_id = await live_server.acall(lambda ctx: department_of(ctx, session_id))
        person, appointment_id = await booked_patient(live_server, session_id)

        # The department's waiting-room screen is open before anything is posted.
        desk = await office.new_page()
        await staff_sign_in(desk, "admin", "admin123")
        screen = await office.new_page()
        await screen.goto(f"/screens/{department_id}")
        board = screen.get_by_test_id("board")
        await expect(board).to_have_attribute("data-live-state", "connected")
        await expect(board.get_by_test_id("posted-notice")).to_have_count(0)

        await post_notice(desk, department_id)
        # The screen shows it without a reload.
        await expect(board.get_by_test_id("posted-notice")).to_contain_text(TITLE)
        await screenshot(screen, "51-announcement-screen.png")

        # The patient's phone: on the home page and on the appointment's page.
        phone = await (await new_phone()).new_page()
        await sign_in(phone, person)
        await phone.goto("/")
        notice = phone.get_by_test_id("posted-notice")
        await expect(notice).to_contain_text(TITLE)
        await expect(notice).to_contain_text("推迟 30 分钟")
        await screenshot(phone, "52-announcement-phone.png")
        await phone.goto(f"/appointments/{appointment_id}")
        await expect(phone.get_by_test_id("posted-notice")).to_contain_text(TITLE)

        # The text message, on the demo phone.
        texts = await phone.context.new_page()
        await texts.goto("/demo/phone")
        message = texts.get_by_test_id("sms").filter(has_text=person.masked).filter(has_text=TITLE)

        async def arrived() -> None:
            await expect(message).to_have_count(1, timeout=500)

        await reload_until(texts, arrived)
        await screenshot(texts, "53-announcement-text.png")

        # Withdrawn: off the open screen at once, off the phone at its next page.
        await desk.get_by_test_id("withdraw-notice").first.click()
        await expect(desk.get_by_role("status")).to_contain_text("公告已撤下")
        await expect(board.get_by_test_id("posted-notice")).to_have_count(0)
        await phone.goto("/")
        await expect(phone.get_by_test_id("posted-notice")).to_have_count(0)
