"""The hospital's rules over HTTP (the scheduling pages): visit-day rules, no-show rules, when
messages go and the wording of messages per department, with a preview. Each save is
audited by its service; each refusal is a sentence on the page and changes nothing; only
schedulers (and administrators) may open them."""

from __future__ import annotations

import html
import re
import uuid
from datetime import time

import httpx
import pytest
from sqlalchemy import select

from tests.frontdesk.test_pages import Floor, book, floor, http, staff  # noqa: F401  (fixtures)
from tests.frontdesk.test_scheduling_pages import audit_actions, scheduler
from tests.helpers import row_counts
from tests.notifications.test_delivery import FakeSms
from yuyue.attendance.models import NoShowPolicy
from yuyue.notifications.delivery import Senders, deliver_due
from yuyue.notifications.models import MessageTemplate, NotificationSettings
from yuyue.staff.models import AuditEntry
from yuyue.visits.models import VisitPolicy

VISIT = "/scheduling/visit-rules"
NO_SHOW = "/scheduling/no-show-rules"
MESSAGES = "/scheduling/messages"
TEMPLATES = "/scheduling/message-templates"


def inputs(page: str) -> dict[str, str]:
    """The value of every named input on a page."""
    return dict(re.findall(r'name="(\w+)" type="(?:number|text|time)"[^>]*value="([^"]*)"', page))


async def table_rows(floor: Floor, model: type) -> list:  # type: ignore[type-arg]  # noqa: F811
    async with floor.ctx.db.read() as s:
        return list((await s.scalars(select(model))).all())


class TestVisitRules:
    async def test_the_defaults_are_shown_and_a_change_is_saved_and_audited(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, VISIT)
        page = await office.page(VISIT)
        shown = inputs(page.text)
        assert shown["check_in_minutes_before"] == "60" and shown["late_grace_minutes"] == "0"
        assert shown["priority_emergency"] == "1" and shown["priority_return_visit"] == "5"
        saved = await office.submit(
            VISIT,
            {
                **shown,
                "check_in_minutes_before": "45",
                "late_grace_minutes": "10",
                "batch_slots": "2",
                # Elderly before the disabled; return visits no longer a priority.
                "priority_elderly": "3",
                "priority_disabled": "4",
                "priority_return_visit": "",
            },
        )
        assert saved.status_code == 303, saved.text
        again = await office.page(saved.headers["location"])
        assert "就诊规则已保存" in again.text
        [row] = await table_rows(floor, VisitPolicy)
        assert (row.check_in_minutes_before, row.late_grace_minutes, row.batch_slots) == (45, 10, 2)
        assert row.priority_classes == ["emergency", "military", "elderly", "disabled"]
        assert "update_visit_policy" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "sentence"),
        [
            ({"check_in_minutes_before": "2000"}, "报到提前开放"),
            ({"elderly_age": "12"}, "老年人优先年龄"),
            ({"late_grace_minutes": "abc"}, "迟到宽限"),
            ({"priority_emergency": "1", "priority_elderly": "1"}, "优先顺序须为 1–5 的不重复整数"),
            ({"priority_military": "9"}, "优先顺序须为"),
        ],
    )
    async def test_bad_input_is_explained_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        sentence: str,
    ) -> None:
        office = await scheduler(http, VISIT)
        assert (await office.submit(VISIT, {"check_in_minutes_before": "30"})).status_code == 303
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(VISIT, fields)
        assert refused.status_code == 422, refused.text
        assert sentence in html.unescape(refused.text)
        # The form keeps what was typed.
        for value in fields.values():
            assert f'value="{value}"' in refused.text
        assert await row_counts(floor.ctx.db) == before
        [row] = await table_rows(floor, VisitPolicy)
        assert row.check_in_minutes_before == 30 and row.elderly_age == 70


class TestNoShowRules:
    async def test_threshold_window_and_escalating_bans_are_saved_and_audited(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, NO_SHOW)
        page = await office.page(NO_SHOW)
        assert "现行规则：365 天内爽约 3 次，暂停 180、360 天" in page.text
        saved = await office.submit(
            NO_SHOW,
            {"threshold": "2", "window_days": "90", "ban_days": "30，60 90", "grace_minutes": ""},
        )
        assert saved.status_code == 303, saved.text
        again = await office.page(saved.headers["location"])
        assert "爽约规则已保存" in again.text
        assert "现行规则：90 天内爽约 2 次，暂停 30、60、90 天" in again.text
        [row] = await table_rows(floor, NoShowPolicy)
        assert (row.threshold, row.window_days, row.ban_days) == (2, 90, [30, 60, 90])
        assert row.grace_minutes == 30  # left empty: kept
        async with floor.ctx.db.read() as s:
            entry = await s.scalar(
                select(AuditEntry).where(AuditEntry.action == "update_no_show_policy")
            )
        assert entry is not None and entry.actor.startswith("staff:scheduler")
        assert entry.before is not None and entry.before["threshold"] == 3
        assert entry.after is not None and entry.after["ban_days"] == [30, 60, 90]

    @pytest.mark.parametrize(
        ("fields", "sentence"),
        [
            ({"threshold": "0"}, "爽约次数"),
            ({"window_days": "1000"}, "统计天数"),
            ({"ban_days": "180, 90"}, "暂停天数"),
            ({"ban_days": "30, x"}, "暂停天数"),
            ({"ban_days": "1, 2, 3, 4, 5, 6"}, "暂停天数"),
            ({"grace_minutes": "-5"}, "记为爽约"),
        ],
    )
    async def test_bad_input_is_explained_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        sentence: str,
    ) -> None:
        office = await scheduler(http, NO_SHOW)
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(NO_SHOW, fields)
        assert refused.status_code == 422, refused.text
        assert "提交的内容有误" in refused.text and sentence in refused.text
        assert await row_counts(floor.ctx.db) == before
        assert await table_rows(floor, NoShowPolicy) == []


