"""The visit day in a real browser: a booked patient checks in at the kiosk with the token
their voucher carries, a nurse registers a walk-in at the desk, and the doctor's "call
next" reaches the waiting-room screen live (Server-Sent Events), without a reload.

Dr Zhang Yu (login `doctor`) holds Monday afternoon clinic; the server's clock is moved to
Monday 13:20, inside the check-in window, for these tests and put back afterwards.
Screenshots 20–24 illustrate docs/visit-day-guide.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from tests import factories as f
from tests.e2e import hospital as h
from tests.e2e.conftest import NOW, LiveServer, screenshot
from yuyue.booking import service as booking_service
from yuyue.booking import views
from yuyue.booking.models import Appointment
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind, system_actor
from yuyue.visits import events
from yuyue.visits import service as visits
from yuyue.visits.events import QueueEventKind
from yuyue.web.context import AppContext

MONDAY = date(2026, 11, 23)
# Monday 13:20 in Shanghai: check-in for the 13:30 afternoon clinic is open.
MONDAY_AFTERNOON = datetime(2026, 11, 23, 5, 20, tzinfo=UTC)
DESKTOP = {
    "viewport": {"width": 1280, "height": 800},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}


@pytest_asyncio.fixture
async def monday(live_server: LiveServer) -> AsyncIterator[uuid.UUID]:
    """Dr Zhang Yu's Monday afternoon session, with the clock moved into it."""
    session_id = await live_server.acall(
        lambda ctx: h.session_of(ctx, doctor_code="D003", day=MONDAY)
    )
    live_server.clock.set(MONDAY_AFTERNOON)
    yield session_id
    live_server.clock.set(NOW)


