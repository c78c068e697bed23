"""The demo's administrator with a second factor (`director`) in a browser: the password
alone leads to the code page, a wrong code is refused, and the code an authenticator app
makes from the secret `yuyue demo` prints signs them in. Screenshot 68 illustrates
docs/staff-guide.md."""

from __future__ import annotations

import pyotp
from playwright.async_api import BrowserContext, expect

from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.test_visit_day import desktop  # noqa: F401  (fixture)
from yuyue.demo import catalogue

DIRECTOR = next(s for s in catalogue.STAFF if s.username == "director")


class TestSecondFactor:
    async def test_the_director_needs_the_code_from_the_printed_secret(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        assert DIRECTOR.totp_secret is not None
        # What the authenticator app shows at the server's (standing) time.
        code = pyotp.TOTP(DIRECTOR.totp_secret).at(live_server.clock.now())
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        page = await desktop.new_page()
        await page.goto("/staff/signin")
        await page.get_by_label("用户名").fill(DIRECTOR.username)
        await page.get_by_label("密码").fill(DIRECTOR.password)
        await page.get_by_test_id("staff-sign-in").click()

        # The password alone is not enough.
        await expect(page.get_by_role("heading", name="动态验证码")).to_be_visible()
        await expect(page.get_by_test_id("staff-name")).to_have_count(0)
        await screenshot(page, "68-second-factor-code.png")
        await page.get_by_label("验证码或恢复码").fill(wrong)
        await page.get_by_test_id("staff-code").click()
        await expect(page.get_by_role("alert")).to_contain_text("动态码或恢复码不正确")
        await expect(page.get_by_test_id("staff-name")).to_have_count(0)

        await page.get_by_label("验证码或恢复码").fill(code)
        await page.get_by_test_id("staff-code").click()
        await expect(page.get_by_test_id("staff-name")).to_contain_text(DIRECTOR.display_name)