class TestMessageSettings:
    async def test_reminders_and_quiet_hours_are_saved_and_audited(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, MESSAGES)
        page = await office.page(MESSAGES)
        shown = inputs(page.text)
        assert shown == {
            "reminder_offsets_hours": "168, 72, 24",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
        }
        assert "系统默认" in page.text
        # Which messages go, and how: a sign-in code by SMS only; only reminders wait.
        kinds = dict(re.findall(r'data-kind="(\w+)"><td>[^<]*</td><td>([^<]*)</td>', page.text))
        assert kinds["sign_in_code"] == "短信"
        assert kinds["booking_confirmed"] == "短信 · 站内信 · 邮件"
        saved = await office.submit(
            MESSAGES,
            {
                "reminder_offsets_hours": "24, 2",
                "quiet_hours_start": "21:30",
                "quiet_hours_end": "08:00",
            },
        )
        assert saved.status_code == 303, saved.text
        assert "消息设置已保存" in (await office.page(saved.headers["location"])).text
        [row] = await table_rows(floor, NotificationSettings)
        assert row.reminder_offsets_hours == [24, 2]
        assert (row.quiet_hours_start, row.quiet_hours_end) == (time(21, 30), time(8, 0))
        assert "update_notification_settings" in await audit_actions(floor)

    @pytest.mark.parametrize(
        ("fields", "sentence"),
        [
            ({"reminder_offsets_hours": "24, 24"}, "提醒时间须为"),
            ({"reminder_offsets_hours": "9999"}, "提醒时间须为"),
            ({"reminder_offsets_hours": "1 day"}, "提醒时间"),
            ({"quiet_hours_start": "25:00"}, "免打扰开始"),
            ({"quiet_hours_end": ""}, "免打扰结束"),
        ],
    )
    async def test_bad_input_is_explained_and_nothing_changes(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        sentence: str,
    ) -> None:
        office = await scheduler(http, MESSAGES)
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(
            MESSAGES,
            {
                "reminder_offsets_hours": "24",
                "quiet_hours_start": "22:00",
                "quiet_hours_end": "07:00",
                **fields,
            },
        )
        assert refused.status_code == 422, refused.text
        assert sentence in refused.text
        assert await row_counts(floor.ctx.db) == before