@pytest_asyncio.fixture
async def desktop(browser: Browser, live_server: LiveServer) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(base_url=live_server.url, **DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    yield context
    await context.close()


async def booked_token(ctx: AppContext, session_id: uuid.UUID, name: str) -> tuple[str, int]:
    """Books (as of Friday, through the app channel) and returns the voucher token and the
    sequence number."""
    patient_id = await h.register(ctx, name=name, account_phone=f.phone())
    hospital = await h.demo_hospital(ctx)
    actor = replace(system_actor(hospital.id, "e2e"), channel=Channel.APP)
    async with ctx.db.session_scope() as session:
        booked = await booking_service.book(
            session,
            actor=actor,
            patient_id=patient_id,
            session_id=session_id,
            slot_id=None,
            now=NOW,
        )
        appointment_id = booked.appointment.id
    async with ctx.db.read() as session:
        appointment = await session.get(Appointment, appointment_id)
        assert appointment is not None
        view = await views.appointment_view(
            session, appointment=appointment, voucher_signer=ctx.voucher_signer, locale="zh-CN"
        )
    assert view.voucher is not None
    return view.voucher.token, appointment.sequence_number


async def kiosk_key(ctx: AppContext) -> str:
    hospital = await h.demo_hospital(ctx)
    async with ctx.db.session_scope() as session:
        key, _ = await staff_service.create_api_key(
            session, hospital_id=hospital.id, channel=Channel.KIOSK, name="hall kiosk", now=NOW
        )
    return key


async def department_of(ctx: AppContext, session_id: uuid.UUID) -> uuid.UUID:
    async with ctx.db.read() as session:
        found = await session.scalar(
            select(ClinicSession.department_id).where(ClinicSession.id == session_id)
        )
    assert found is not None
    return found


async def staff_sign_in(page: Page, username: str, password: str) -> None:
    await page.goto("/staff/signin")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_test_id("staff-sign-in").click()
    await expect(page.get_by_test_id("staff-name")).to_be_visible()


class TestVisitDay:
    async def test_kiosk_check_in_walk_in_and_a_call_reaches_the_screen_live(
        self, live_server: LiveServer, desktop: BrowserContext, monday: uuid.UUID
    ) -> None:
        token, number = await live_server.acall(lambda ctx: booked_token(ctx, monday, "孙丽华"))
        key = await live_server.acall(kiosk_key)
        department = await live_server.acall(lambda ctx: department_of(ctx, monday))

        # The kiosk: set up once by staff, then a scanner types the token and Enter.
        kiosk = await desktop.new_page()
        await kiosk.goto("/kiosk")
        await expect(kiosk.get_by_role("heading", name="设置自助机")).to_be_visible()
        await kiosk.get_by_label("自助机密钥").fill(key)
        await kiosk.get_by_test_id("kiosk-save").click()
        await expect(kiosk.get_by_role("heading", name="自助报到")).to_be_visible()
        await expect(kiosk.get_by_test_id("token")).to_be_focused()
        await screenshot(kiosk, "20-kiosk.png")
        await kiosk.get_by_test_id("token").fill(token)
        await kiosk.get_by_test_id("token").press("Enter")
        await expect(kiosk.get_by_role("alert").or_(kiosk.get_by_role("status"))).to_contain_text(
            "报到成功"
        )
        await expect(kiosk.get_by_test_id("queue-number")).to_have_text(str(number))
        await expect(kiosk.get_by_test_id("people-ahead")).to_be_visible()
        await screenshot(kiosk, "21-ticket.png")
        # A second scan is harmless: the same ticket.
        await kiosk.goto("/kiosk")
        await kiosk.get_by_test_id("token").fill(token)
        await kiosk.get_by_test_id("token").press("Enter")
        await expect(kiosk.get_by_role("status")).to_contain_text("您已报到")
        await expect(kiosk.get_by_test_id("queue-number")).to_have_text(str(number))
        # The device key also opens the department's waiting-room screen.
        screen = await desktop.new_page()
        await screen.goto(f"/screens/{department}")
        board = screen.get_by_test_id("board")
        await expect(board).to_have_attribute("data-live-state", "connected")
        await expect(board).not_to_contain_text("孙丽华")  # names are masked on the screen

        # The triage desk: a walk-in, registered with a real ID number.
        desk = await desktop.new_page()
        await staff_sign_in(desk, "nurse", "nurse123")
        await desk.get_by_label("出诊").select_option(str(monday))
        await desk.get_by_label("姓名", exact=True).fill("周建国")
        await desk.get_by_label("证件号码", exact=True).fill(f.resident_id(sex="M"))
        await desk.get_by_label("手机号", exact=True).fill(f.phone())
        await screenshot(desk, "22-desk.png", full_page=True)
        await desk.get_by_test_id("walk-in").click()
        await expect(desk.get_by_role("status")).to_contain_text("已挂号并报到")

        # The doctor calls the next patient; the screen shows it without a reload.
        doctor = await desktop.new_page()
        await staff_sign_in(doctor, "doctor", "doctor123")
        await expect(doctor.get_by_test_id("line-row")).to_have_count(2)
        await doctor.get_by_test_id("call-next").click()
        current = doctor.get_by_test_id("current")
        await expect(current).to_contain_text(str(number))
        await screenshot(doctor, "23-doctor.png", full_page=True)
        await expect(board.get_by_test_id("call").first).to_contain_text(str(number))
        await expect(board.get_by_test_id("call").first).to_contain_text("孙*华")
        await expect(screen.get_by_test_id("announcement")).to_have_text(
            re.compile(rf"请 {number} 号 孙\*华 到 .+ 就诊")
        )
        await screenshot(screen, "24-screen.png")
        # Start and finish: the visit leaves the screen's calls.
        await current.get_by_test_id("start").click()
        await expect(current).to_contain_text("就诊中")
        await doctor.get_by_test_id("finish").click()
        await expect(doctor.get_by_test_id("current")).to_have_count(0)
        await expect(board.get_by_test_id("call")).to_have_count(0)


TUESDAY = date(2026, 11, 24)
# Tuesday 09:10 in Shanghai: Dr Li Hui's morning clinic is running.
TUESDAY_MORNING = datetime(2026, 11, 24, 1, 10, tzinfo=UTC)
TELEVISION = {
    "viewport": {"width": 1920, "height": 1080},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}


async def morning_queue(ctx: AppContext, session_id: uuid.UUID) -> None:
    """Three booked and paid patients checked in at the kiosk, and two walk-ins from the
    desk, in Dr Li Hui's Tuesday morning clinic."""
    hospital = await h.demo_hospital(ctx)
    app = replace(system_actor(hospital.id, "e2e"), channel=Channel.APP)
    now = ctx.clock.now()
    for name in ("钱文博", "孙丽娟", "周晓明"):
        patient_id = await h.register(ctx, name=name, account_phone=f.phone())
        async with ctx.db.session_scope() as session:
            booked = await booking_service.book(
                session,
                actor=app,
                patient_id=patient_id,
                session_id=session_id,
                slot_id=None,
                now=NOW,
            )
            await booking_service.confirm_payment(
                session,
                actor=app,
                appointment_id=booked.appointment.id,
                paid_fen=booked.appointment.fee_fen,
                payment_reference=f"E2E-{name}",
                now=NOW,
            )
        async with ctx.db.session_scope() as session:
            await visits.check_in(
                session,
                actor=desk_nurse(hospital.id),
                appointment_id=booked.appointment.id,
                now=now,
            )
    for name in ("吴国平", "郑海燕"):
        patient_id = await h.register(ctx, name=name, account_phone=f.phone())
        async with ctx.db.session_scope() as session:
            await visits.walk_in(
                session,
                actor=desk_nurse(hospital.id),
                patient_id=patient_id,
                session_id=session_id,
                slot_id=None,
                now=now,
                payment_reference=f"E2E-{name}",
            )


def desk_nurse(hospital_id: uuid.UUID) -> Actor:
    return Actor(
        hospital_id=hospital_id,
        kind=ActorKind.STAFF,
        id="e2e-nurse",
        channel=Channel.WINDOW,
        roles=frozenset({Role.NURSE}),
        name="分诊护士",
    )


async def call_next(ctx: AppContext, session_id: uuid.UUID) -> None:
    hospital = await h.demo_hospital(ctx)
    now = ctx.clock.now()
    async with ctx.db.session_scope() as session:
        visit = await visits.call_next(
            session, actor=desk_nurse(hospital.id), session_id=session_id, now=now
        )
        event = visits.event_of(visit, QueueEventKind.CALLED, at=now)
    await events.publish(ctx, event)


class TestWaitingRoomScreen:
    async def test_a_call_fills_a_1080p_screen_with_the_number_name_and_room(
        self, live_server: LiveServer, browser: Browser
    ) -> None:
        session_id = await live_server.acall(
            lambda ctx: h.session_of(ctx, doctor_code="D002", day=TUESDAY)
        )
        department = await live_server.acall(lambda ctx: department_of(ctx, session_id))
        key = await live_server.acall(kiosk_key)
        live_server.clock.set(TUESDAY_MORNING)
        context = await browser.new_context(base_url=live_server.url, **TELEVISION)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        try:
            await live_server.acall(lambda ctx: morning_queue(ctx, session_id))
            screen = await context.new_page()
            await screen.goto("/kiosk/setup")
            await screen.get_by_label("自助机密钥").fill(key)
            await screen.get_by_test_id("kiosk-save").click()
            await screen.goto(f"/screens/{department}")
            board = screen.get_by_test_id("board")
            await expect(board).to_have_attribute("data-live-state", "connected")
            await expect(screen.get_by_test_id("latest-call")).to_have_count(0)

            await live_server.acall(lambda ctx: call_next(ctx, session_id))
            # Live, without a reload: the call in one line, the room as large as the number.
            latest = screen.get_by_test_id("latest-call")
            await expect(latest).to_be_visible()
            await expect(screen.get_by_test_id("latest-room")).to_have_text("2诊室")
            await expect(screen.get_by_test_id("latest-name")).to_have_text("钱*博")
            await expect(screen.get_by_test_id("announcement")).to_have_text(
                re.compile(r"请 \d+ 号 钱\*博 到 2诊室 就诊")
            )
            height = 1080
            for testid in ("latest-room", "latest-number", "latest-name"):
                size = await screen.get_by_test_id(testid).evaluate(
                    "e => parseFloat(getComputedStyle(e).fontSize)"
                )
                assert size >= 0.08 * height, (testid, size)
            room = board.get_by_test_id("room").filter(has_text="2诊室")
            room_size = await room.get_by_test_id("room-name").evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)"
            )
            assert room_size >= 0.08 * height
            # The next patients of the room, masked, walk-ins marked 现.
            upcoming = room.get_by_test_id("upcoming").locator("li")
            await expect(upcoming).to_have_count(3)
            await expect(room.get_by_test_id("upcoming")).to_contain_text("现1")
            await expect(board).not_to_contain_text("孙丽娟")
            # Everything fits the television: nothing to scroll.
            overflow = await screen.evaluate(
                "() => document.documentElement.scrollHeight - window.innerHeight"
            )
            await screenshot(screen, "25-screen-1080p.png")
            assert overflow <= 0
        finally:
            await context.close()
            live_server.clock.set(NOW)
