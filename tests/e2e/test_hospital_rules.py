"""The hospital's rules in a browser: the demo's scheduler opens the message templates from
the console's menu, writes Paediatrics' own reminder (with the department's advice on what
to bring), previews it filled with sample values, is told plainly when a placeholder is
unknown, saves it; then tightens the no-show rule. Screenshots for docs/staff-guide.md."""

from __future__ import annotations

import uuid

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select

from tests.e2e.conftest import LiveServer, screenshot
from tests.e2e.test_visit_day import desktop, staff_sign_in  # noqa: F401  (fixture)
from yuyue.attendance.models import NoShowPolicy
from yuyue.notifications.models import MessageTemplate
from yuyue.scheduling.models import Department
from yuyue.web.context import AppContext

SUBJECT = "儿科就诊提醒"
BODY = (
    "{patient}家长您好：{date} {time}请带孩子到{location}就诊（序号{sequence_number}）。"
    "{what_to_bring}"
)


async def paediatrics(ctx: AppContext) -> uuid.UUID:
    async with ctx.db.read() as s:
        found = await s.scalar(select(Department.id).where(Department.code == "PED"))
    assert found is not None
    return found


async def saved_templates(ctx: AppContext) -> list[tuple[uuid.UUID | None, str, str, str]]:
    async with ctx.db.read() as s:
        rows = (await s.scalars(select(MessageTemplate))).all()
    return [(r.department_id, r.kind, r.locale, r.subject) for r in rows]


async def no_show_policy(ctx: AppContext) -> tuple[int, int, list[int]] | None:
    async with ctx.db.read() as s:
        row = await s.scalar(select(NoShowPolicy))
    return (row.threshold, row.window_days, list(row.ban_days)) if row else None


class TestHospitalRules:
    async def test_the_scheduler_writes_a_department_template_and_tightens_no_shows(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        department = await live_server.acall(paediatrics)
        assert await live_server.acall(saved_templates) == []

        page = await desktop.new_page()
        await staff_sign_in(page, "scheduler", "scheduler123")
        await page.locator('[data-testid="menu-entry"][data-key="message_templates"] a').click()
        await expect(page.get_by_role("heading", name="消息模板", exact=True)).to_be_visible()

        picker = page.get_by_test_id("template-pick")
        await picker.get_by_label("适用范围").select_option(str(department))
        await picker.get_by_label("消息").select_option("reminder")
        await picker.get_by_test_id("template-show").click()
        await expect(page.get_by_test_id("template-source")).to_have_text("现用：系统默认")

        form = page.get_by_test_id("template-form")
        # An unknown placeholder is named, with the ones allowed; nothing is saved.
        await form.get_by_label("正文").fill("{patient}，您的证件号{id_number}")
        await form.get_by_test_id("template-save").click()
        await expect(page.get_by_role("alert")).to_contain_text("不认识的占位符 id_number")
        assert await live_server.acall(saved_templates) == []

        await form.get_by_label("标题").fill(SUBJECT)
        await form.get_by_label("正文").fill(BODY)
        await form.get_by_test_id("template-preview").click()
        preview = page.get_by_test_id("preview")
        await expect(preview.get_by_test_id("preview-subject")).to_have_text(SUBJECT)
        await expect(preview.get_by_test_id("preview-body")).to_contain_text("张小明家长您好")
        await expect(preview.get_by_test_id("preview-body")).to_contain_text("疫苗接种本")
        await expect(preview.get_by_test_id("preview-body")).to_contain_text("妇儿楼1层")
        assert await live_server.acall(saved_templates) == []
        await screenshot(page, "75-message-template-preview.png", full_page=True)

        await form.get_by_test_id("template-save").click()
        await expect(page.get_by_role("status")).to_contain_text("模板已保存")
        await expect(page.get_by_test_id("template-source")).to_have_text("现用：本科室单独的模板")
        assert await live_server.acall(saved_templates) == [
            (department, "reminder", "zh-CN", SUBJECT)
        ]

        # The no-show rule, one tab away: two missed visits within 180 days, then longer.
        await page.get_by_test_id("scheduling-nav").get_by_role("link", name="爽约规则").click()
        await expect(page.get_by_test_id("no-show-summary")).to_contain_text(
            "365 天内爽约 3 次，暂停 180、360 天"
        )
        rules = page.get_by_test_id("no-show-form")
        await rules.get_by_label("暂停天数").fill("180, 90")
        await rules.get_by_test_id("save-no-show").click()
        await expect(page.get_by_role("alert")).to_contain_text("暂停天数")
        assert await live_server.acall(no_show_policy) is None

        await rules.get_by_label("爽约次数").fill("2")
        await rules.get_by_label("统计天数").fill("180")
        await rules.get_by_label("暂停天数").fill("90, 180")
        await rules.get_by_test_id("save-no-show").click()
        await expect(page.get_by_role("status")).to_contain_text("爽约规则已保存")
        await expect(page.get_by_test_id("no-show-summary")).to_contain_text(
            "180 天内爽约 2 次，暂停 90、180 天"
        )
        await screenshot(page, "76-no-show-rules.png", full_page=True)
        assert await live_server.acall(no_show_policy) == (2, 180, [90, 180])