class TestMessageTemplates:
    def template_form(self, floor: Floor, **fields: str) -> dict[str, str]:  # noqa: F811
        return {
            "department": str(floor.world.department.id),
            "kind": "booking_confirmed",
            "locale": "zh-CN",
            "subject": "内科挂号成功",
            "body": "{patient}，您已预约{department}，{date} {time}，请带好病历。{what_to_bring}",
            "action": "save",
            **fields,
        }

    async def test_a_department_template_is_previewed_saved_and_used_for_its_messages(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        department = world.department.id
        office = await scheduler(http, TEMPLATES)
        page = await office.page(f"{TEMPLATES}?department={department}&kind=booking_confirmed")
        assert 'data-source="default"' in page.text
        # The default wording, previewed with the department's real name.
        assert "张小明，您已预约" in page.text and world.department.name in page.text

        before = await row_counts(floor.ctx.db)
        previewed = await office.submit(TEMPLATES, self.template_form(floor, action="preview"))
        assert previewed.status_code == 200, previewed.text
        assert f"张小明，您已预约{world.department.name}" in previewed.text
        assert await row_counts(floor.ctx.db) == before  # a preview saves nothing

        saved = await office.submit(TEMPLATES, self.template_form(floor))
        assert saved.status_code == 303, saved.text
        shown = await office.page(saved.headers["location"])
        assert "模板已保存" in shown.text and 'data-source="department"' in shown.text
        assert 'data-testid="own-template" data-kind="booking_confirmed"' in shown.text
        [row] = await table_rows(floor, MessageTemplate)
        assert (row.department_id, row.subject) == (department, "内科挂号成功")
        assert "save_message_template" in await audit_actions(floor)

        # A booking in that department is confirmed in the department's words.
        await book(floor)
        sms = FakeSms()
        await deliver_due(floor.ctx, senders=Senders(sms=sms))
        confirmations = [c.text for c in sms.calls if "您已预约" in c.text]
        assert confirmations and "请带好病历" in confirmations[0]

    async def test_removing_the_department_template_falls_back_to_the_hospitals(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        department = str(floor.world.department.id)
        office = await scheduler(http, TEMPLATES)
        hospital = self.template_form(floor, department="", subject="本院挂号成功")
        assert (await office.submit(TEMPLATES, hospital)).status_code == 303
        assert (await office.submit(TEMPLATES, self.template_form(floor))).status_code == 303
        removed = await office.submit(
            f"{TEMPLATES}/remove",
            {"department": department, "kind": "booking_confirmed", "locale": "zh-CN"},
        )
        assert removed.status_code == 303, removed.text
        shown = await office.page(removed.headers["location"])
        assert 'data-source="hospital"' in shown.text and "本院挂号成功" in shown.text
        [left] = await table_rows(floor, MessageTemplate)
        assert left.department_id is None
        assert "remove_message_template" in await audit_actions(floor)

    @pytest.mark.parametrize("action", ["save", "preview"])
    @pytest.mark.parametrize(
        ("fields", "sentence"),
        [
            ({"body": "{patient}，您的身份证号{id_number}"}, "不认识的占位符 id_number"),
            ({"subject": "{patient"}, "花括号不成对"),
            ({"body": "{patient!r}"}, "花括号不成对"),
            ({"subject": "  "}, "标题和正文都不能为空"),
            ({"kind": "sign_in_code", "body": "{code}"}, "只能设置全院模板"),
            ({"kind": "no_such_kind"}, "消息"),
            ({"locale": "fr"}, "语言"),
            ({"department": str(uuid.uuid4())}, "未找到科室"),
        ],
    )
    async def test_a_bad_template_is_explained_and_nothing_is_saved(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
        fields: dict[str, str],
        sentence: str,
        action: str,
    ) -> None:
        office = await scheduler(http, TEMPLATES)
        before = await row_counts(floor.ctx.db)
        refused = await office.submit(TEMPLATES, self.template_form(floor, action=action, **fields))
        assert refused.status_code in (404, 422), refused.text
        assert sentence in html.unescape(refused.text)
        assert 'data-testid="preview"' not in refused.text
        assert await row_counts(floor.ctx.db) == before

    async def test_the_allowed_placeholders_are_listed(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, TEMPLATES)
        page = await office.page(f"{TEMPLATES}?kind=blacklisted&locale=en")
        assert (
            "<code>{until}</code>" in page.text and "<code>{voucher_code}</code>" not in page.text
        )
        # A department is offered only the messages about an appointment.
        department = await office.page(
            f"{TEMPLATES}?department={floor.world.department.id}&kind=blacklisted"
        )
        assert 'value="blacklisted"' not in department.text


class TestInEnglish:
    async def test_every_page_and_refusal_reads_in_english(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        office = await scheduler(http, VISIT)
        english = {"accept-language": "en"}
        for path, heading in [
            (VISIT, "Visit-day rules"),
            (NO_SHOW, "No-show rules"),
            (MESSAGES, "Message settings"),
            (f"{TEMPLATES}?kind=reminder&locale=en", "Message templates"),
        ]:
            page = await office.page(path, headers=english)
            assert page.status_code == 200, path
            assert f"<h1>{heading}</h1>" in page.text, path
        shown = await office.page(NO_SHOW, headers=english)
        assert "In force: 3 missed visits within 365 days suspend booking for 180 / 360" in (
            shown.text
        )
        refused = await http.post(
            TEMPLATES,
            data={"csrf": office.csrf, **TestMessageTemplates().template_form(floor)}
            | {"locale": "en", "body": "{id_number}"},
            headers=english,
        )
        assert refused.status_code == 422
        assert "unknown placeholders id_number (allowed: date, department" in refused.text


PAGES = [VISIT, NO_SHOW, MESSAGES, TEMPLATES]


class TestWhoMay:
    async def test_a_nurse_opens_nothing_and_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        nurse = await staff(http, "nurse")
        await nurse.page("/desk")
        for path in PAGES:
            assert (await nurse.page(path)).status_code == 403, path
        before = await row_counts(floor.ctx.db)
        for path, form in self.posts(floor):
            assert (await nurse.submit(path, form)).status_code == 403, path
        assert await row_counts(floor.ctx.db) == before

    async def test_a_form_without_its_token_is_refused(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        await scheduler(http, VISIT)
        before = await row_counts(floor.ctx.db)
        for path, form in self.posts(floor):
            assert (await http.post(path, data=form)).status_code == 403, path
            forged = await http.post(path, data={**form, "csrf": "0" * 32})
            assert forged.status_code == 403, path
        assert await row_counts(floor.ctx.db) == before

    def posts(self, floor: Floor) -> list[tuple[str, dict[str, str]]]:  # noqa: F811
        return [
            (VISIT, {"check_in_minutes_before": "30"}),
            (NO_SHOW, {"threshold": "2"}),
            (
                MESSAGES,
                {
                    "reminder_offsets_hours": "24",
                    "quiet_hours_start": "22:00",
                    "quiet_hours_end": "07:00",
                },
            ),
            (TEMPLATES, TestMessageTemplates().template_form(floor)),
            (f"{TEMPLATES}/remove", {"kind": "booking_confirmed", "locale": "zh-CN"}),
        ]
