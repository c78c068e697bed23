"""Finance in a browser: the demo's finance user signs in, finds the reconciliation day,
reads its differences and marks one handled. Screenshots for docs/finance-guide.md."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.test_visit_day import desktop, staff_sign_in  # noqa: F401  (fixture)
from yuyue.payments import reconciliation
from yuyue.payments.gateway import Provider, Statement, StatementKind, StatementLine
from yuyue.payments.registry import Gateways
from yuyue.scheduling.models import Hospital
from yuyue.web.context import AppContext

DAY = date(2026, 11, 19)


class _Statement:
    """WeChat Pay's bill for the day: a charge we never had, and another listed twice."""

    provider = Provider.WECHATPAY

    async def download_statement(self, bill_date: date) -> Statement:
        at = datetime(2026, 11, 19, 3, 12, tzinfo=UTC)
        stray = StatementLine(StatementKind.PAYMENT, "X7d1f00a2", "4200000011", 990, at)
        twice = StatementLine(StatementKind.PAYMENT, "X7d1f00b7", "4200000012", 2500, at)
        if bill_date != DAY:
            from yuyue.payments.gateway import StatementNotReady

            raise StatementNotReady("no bill")
        return Statement(Provider.WECHATPAY, DAY, (stray, twice, twice))


async def reconciled_day(ctx: AppContext) -> uuid.UUID:
    async with ctx.db.read() as session:
        hospital = await session.scalar(select(Hospital.id).where(Hospital.code == "demo"))
    assert hospital is not None
    report = await reconciliation.reconcile_day(
        db=ctx.db,
        gateways=Gateways({Provider.WECHATPAY: _Statement()}),  # type: ignore[dict-item]
        hospital_id=hospital,
        provider=Provider.WECHATPAY,
        business_day=DAY,
        clock=ctx.clock,
    )
    return report.run_id


class TestFinance:
    async def test_finance_opens_the_day_and_marks_a_difference_handled(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        run_id = await live_server.acall(reconciled_day)
        page = await desktop.new_page()
        await page.goto("/staff/signin")
        await page.get_by_label("用户名").fill("finance")
        await page.get_by_label("密码").fill("finance123")
        await page.get_by_test_id("staff-sign-in").click()
        await expect(page.get_by_role("heading", name="每日对账")).to_be_visible()
        await expect(page.get_by_test_id("run")).to_have_count(1)
        await screenshot(page, "40-reconciliation.png", full_page=True)

        await page.get_by_test_id("open-run").click()
        await expect(page.get_by_test_id("item")).to_have_count(3)
        duplicate = page.locator('[data-testid="item"][data-kind="duplicate_line"]')
        await expect(duplicate).to_contain_text("渠道重复记账")
        refunded = page.locator('[data-testid="item"][data-kind="provider_only"]')
        await expect(refunded.first).to_contain_text("已自动退款")
        await screenshot(page, "41-reconciliation-day.png", full_page=True)

        await duplicate.get_by_test_id("handle-note").fill("已联系微信支付，重复行为账单错误")
        await duplicate.get_by_test_id("mark-handled").click()
        await expect(page.get_by_role("status").or_(page.get_by_role("alert"))).to_contain_text(
            "已标记为已处理"
        )
        await expect(duplicate.get_by_test_id("item-handled")).to_contain_text("重复行为账单错误")
        await expect(page.get_by_test_id("handle-form")).to_have_count(0)
        assert str(run_id) in page.url
        await screenshot(page, "42-reconciliation-handled.png", full_page=True)

        await page.get_by_test_id("nav-orders").click()
        await expect(page.get_by_role("heading", name="订单与退款")).to_be_visible()
        await screenshot(page, "43-orders.png", full_page=True)
