"""Approvals (审批) in a browser: late on Friday, past the patients' deadline for Saturday's
clinics, the demo's registrar cancels one booking at the window (which files a late
cancellation) and asks to move another to a later session; the demo's supervisor approves
the cancellation and rejects the move with a note. Screenshots 80–84 illustrate the
"Approvals" section of docs/staff-guide.md."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests.e2e.conftest import NOW, TODAY, LiveServer, screenshot
from tests.e2e.test_visit_day import booked_token, desktop, staff_sign_in  # noqa: F401  (fixture)
from yuyue.booking.models import Appointment, ChangeRequest
from yuyue.scheduling.models import ClinicSession
from yuyue.web.context import AppContext

TOMORROW = TODAY + timedelta(days=1)
# Friday 16:00 in Shanghai: Saturday's patients could cancel themselves until 15:00.
FRIDAY_LATE = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def free_clinics_tomorrow(ctx: AppContext) -> list[uuid.UUID]:
    """Tomorrow's clinics without a fee (the departments' general clinics), earliest first."""
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(ClinicSession.id)
            .where(ClinicSession.date == TOMORROW, ClinicSession.fee_fen == 0)
            .order_by(ClinicSession.start_time, ClinicSession.id)
        )
        return list(rows.all())


async def booking_of(ctx: AppContext, session_id: uuid.UUID, number: int) -> uuid.UUID:
    async with ctx.db.read() as session:
        found = await session.scalar(
            select(Appointment.id).where(
                Appointment.session_id == session_id, Appointment.sequence_number == number
            )
        )
    assert found is not None
    return found


async def status_and_session(ctx: AppContext, appointment_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    async with ctx.db.read() as session:
        found = await session.get(Appointment, appointment_id)
    assert found is not None
    return found.status, found.session_id


async def decisions(ctx: AppContext, appointment_ids: list[uuid.UUID]) -> dict[str, str]:
    async with ctx.db.read() as session:
        rows = await session.scalars(
            select(ChangeRequest).where(ChangeRequest.appointment_id.in_(appointment_ids))
        )
        return {row.kind: row.state for row in rows}


class TestApprovals:
    async def test_a_supervisor_approves_a_late_cancellation_and_rejects_a_move(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        clinics = await live_server.acall(free_clinics_tomorrow)
        clinic = clinics[0]
        # Booked on Friday morning through the app, as patients do.
        _, first = await live_server.acall(lambda ctx: booked_token(ctx, clinic, "周敏"))
        _, second = await live_server.acall(lambda ctx: booked_token(ctx, clinic, "黄建华"))
        cancelled = await live_server.acall(lambda ctx: booking_of(ctx, clinic, first))
        moved = await live_server.acall(lambda ctx: booking_of(ctx, clinic, second))

        live_server.clock.set(FRIDAY_LATE)
        try:
            await self._ask_and_decide(desktop, cancelled, moved)
        finally:
            live_server.clock.set(NOW)

        assert await live_server.acall(lambda ctx: status_and_session(ctx, cancelled)) == (
            "cancelled",
            clinic,
        )
        assert await live_server.acall(lambda ctx: status_and_session(ctx, moved)) == (
            "booked",
            clinic,
        )
        assert await live_server.acall(lambda ctx: decisions(ctx, [cancelled, moved])) == {
            "cancel_late": "approved",
            "move": "rejected",
        }

    async def _ask_and_decide(
        self, browser_context: BrowserContext, cancelled: uuid.UUID, moved: uuid.UUID
    ) -> None:
        # The registrar, after the deadline: 退号 becomes a request with the note as reason.
        window = await browser_context.new_page()
        await staff_sign_in(window, "registrar", "registrar123")
        await window.goto(f"/desk/window/appointments/{cancelled}")
        await window.get_by_label("退号原因（可不填）").fill("患者发热住院，无法就诊")
        await window.get_by_test_id("cancel").click()
        await expect(window.get_by_role("status")).to_contain_text("逾期退号申请已提交")
        await expect(window.get_by_test_id("slip-status")).to_have_text("已预约")
        await screenshot(window, "80-approvals-late-cancel-filed.png", full_page=True)

        # And asks to move the other booking to a later session of the department.
        await window.goto(f"/desk/window/appointments/{moved}")
        form = window.get_by_test_id("change-form")
        await form.get_by_test_id("change-move").check()
        target = form.get_by_test_id("move-target")
        monday = target.locator("option", has_text="周一").first
        await target.select_option(await monday.get_attribute("value"))
        await form.get_by_label("原因（必填，至少 2 个字）").fill("患者周六要加班，想改到周一")
        await screenshot(window, "81-approvals-ask-move.png", full_page=True)
        await form.get_by_test_id("ask-change").click()
        await expect(window.get_by_role("status")).to_contain_text("申请已提交")
        await window.close()

        # The supervisor: from the console's menu to the approvals.
        await browser_context.clear_cookies()
        page = await browser_context.new_page()
        await staff_sign_in(page, "supervisor", "supervisor123")
        await page.goto("/staff")
        await page.get_by_role("link", name="更改审批").click()
        await expect(page.get_by_role("heading", name="更改审批").first).to_be_visible()
        requests = page.get_by_test_id("change-request")
        await expect(requests).to_have_count(2)
        await screenshot(page, "82-approvals-pending.png", full_page=True)

        late = page.locator('[data-testid="change-request"][data-kind="cancel_late"]')
        await expect(late).to_contain_text("患者发热住院")
        await late.get_by_label("审批意见（驳回时必填）").fill("已核实住院证明")
        await late.get_by_test_id("approve").click()
        await expect(page.get_by_role("status")).to_contain_text("已批准，更改已生效")
        await screenshot(page, "83-approvals-approved.png", full_page=True)

        move = page.locator('[data-testid="change-request"][data-kind="move"]')
        await move.get_by_label("审批意见（驳回时必填）").fill("下周号源紧张，请患者自行改约")
        await move.get_by_test_id("reject").click()
        await expect(page.get_by_role("status")).to_contain_text("已驳回")
        await expect(page.get_by_test_id("decided-request")).to_have_count(2)
        await screenshot(page, "84-approvals-decided.png", full_page=True)
