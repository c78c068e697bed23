"""Paying and refunds in a real browser on a phone: book a paid level, pay on the local
WeChat Pay (or Alipay) cashier through the real adapters, see the voucher; cancel and see
the money come back. The providers' notifications reach the server from their own threads,
exactly as the real ones reach a hospital. Screenshots for the user guide are taken on the
way (15–19)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from alipay import AliPay  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect

from tests.e2e import hospital as h
from tests.e2e.conftest import PHONE, LiveServer, Person, reload_until, screenshot, sign_in
from yuyue.payments.providers.alipay import ShanghaiAliPay, format_shanghai

MONDAY = date(2026, 11, 23)  # Dr Wang Jianguo, chief physician, ¥80.00
TUESDAY = date(2026, 11, 24)  # Dr Li Hui, associate chief physician, ¥60.00
# A phone browser says so: the pay page picks WeChat Pay H5 and Alipay WAP for it.
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture(autouse=True)
def alipay_on_the_servers_clock(monkeypatch: pytest.MonkeyPatch, paying_server: LiveServer) -> None:
    """Alipay refuses a request stamped off its clock. The local Alipay keeps the server's
    clock (Friday 10:00, so a hold ends at 10:15 for both sides); while these tests run the
    adapter stamps its requests with that clock too (the app's and its worker's), as in
    life merchant and Alipay share the real time."""

    def stamped(
        client: ShanghaiAliPay, method: str, biz_content: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = AliPay.build_body(client, method, biz_content, **kwargs)
        body["timestamp"] = format_shanghai(paying_server.clock.now())
        return body

    monkeypatch.setattr(ShanghaiAliPay, "build_body", stamped)


@pytest_asyncio.fixture
async def phone(browser: Browser, paying_server: LiveServer) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=paying_server.url, **PHONE, user_agent=ANDROID)
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


async def book_paid_place(
    page: Page, server: LiveServer, person: Person, *, name: str, doctor: str, day: date
) -> None:
    """Signs in, books the doctor's session for the family member and opens the pay page."""
    await server.acall(lambda ctx: h.register(ctx, name=name, account_phone=person.phone))
    session_id = await server.acall(lambda ctx: h.session_of(ctx, doctor_code=doctor, day=day))
    await sign_in(page, person)
    await page.goto(f"/sessions/{session_id}")
    await expect(page.get_by_test_id("patient")).to_be_checked()
    await page.get_by_test_id("next").click()
    await expect(page.get_by_role("heading", name="确认预约")).to_be_visible()
    await page.get_by_test_id("confirm").click()
    await expect(page.get_by_test_id("heading")).to_contain_text("号源已保留")
    await expect(page.get_by_test_id("status")).to_have_text("待支付")
    await page.get_by_test_id("pay").click()
    await expect(page.get_by_role("heading", name="支付挂号费")).to_be_visible()
    await expect(page.get_by_test_id("deadline")).to_contain_text("请在 10:15 前完成支付")


async def cancel_and_see_refund(page: Page, *, amount: str, provider: str) -> None:
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("refund-note")).to_have_text(
        f"取消后挂号费 {amount} 将原路退回{provider}。"
    )
    await page.get_by_test_id("confirm-cancel").click()
    await expect(page.get_by_test_id("status")).to_have_text("已取消")
    refund = page.get_by_test_id("refund-state")

    async def refunded() -> None:
        await expect(refund).to_have_text("已退款", timeout=500)

    await reload_until(page, refunded)


class TestPayingAndRefunds:
    async def test_pay_with_wechat_pay_see_the_voucher_cancel_and_get_the_money_back(
        self, phone: Page, paying_server: LiveServer
    ) -> None:
        person = Person("13700005555")
        await book_paid_place(
            phone, paying_server, person, name="周建华", doctor="D001", day=MONDAY
        )
        await expect(phone.get_by_test_id("fee")).to_have_text("¥80.00")
        wechat = phone.get_by_test_id("pay-wechatpay")
        await expect(wechat).to_have_attribute("data-method", "h5")
        await expect(phone.get_by_test_id("pay-alipay")).to_have_attribute("data-method", "wap")
        await screenshot(phone, "15-pay.png", full_page=True)

        # WeChat Pay's cashier (the local one), reached through the real adapter.
        await wechat.click()
        await expect(phone.get_by_test_id("amount")).to_have_text("¥80.00")
        await screenshot(phone, "16-wechat-cashier.png")
        await phone.get_by_role("button", name="确认支付").click()

        # Back on the hospital's pages: booked once the provider has said so.
        await expect(phone.get_by_test_id("heading")).to_contain_text("就诊凭证")
        await expect(phone.get_by_test_id("voucher")).to_be_visible()
        payment = phone.get_by_test_id("payment")
        await expect(phone.get_by_test_id("paid-amount")).to_have_text("¥80.00")
        await expect(phone.get_by_test_id("paid-with")).to_have_text("微信支付")
        await expect(payment).to_contain_text("11月20日 周五 10:00")
        await screenshot(phone, "17-paid-voucher.png", full_page=True)

        await cancel_and_see_refund(phone, amount="¥80.00", provider="微信支付")
        await screenshot(phone, "18-refunded.png", full_page=True)

        # The messages tell the same story.
        await phone.goto("/inbox")
        await expect(phone.locator("main")).to_contain_text("退款成功")
        await expect(phone.locator("main")).to_contain_text("80.00元已退回")
        # A message's long link wraps: the page stays as wide as the phone.
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["viewport"]["width"]  # type: ignore[index]

    async def test_pay_with_alipay_see_the_voucher_cancel_and_get_the_money_back(
        self, phone: Page, paying_server: LiveServer
    ) -> None:
        person = Person("13700006666")
        await book_paid_place(phone, paying_server, person, name="吴敏", doctor="D002", day=TUESDAY)
        await expect(phone.get_by_test_id("fee")).to_have_text("¥60.00")

        await phone.get_by_test_id("pay-alipay").click()
        await expect(phone.get_by_text("支付宝收银台").first).to_be_visible()
        await expect(phone.locator("body")).to_contain_text("60.00")
        await screenshot(phone, "19-alipay-cashier.png")
        await phone.get_by_role("button", name="确认付款").click()

        await expect(phone.get_by_test_id("heading")).to_contain_text("就诊凭证")
        await expect(phone.get_by_test_id("paid-with")).to_have_text("支付宝")
        await expect(phone.get_by_test_id("paid-amount")).to_have_text("¥60.00")

        await cancel_and_see_refund(phone, amount="¥60.00", provider="支付宝")
