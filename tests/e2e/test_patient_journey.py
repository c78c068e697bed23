"""The patient's pages in a real browser on a phone-sized screen: what a person sees at
each step, checked on screen. Screenshots for the user guide are taken along the way."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.async_api import Page, expect

from tests import factories as f
from tests.e2e import hospital as h
from tests.e2e.conftest import LiveServer, NewPhone, Person, reload_until, screenshot, sign_in

# Tuesday 24 November: inside the release window, cancellable until Monday 15:00.
TUESDAY = date(2026, 11, 24)
THURSDAY = date(2026, 11, 26)
WEDNESDAY = date(2026, 11, 25)


async def add_patient(page: Page, *, name: str, id_number: str) -> None:
    await page.get_by_label("姓名").fill(name)
    await page.get_by_label("证件号码").fill(id_number)


class TestBookingJourney:
    async def test_sign_in_add_family_book_see_voucher_and_message_then_cancel(
        self, page: Page
    ) -> None:
        person = Person("13700001111")
        await sign_in(page, person, shots=True)
        await expect(page.get_by_role("button", name=person.masked)).to_be_visible()

        # A family member, with a valid resident ID number; it is shown masked afterwards.
        father_id = f.resident_id(sex="M")
        await page.goto("/patients")
        await page.get_by_test_id("add-patient").click()
        await add_patient(page, name="王建国", id_number=father_id)
        await screenshot(page, "03-add-patient.png")
        await page.get_by_test_id("save-patient").click()
        row = page.get_by_test_id("patient-row")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("王建国")
        await expect(row).not_to_contain_text(father_id)

        # Cardiology, found by its pinyin initials.
        await page.goto("/")
        await page.get_by_test_id("book-link").click()
        await expect(page.get_by_role("heading", name="选择科室")).to_be_visible()
        await page.get_by_role("searchbox").fill("xxgnk")
        departments = page.locator("#department-list")
        await expect(departments.get_by_role("link")).to_have_count(1)
        await expect(departments).to_contain_text("心血管内科")
        await screenshot(page, "04-departments.png")
        await departments.get_by_role("link", name="心血管内科").click()

        # Dr Zhao Min (general clinic, no fee) and her Tuesday afternoon session.
        await expect(page.get_by_role("heading", name="心血管内科", exact=True)).to_be_visible()
        await page.locator("a[href^='/doctors/']", has_text="赵敏").click()
        await expect(page.get_by_role("heading", name="赵敏")).to_be_visible()
        tuesday = page.locator("h2", has_text="11月24日 周二").locator("+ ul").get_by_role("link")
        await expect(tuesday).to_contain_text("余 ")
        await screenshot(page, "05-doctor.png", full_page=True)
        await tuesday.first.click()

        # The second half-hour, for the only patient (chosen already).
        await expect(page.get_by_text("选择时段")).to_be_visible()
        slots = page.locator("label", has=page.get_by_test_id("slot"))
        await slots.nth(1).click()
        await expect(page.get_by_test_id("slot").nth(1)).to_be_checked()
        chosen_time = (await slots.nth(1).locator("strong").inner_text()).strip()
        await expect(page.get_by_test_id("patient")).to_be_checked()
        await screenshot(page, "06-choose-slot.png", full_page=True)
        await page.get_by_test_id("next").click()

        await expect(page.get_by_role("heading", name="确认预约")).to_be_visible()
        await expect(page.locator("main")).to_contain_text("王建国")
        await expect(page.locator("main")).to_contain_text(chosen_time)
        await expect(page.locator("main")).to_contain_text("11月24日 周二")
        await screenshot(page, "07-confirm.png", full_page=True)
        await page.get_by_test_id("confirm").click()

        # The voucher: a QR code, the 8-digit short code, the sequence number.
        voucher = page.get_by_test_id("voucher")
        await expect(page.get_by_test_id("status")).to_have_text("已预约")
        await expect(voucher.locator("svg")).to_be_visible()
        await expect(page.get_by_test_id("voucher-code")).to_have_text(re.compile(r"^\d{4} \d{4}$"))
        await expect(page.get_by_test_id("sequence")).to_have_text(re.compile(r"^\d+$"))
        await expect(page.locator("main")).to_contain_text(chosen_time)
        short_code = (await page.get_by_test_id("voucher-code").inner_text()).replace(" ", "")
        sequence = await page.get_by_test_id("sequence").inner_text()
        voucher_url = page.url
        await screenshot(page, "08-voucher.png", full_page=True)

        # The confirmation arrives among the messages.
        await page.goto("/inbox")
        confirmation = page.get_by_test_id("inbox-item").filter(has_text="预约成功").first

        async def arrived() -> None:
            await expect(confirmation).to_contain_text(short_code, timeout=500)

        await reload_until(page, arrived)
        await expect(confirmation).to_contain_text("王建国")
        await expect(confirmation).to_contain_text(f"序号{sequence}")
        await screenshot(page, "09-inbox.png", full_page=True)

        # Cancel, with a step to confirm it.
        await page.goto(voucher_url)
        await page.get_by_test_id("cancel").click()
        await expect(page.get_by_role("heading", name="确认取消预约")).to_be_visible()
        await expect(page.locator("main")).to_contain_text("王建国")
        await screenshot(page, "10-cancel.png")
        await page.get_by_test_id("confirm-cancel").click()
        await expect(page.get_by_test_id("status")).to_have_text("已取消")
        await expect(page.get_by_role("status")).to_contain_text("已取消，号源已释放")
        await expect(page.get_by_test_id("voucher")).to_have_count(0)
        await expect(page.get_by_test_id("cancel")).to_have_count(0)


class TestSoldOut:
    async def test_a_session_that_sells_out_while_you_decide_offers_other_places(
        self, page: Page, live_server: LiveServer
    ) -> None:
        person = Person("13700002222")
        await live_server.acall(
            lambda ctx: h.register(ctx, name="李秀英", account_phone=person.phone)
        )
        # Dr Liu Zhiqiang's Tuesday morning: ten places, the fewest in cardiology.
        full = await live_server.acall(
            lambda ctx: h.session_of(ctx, doctor_code="D004", day=TUESDAY)
        )
        await sign_in(page, person)
        await page.goto(f"/sessions/{full}")
        await expect(page.get_by_test_id("patient")).to_be_checked()
        await page.get_by_test_id("next").click()
        await expect(page.get_by_role("heading", name="确认预约")).to_be_visible()

        # Meanwhile everyone else takes the last places.
        await live_server.acall(lambda ctx: h.take_every_web_place(ctx, full))
        await page.get_by_test_id("confirm").click()

        await expect(page.get_by_role("heading", name="号源已约满")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("约满")
        alternatives = page.get_by_test_id("alternatives").get_by_role("link")
        await expect(alternatives.first).to_be_visible()
        await expect(alternatives.first).to_contain_text("余 ")
        await expect(page.get_by_test_id("join-waitlist")).to_be_visible()
        await screenshot(page, "11-sold-out.png", full_page=True)

        await alternatives.first.click()
        await expect(page).not_to_have_url(re.compile(str(full)))
        await expect(page.get_by_test_id("next")).to_be_enabled()
        enabled_slots = page.locator("[data-testid=slot]:not([disabled])")
        await expect(enabled_slots.first).to_be_attached()
        await expect(page.get_by_test_id("patient")).to_be_checked()
        await page.get_by_test_id("next").click()
        await expect(page.get_by_role("heading", name="确认预约")).to_be_visible()
        await expect(page.locator("main")).to_contain_text("李秀英")


class TestWaitlist:
    async def test_a_cancelled_place_is_offered_to_the_first_in_line_who_takes_it(
        self, page: Page, live_server: LiveServer, new_phone: NewPhone
    ) -> None:
        waiting = Person("13700003333")
        leaving = Person("13700004444")
        await live_server.acall(
            lambda ctx: h.register(ctx, name="孙丽", account_phone=waiting.phone)
        )
        leaver = await live_server.acall(
            lambda ctx: h.register(ctx, name="钱伟", account_phone=leaving.phone)
        )
        # Dr Zhao Min's Wednesday morning (no fee): B holds one place, strangers the rest.
        full = await live_server.acall(
            lambda ctx: h.session_of(ctx, doctor_code="D007", day=WEDNESDAY)
        )
        await live_server.acall(lambda ctx: h.book_on_web(ctx, patient_id=leaver, session_id=full))
        await live_server.acall(lambda ctx: h.take_every_web_place(ctx, full))

        # A joins the line.
        await sign_in(page, waiting)
        await page.goto(f"/sessions/{full}")
        await expect(page.get_by_text("该出诊已约满")).to_be_visible()
        await page.get_by_test_id("join-waitlist").click()
        await expect(page.locator("main")).to_contain_text("候补第 1 位")

        # B, on another phone, cancels.
        b_page = await (await new_phone()).new_page()
        await sign_in(b_page, leaving)
        await b_page.goto("/appointments")
        await b_page.get_by_role("link", name=re.compile("赵敏")).first.click()
        await b_page.get_by_test_id("cancel").click()
        await b_page.get_by_test_id("confirm-cancel").click()
        await expect(b_page.get_by_test_id("status")).to_have_text("已取消")

        # A is offered the place, with a deadline, and takes it.
        await page.goto("/waitlist")
        offer = page.locator("[data-testid=waitlist-entry][data-status=offered]")

        async def offered() -> None:
            await expect(offer).to_be_visible(timeout=500)

        await reload_until(page, offered)
        await expect(offer).to_contain_text("赵敏")
        await expect(offer).to_contain_text(re.compile(r"有号了！请在 .*\d{2}:\d{2} 前确认"))
        await screenshot(page, "12-waitlist-offer.png", full_page=True)
        await offer.get_by_test_id("accept-offer").click()
        await expect(page.get_by_test_id("status")).to_have_text("已预约")
        await expect(page.get_by_test_id("voucher").locator("svg")).to_be_visible()
        await expect(page.locator("main")).to_contain_text("孙丽")
        await screenshot(page, "13-waitlist-accepted.png", full_page=True)


class TestLargeTextAndEnglish:
    @pytest.mark.parametrize("path", ["/", "/departments", "/signin", "/rules"])
    async def test_large_text_fits_a_small_phone(self, page: Page, path: str) -> None:
        await page.goto(path)
        await page.get_by_test_id("text-size").click()
        await expect(page.locator("html")).to_have_class(re.compile(r"\blarge\b"))
        await expect(page.get_by_role("button", name="English")).to_be_in_viewport()
        assert await _page_width(page) <= 360
        if path == "/":
            await screenshot(page, "14-large-text.png")
        await page.get_by_role("button", name="English").click()
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.get_by_role("button", name="中文")).to_be_in_viewport()
        assert await _page_width(page) <= 360

    async def test_english_reads_english(self, page: Page) -> None:
        await page.goto("/")
        await page.get_by_role("button", name="English").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Book an outpatient visit")
        await expect(page.get_by_test_id("book-link")).to_contain_text("Book")


async def _page_width(page: Page) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


class TestBadInput:
    async def test_an_invalid_id_number_is_explained_beside_the_field_and_nothing_is_saved(
        self, page: Page, live_server: LiveServer
    ) -> None:
        person = Person("13700005555")
        await sign_in(page, person)
        await page.goto("/patients/new")
        good = f.resident_id(sex="F")
        bad = good[:-1] + ("0" if good[-1] != "0" else "1")
        await add_patient(page, name="赵小红", id_number=bad)
        await page.get_by_test_id("save-patient").click()

        field = page.get_by_label("证件号码")
        await expect(field).to_have_attribute("aria-invalid", "true")
        beside = page.locator("#id_number-error")
        await expect(beside).to_contain_text("证件号码有误")
        await expect(field).to_have_value(bad)
        await expect(page.get_by_label("姓名")).to_have_value("赵小红")
        await expect(page.get_by_role("alert")).to_be_visible()

        await page.goto("/patients")
        await expect(page.get_by_test_id("patient-row")).to_have_count(0)
        assert await live_server.acall(lambda ctx: h.patients_named(ctx, "赵小红")) == 0
