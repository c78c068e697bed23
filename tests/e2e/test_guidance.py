"""Smart guidance in a real browser on a phone: from the home page, describe a complaint,
see the departments with reasons, follow one to book; a red flag shows 120 instead."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.conftest import screenshot


class TestGuidance:
    async def test_describe_a_complaint_see_departments_and_go_to_book(self, page: Page) -> None:
        await page.goto("/")
        await page.get_by_test_id("guidance-link").click()
        await expect(page.get_by_role("heading", name="智能导诊")).to_be_visible()
        await page.get_by_test_id("guidance-text").fill("最近老是头疼，晚上也睡不好")
        await page.get_by_label("年龄（选填）").fill("45")
        await page.get_by_test_id("guidance-submit").click()

        suggestions = page.get_by_test_id("suggestion")
        await expect(suggestions.first).to_contain_text("神经内科")
        await expect(suggestions.first).to_contain_text("您提到“头疼")
        await expect(page.get_by_test_id("emergency")).to_have_count(0)
        await screenshot(page, "30-guidance.png", full_page=True)

        await suggestions.first.get_by_role("link").click()
        await expect(page.get_by_role("heading", name="神经内科", exact=True)).to_be_visible()
        await expect(page.get_by_role("heading", name="出诊安排")).to_be_visible()
        await expect(page.locator("a[href^='/sessions/']").first).to_be_visible()

    async def test_a_red_flag_says_call_120_and_offers_no_booking(self, page: Page) -> None:
        await page.goto("/guidance")
        await page.get_by_test_id("guidance-text").fill("我爸突然说话不清楚嘴也歪了")
        await page.get_by_test_id("guidance-submit").click()

        alert = page.get_by_test_id("emergency")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text("120")
        await expect(page.get_by_test_id("call-120")).to_have_attribute("href", "tel:120")
        await expect(page.get_by_test_id("suggestion")).to_have_count(0)
        await screenshot(page, "31-guidance-emergency.png", full_page=True)

    async def test_the_department_search_understands_symptoms_and_full_pinyin(
        self, page: Page
    ) -> None:
        await page.goto("/departments")
        search = page.get_by_role("searchbox")
        departments = page.locator("#department-list")
        await search.fill("xinxueguan")
        await expect(departments.get_by_role("link")).to_have_count(1)
        await expect(departments).to_contain_text("心血管内科")
        await search.fill("头疼")
        await expect(departments).to_contain_text("按您描述的症状推荐")
        await expect(departments.get_by_role("link").first).to_contain_text("神经内科")
        await screenshot(page, "32-search-symptoms.png")
