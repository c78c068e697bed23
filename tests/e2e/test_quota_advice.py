"""Quota advice in a browser: the demo's scheduler opens the advice drawn from past weeks'
session rows, reads a department's reasons, edits its advised split and accepts it; the
department's pool shares are then the edited ones and an audit row records the advice and
the edit. Screenshots for docs/reports.md and the staff guide."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import BrowserContext, expect
from sqlalchemy import func, insert, select

from tests.e2e import hospital as h
from tests.e2e.conftest import TODAY, LiveServer, screenshot
from tests.e2e.test_visit_day import desktop  # noqa: F401  (fixture)
from yuyue.reports.models import ReportSession
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.models import Department, Doctor
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

# Other browser tests generate 内科's sessions and check their shares: leave it alone.
KEEP_OUT = "内科"


WEEKS = 8
CAPACITY, REMOTE = 30, 18  # places per session, of which the remote pools'
# Per department in turn: sells out within the hour with on-site places idle; sells out in
# a day or two; half empty; many no-shows; a crowded window.
PROFILES = ("fast", "steady", "quiet", "no_shows", "window")


def _session_row(rng: random.Random, profile: str, day: Any, ids: dict[str, Any]) -> dict[str, Any]:
    released = datetime.combine(day - timedelta(days=7), datetime.min.time(), tzinfo=UTC)
    minutes: int | None = None
    waitlist, no_show = 0, rng.randint(0, 1)
    if profile == "fast":
        remote, local, minutes, waitlist = REMOTE, rng.randint(3, 6), rng.randint(15, 100), 3
    elif profile == "steady":
        remote, local, minutes = REMOTE, rng.randint(8, 11), rng.randint(1500, 4000)
    elif profile == "quiet":
        remote, local = rng.randint(6, 11), rng.randint(3, 6)
    elif profile == "no_shows":
        remote, local, no_show = rng.randint(15, 17), rng.randint(6, 9), rng.randint(4, 6)
    else:
        remote, local = rng.randint(12, 16), CAPACITY - REMOTE
    return {
        "id": uuid.uuid4(),
        **ids,
        "day": day,
        "campus_id": None,
        "session_id": uuid.uuid4(),
        "capacity": CAPACITY,
        "remote_capacity": REMOTE,
        "remote_used": remote,
        "local_used": local,
        "attended": remote + local - no_show,
        "no_show": no_show,
        "waitlist_joined": waitlist,
        "waitlist_accepted": 1 if waitlist else 0,
        "released_at": released,
        "sold_out_at": None if minutes is None else released + timedelta(minutes=minutes),
        "sellout_minutes": minutes,
    }


async def session_history(ctx: AppContext) -> None:
    """`WEEKS` weeks of the demo doctors' past sessions as the refresh summarises them
    (report_session only: the quota advice and the sell-out report read nothing else, and
    the other browser tests' bookings, payments and queues stay untouched). Written once."""
    hospital = await h.demo_hospital(ctx)
    async with ctx.db.session_scope() as session:
        present = await session.scalar(
            select(func.count())
            .select_from(ReportSession)
            .where(ReportSession.hospital_id == hospital.id)
        )
        if present:
            return
        codes = dict((await session.execute(select(Department.id, Department.code))).all())
        profile = {
            department: PROFILES[number % len(PROFILES)]
            for number, department in enumerate(sorted(codes, key=lambda key: codes[key]))
        }
        doctors = (
            await session.execute(
                select(Doctor.department_id, Doctor.id, Doctor.level_id).order_by(Doctor.code)
            )
        ).all()
        rng = random.Random(11)
        rows = []
        for number, (department, doctor, level) in enumerate(doctors):
            ids = {
                "hospital_id": hospital.id,
                "department_id": department,
                "doctor_id": doctor,
                "level_id": level,
            }
            for offset in range(1, WEEKS * 7 + 1):
                day = TODAY - timedelta(days=offset)
                if (day.toordinal() + number) % 7 in (0, 3):
                    rows.append(_session_row(rng, profile[department], day, ids))
        await session.execute(insert(ReportSession), rows)


def ratios_of(department_id: uuid.UUID) -> Any:
    async def work(ctx: AppContext) -> dict[str, int]:
        hospital = await h.demo_hospital(ctx)
        async with ctx.db.read() as session:
            return await scheduling.pool_ratios(
                session, hospital_id=hospital.id, department_id=department_id, doctor_id=None
            )

    return work


def accepted_audits(department_id: uuid.UUID) -> Any:
    async def work(ctx: AppContext) -> list[tuple[str, dict[str, Any] | None]]:
        async with ctx.db.read() as session:
            rows = await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "quota_advice_accepted",
                    AuditEntry.entity_id == department_id,
                )
            )
            return [(row.actor, row.after) for row in rows]

    return work


class TestQuotaAdvice:
    async def test_the_scheduler_edits_and_accepts_a_departments_split(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        await live_server.acall(session_history)
        page = await desktop.new_page()
        await page.goto("/reports/quota-advice")
        await page.get_by_label("用户名").fill("scheduler")
        await page.get_by_label("密码").fill("scheduler123")
        await page.get_by_test_id("staff-sign-in").click()
        await expect(page.get_by_test_id("report-title")).to_have_text("号源配额建议")

        # Advice for departments and their doctors, each with its reasons.
        advice = page.get_by_test_id("advice")
        await expect(advice.first).to_be_visible()
        assert await advice.count() > 10
        departments = page.locator('[data-testid="advice"][data-kind="department"]')
        # The demo has departments that sell out within the hour: pick one (not 内科).
        fast = departments.filter(has=page.locator('li[data-code="sells_out_fast"]')).filter(
            has_not_text=KEEP_OUT
        )
        await expect(fast.first).to_be_visible()
        chosen = fast.first
        department_id = uuid.UUID(await chosen.get_attribute("data-department") or "")
        reasons = chosen.get_by_test_id("reasons").locator("li")
        assert await reasons.count() >= 1
        await expect(reasons.first).to_contain_text("放号")
        before = await live_server.acall(ratios_of(department_id))

        appointment = chosen.get_by_label("建议比例 · 预约", exact=True)
        onsite = chosen.get_by_label("建议比例 · 现场", exact=True)
        advised = int(await appointment.input_value()), int(await onsite.input_value())
        assert advised[0] > before["appointment"]  # selling out fast: more for booking
        await chosen.scroll_into_view_if_needed()
        await screenshot(page, "reports-08-quota-advice.png")

        # The scheduler keeps a little more on site than advised.
        edited = {"appointment": advised[0] - 1, "onsite": advised[1] + 1}
        await appointment.fill(str(edited["appointment"]))
        await onsite.fill(str(edited["onsite"]))
        await chosen.get_by_test_id("accept-advice").click()

        done = page.get_by_role("status")
        await expect(done).to_contain_text("已写入")
        await expect(done).to_contain_text(f"{edited['appointment']}%")
        await screenshot(page, "reports-09-quota-accepted.png")

        after = await live_server.acall(ratios_of(department_id))
        assert after != before
        assert (after["appointment"], after["onsite"]) == (
            edited["appointment"],
            edited["onsite"],
        )
        assert sum(after.values()) == 100
        [(actor, record)] = await live_server.acall(accepted_audits(department_id))
        assert actor and record is not None
        assert record["edited"] is True
        assert record["written"]["appointment"] == edited["appointment"]
        assert record["advice"]["ratios"]["appointment"] == advised[0]
        assert record["advice"]["reasons"]
