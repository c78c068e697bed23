"""Announcements on the pages over HTTP: the outpatient office posts and withdraws on its
page; the patient pages, the kiosk and the department's waiting-room screen show the notices
that cover them, in the visitor's language."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests import factories as f
from tests.frontdesk.test_pages import Floor, floor, http, kiosk, staff  # noqa: F401  (fixtures)
from tests.helpers import row_counts
from tests.portal.conftest import Browser
from yuyue.operations.models import Announcement

PAGE = "/desk/announcements"


def form(**changes: str) -> dict[str, str]:
    values = {
        "kind": "general",
        "severity": "warning",
        "scope": "hospital",
        "starts_at": "2026-11-23T08:00",
        "ends_at": "2026-11-24T18:00",
        "title": "停车场施工",
        "body": "东门停车场暂停使用，请从北门进入。",
        "title_en": "Car park works",
        "body_en": "The east car park is closed; use the north gate.",
    }
    values.update(changes)
    return values


async def post(office: Browser, **changes: str) -> httpx.Response:
    await office.page(PAGE)
    return await office.submit(PAGE, form(**changes))


class TestOfficePage:
    async def test_posted_notices_reach_the_pages_they_cover_and_leave_when_withdrawn(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        world = floor.world
        async with floor.ctx.db.session_scope() as s:
            surgery = await f.make_department(s, hospital=world.hospital, name="外科")
        office = await staff(http, "scheduler")
        posted = await post(office)
        assert posted.status_code == 303, posted.text
        delayed = await post(
            office,
            kind="clinic_delayed",
            severity="urgent",
            scope=f"department:{world.department.id}",
            title="内科门诊推迟",
            body="周一内科门诊推迟 30 分钟。",
            title_en="",
            body_en="",
        )
        assert delayed.status_code == 303, delayed.text
        listed = await office.page(PAGE + "?done=posted")
        assert "公告已发布" in listed.text and listed.text.count('data-testid="staff-notice"') == 2

        # The patient pages: the hospital's notice everywhere, the department's on its page.
        home = await http.get("/")
        assert "停车场施工" in home.text and "内科门诊推迟" not in home.text
        department = await http.get(f"/departments/{world.department.id}")
        assert "停车场施工" in department.text and "内科门诊推迟" in department.text
        # The urgent one first.
        assert department.text.index("内科门诊推迟") < department.text.index("停车场施工")
        other = await http.get(f"/departments/{surgery.id}")
        assert "停车场施工" in other.text and "内科门诊推迟" not in other.text
        everything = await http.get("/announcements")
        assert everything.text.count('data-testid="listed-notice"') == 2
        english = await http.get("/", headers={"Accept-Language": "en"})
        assert "Car park works" in english.text

        # The kiosk and the screens (set up with the kiosk key, nobody signed in).
        http.cookies.delete("yuyue_staff")
        device = await kiosk(http, floor)
        hall = await device.page("/kiosk")
        assert "停车场施工" in hall.text and "内科门诊推迟" not in hall.text
        screen = await http.get(f"/screens/{world.department.id}")
        assert "停车场施工" in screen.text and "内科门诊推迟" in screen.text
        surgery_screen = await http.get(f"/screens/{surgery.id}")
        assert "内科门诊推迟" not in surgery_screen.text

        # Withdrawn: off the screen at the next read.
        office = await staff(http, "scheduler")
        async with floor.ctx.db.read() as s:
            delayed_id = await s.scalar(
                select(Announcement.id).where(Announcement.title == "内科门诊推迟")
            )
        await office.page(PAGE)
        withdrawn = await office.submit(f"{PAGE}/{delayed_id}/withdraw")
        assert withdrawn.status_code == 303
        assert "已撤下" in (await office.page(PAGE + "?done=withdrawn")).text
        http.cookies.delete("yuyue_staff")
        screen = await http.get(f"/screens/{world.department.id}")
        assert "内科门诊推迟" not in screen.text and "停车场施工" in screen.text

    async def test_a_nurse_may_not_post_and_a_bad_form_changes_nothing(
        self,
        http: httpx.AsyncClient,  # noqa: F811
        floor: Floor,  # noqa: F811
    ) -> None:
        nurse = await staff(http, "nurse")
        assert (await nurse.page(PAGE)).status_code == 403
        counts = await row_counts(floor.ctx.db)
        assert (await nurse.submit(PAGE, form())).status_code == 403
        assert await row_counts(floor.ctx.db) == counts
        http.cookies.delete("yuyue_staff")
        office = await staff(http, "scheduler")
        counts = await row_counts(floor.ctx.db)
        for bad in (
            form(ends_at="2026-11-23T07:00"),
            form(ends_at="tomorrow"),
            form(title=""),
            form(kind="maintenance", scope=f"department:{floor.world.department.id}"),
        ):
            refused = await post(office, **bad)
            assert refused.status_code == 422, refused.text
            assert "公告未发布" in refused.text
            # The form keeps what was typed.
            assert bad["body"] in refused.text
        assert await row_counts(floor.ctx.db) == counts
