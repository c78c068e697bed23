"""The registration window (挂号窗口) in a browser: the demo's registrar looks up a walk-in by
ID number, registers them, books tomorrow's chief physician's clinic, takes the fee in cash
with a receipt number, shows the slip with its QR voucher, then cancels (退号) and hands the
money back; on the way it shows the patient's full ID number once, with a reason.
Screenshots 70–75 illustrate docs/staff-guide.md."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests import factories as f
from tests.e2e.conftest import TODAY, LiveServer, screenshot
from tests.e2e.test_visit_day import desktop, staff_sign_in  # noqa: F401  (fixture)
from yuyue.booking.models import Appointment
from yuyue.payments.models import Refund
from yuyue.scheduling.models import ClinicSession
from yuyue.web.context import AppContext

TOMORROW = TODAY + timedelta(days=1)


async def tomorrows_fee_clinic(ctx: AppContext) -> tuple[uuid.UUID, uuid.UUID]:
    """A clinic with a fee tomorrow (Saturday): its id and its department's."""
    async with ctx.db.read() as session:
        row = (
            await session.execute(
                select(ClinicSession.id, ClinicSession.department_id)
                .where(ClinicSession.date == TOMORROW, ClinicSession.fee_fen > 0)
                .order_by(ClinicSession.start_time, ClinicSession.id)
                .limit(1)
            )
        ).one()
    return row[0], row[1]


async def refund_of(ctx: AppContext, appointment_id: uuid.UUID) -> tuple[str, str | None]:
    async with ctx.db.read() as session:
        refund = await session.scalar(select(Refund).where(Refund.appointment_id == appointment_id))
        assert refund is not None
        return refund.state, refund.window_receipt_no


async def status_of(ctx: AppContext, appointment_id: uuid.UUID) -> str:
    async with ctx.db.read() as session:
        found = await session.get(Appointment, appointment_id)
        assert found is not None
        return found.status


class TestRegistrationWindow:
    async def test_a_registrar_registers_a_walk_in_for_tomorrow_and_refunds_the_fee(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        session_id, department_id = await live_server.acall(tomorrows_fee_clinic)
        number = f.resident_id(sex="F")
        phone = f.phone()
        page = await desktop.new_page()
        await staff_sign_in(page, "registrar", "registrar123")

        # From the console's menu to the window.
        await page.goto("/staff")
        await page.get_by_role("link", name="挂号窗口").click()
        await expect(page.get_by_role("heading", name="挂号窗口")).to_be_visible()

        # Not registered yet: the form starts from the number typed.
        await page.get_by_label("证件号码、手机号或病历号").fill(number)
        await page.get_by_test_id("find").click()
        await expect(page.get_by_test_id("not-found")).to_be_visible()
        form = page.get_by_test_id("register-form")
        await expect(form.get_by_label("证件号码")).to_have_value(number)
        await form.get_by_label("姓名").fill("林小雨")
        await form.get_by_label("手机号").fill(phone)
        await screenshot(page, "70-window-register.png")
        await form.get_by_test_id("register").click()

        # The patient's page: masked numbers, no history, the clinic picker.
        patient = page.get_by_test_id("patient")
        await expect(patient).to_contain_text("林小雨")
        await expect(page.get_by_text("已登记，可以为其挂号")).to_be_visible()
        await expect(page.get_by_test_id("patient-id")).to_have_text(
            number[:4] + "*" * 10 + number[-4:]
        )
        # The hospital's medical record number, given at registration.
        await expect(page.get_by_test_id("patient-record-number")).to_have_text(
            re.compile(r"^MR\d{8}$")
        )
        assert number not in await page.content()
        assert phone not in await page.content()

        # The full number once, with a reason (logged): checking it against the card.
        await page.get_by_test_id("unmask").locator("summary").click()
        unmask = page.get_by_test_id("unmask-form")
        await unmask.get_by_label("查看").select_option("id_number")
        await unmask.get_by_label("原因", exact=True).select_option("card")
        await unmask.get_by_test_id("unmask-button").click()
        await expect(page.get_by_test_id("unmasked-value")).to_have_text(number)
        await screenshot(page, "75-window-unmask.png")
        picker = page.get_by_test_id("picker")
        await picker.get_by_label("就诊日期").fill(TOMORROW.isoformat())
        await picker.get_by_label("科室").select_option(str(department_id))
        await picker.get_by_test_id("show-sessions").click()
        await page.locator(f'a[data-testid="choose-session"][href$="session={session_id}"]').click()
        await expect(page.get_by_test_id("book-form")).to_be_visible()
        await screenshot(page, "71-window-choose-clinic.png", full_page=True)
        await page.get_by_test_id("book").click()

        # Held for the fee: taken in cash with the receipt number.
        await expect(page.get_by_text("号源已保留")).to_be_visible()
        appointment_id = uuid.UUID(page.url.split("/appointments/")[1].split("?")[0])
        await page.get_by_test_id("method-cash").check()
        await page.get_by_label("收据号").fill("SF-20261120-0042")
        await page.get_by_test_id("take-fee").click()
        await expect(page.get_by_role("status")).to_contain_text("挂号完成")
        await expect(page.get_by_test_id("slip-status")).to_have_text("已预约")
        await expect(page.get_by_test_id("voucher").locator("svg")).to_be_visible()
        await expect(page.get_by_test_id("slip-money")).to_contain_text("SF-20261120-0042")
        await expect(page.get_by_test_id("print")).to_be_visible()
        await screenshot(page, "72-window-slip.png", full_page=True)
        assert await live_server.acall(lambda ctx: status_of(ctx, appointment_id)) == "booked"

        # 退号: what the patient gets back is said before, and the cash is handed back.
        await expect(page.get_by_test_id("gets-back")).to_contain_text("现金")
        await page.get_by_label("退号原因（可不填）").fill("患者临时有事")
        await page.get_by_test_id("cancel").click()
        await expect(page.get_by_role("status")).to_contain_text("已退号")
        await expect(page.get_by_test_id("refund-due")).to_be_visible()
        await screenshot(page, "73-window-refund-due.png", full_page=True)
        await page.get_by_label("退费收据号（可不填）").fill("TF-20261120-0003")
        await page.get_by_test_id("hand-back").click()
        await expect(page.get_by_test_id("refunded")).to_contain_text("TF-20261120-0003")
        await screenshot(page, "74-window-refunded.png", full_page=True)
        assert await live_server.acall(lambda ctx: refund_of(ctx, appointment_id)) == (
            "succeeded",
            "TF-20261120-0003",
        )

        # The patient's history shows it, cancelled and refunded.
        await page.get_by_test_id("back-to-patient").click()
        visit = page.locator('[data-testid="visit"][data-status="cancelled"]')
        await expect(visit).to_contain_text("已退款")
