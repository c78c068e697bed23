"""The staff console in a browser: the demo's administrator signs in, finds the staff
accounts through the menu's search, adds a nurse, hands over the temporary password, and
reads the audit entry for it. Screenshots for docs/staff-guide.md."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect

from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.test_visit_day import desktop, staff_sign_in  # noqa: F401  (fixture)


class TestConsole:
    async def test_an_administrator_adds_a_nurse_and_reads_the_audit(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        page = await desktop.new_page()
        await staff_sign_in(page, "admin", "admin123")
        # Administrators land on the console's menu: every page of every role.
        await expect(page.get_by_role("heading", name="我的工作台")).to_be_visible()
        await expect(page.get_by_test_id("menu-entry")).to_have_count(25)
        await screenshot(page, "60-console-home.png", full_page=True)

        # The search narrows the menu as one types (a script of our own, no inline script).
        await page.get_by_test_id("menu-search").fill("账号")
        await expect(page.locator('[data-testid="menu-entry"]:visible')).to_have_count(1)
        await screenshot(page, "61-console-search.png")
        await page.get_by_role("link", name="员工账号").click()
        await expect(page.get_by_role("heading", name="员工账号")).to_be_visible()

        form = page.get_by_test_id("add-account")
        await form.get_by_label("用户名").fill("zhou.hs")
        await form.get_by_label("姓名").fill("周护士")
        await form.get_by_test_id("role-nurse").check()
        await form.get_by_label("科室").select_option(index=1)
        await form.scroll_into_view_if_needed()
        await screenshot(page, "62-add-nurse.png")
        await form.get_by_test_id("create-account").click()

        await expect(page.get_by_role("status")).to_contain_text("已创建账号 zhou.hs")
        password = (await page.get_by_test_id("temporary-password").inner_text()).strip()
        assert len(password) >= 10
        await screenshot(page, "63-temporary-password.png")

        await page.get_by_test_id("back-to-accounts").click()
        nurse = page.locator('[data-testid="account"][data-username="zhou.hs"]')
        await expect(nurse).to_contain_text("护士")
        await expect(nurse).to_contain_text("待改密码")
        await nurse.get_by_test_id("manage-account").click()
        await page.get_by_test_id("account-audit").click()

        # The audit viewer, filtered to this account: who added it, when, with what.
        await expect(page.get_by_role("heading", name="审计日志")).to_be_visible()
        entry = page.locator('[data-testid="audit-entry"][data-action="staff.created"]')
        await expect(entry).to_have_count(1)
        await expect(entry).to_contain_text("系统管理员")
        await expect(entry).to_contain_text("zhou.hs")
        await expect(entry).not_to_contain_text(password)
        await screenshot(page, "64-audit.png", full_page=True)

        # The nurse's first sign-in asks for a new password before anything else.
        assert desktop.browser is not None
        nurse_page = await desktop.browser.new_context(base_url=live_server.url, locale="zh-CN")
        try:
            signing = await nurse_page.new_page()
            await signing.goto("/staff/signin")
            await signing.get_by_label("用户名").fill("zhou.hs")
            await signing.get_by_label("密码").fill(password)
            await signing.get_by_test_id("staff-sign-in").click()
            await expect(signing.get_by_role("heading", name="修改密码")).to_be_visible()
        finally:
            await nurse_page.close()
