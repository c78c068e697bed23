"""The reports in a browser: the demo's scheduler signs in and opens every report, each
drawing its chart; screenshots for docs/user-guide.md and docs/reports.md. The history is
eight weeks of generated visit days, summarised by the same pure function the refresh uses."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

from playwright.async_api import BrowserContext, expect
from sqlalchemy import insert, select

from tests.e2e.conftest import NOW, TODAY, LiveServer, screenshot
from tests.e2e.test_quota_advice import session_history
from tests.e2e.test_visit_day import desktop  # noqa: F401  (fixture)
from yuyue.reports import rules
from yuyue.reports.models import (
    ReportDay,
    ReportDemand,
    ReportMoney,
    ReportPlaces,
    ReportRefresh,
    ReportWaits,
)
from yuyue.reports.rules import (
    AppointmentFact,
    AttemptFact,
    DayFacts,
    MoneyFact,
    ReportName,
    SessionFact,
    VisitFact,
    WaitlistFact,
)
from yuyue.scheduling.models import Doctor, Hospital
from yuyue.web.context import AppContext

WEEKS = 8
CHANNELS = ["app", "wechat", "alipay", "web", "kiosk", "window"]
STATUSES = ["completed", "no_show", "cancelled", "expired", "booked"]


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


async def history(ctx: AppContext) -> None:
    rng = random.Random(11)
    async with ctx.db.session_scope() as session:
        hospital = await session.scalar(select(Hospital).where(Hospital.code == "demo"))
        assert hospital is not None
        doctors = (
            await session.execute(select(Doctor.department_id, Doctor.id, Doctor.level_id))
        ).all()
        for offset in range(WEEKS * 7):
            day = TODAY - timedelta(days=offset + 1)
            sessions, appointments, visits, money, waitlist = [], [], [], [], []
            attempts: list[AttemptFact] = []
            for department, doctor, level in doctors[:24]:
                sid = uuid.uuid4()
                sessions.append(
                    SessionFact(sid, day, None, department, doctor, level, False, 30, 18)
                )
                for _ in range(rng.randint(12, 30)):
                    status = rng.choices(STATUSES, [70, 8, 14, 3, 5])[0]
                    made = _at(
                        day - timedelta(days=rng.choice((7, 7, 6, 3, 1))),
                        8 if rng.random() < 0.4 else rng.randint(7, 21),
                        rng.randint(0, 59),
                    )
                    back = made + timedelta(hours=5) if status == "cancelled" else None
                    local = made + timedelta(hours=8)
                    attempts.append(AttemptFact(sid, "app", local.date(), local.hour, "booked", 1))
                    appointments.append(
                        AppointmentFact(
                            sid,
                            rng.choice(CHANNELS),
                            status,
                            made,
                            back,
                            made + timedelta(minutes=15) if status == "expired" else None,
                            True,
                        )
                    )
                    if status == "completed":
                        checked = _at(day, rng.randint(7, 16), rng.randint(0, 59))
                        called = checked + timedelta(minutes=rng.randint(5, 70))
                        visits.append(
                            VisitFact(
                                sid, checked, called, called + timedelta(minutes=rng.randint(4, 15))
                            )
                        )
                        if rng.random() < 0.3:
                            money.append(
                                MoneyFact(
                                    sid,
                                    "app",
                                    rng.choice(("wechatpay", "alipay")),
                                    made,
                                    5000,
                                    False,
                                )
                            )
                    if status == "cancelled" and rng.random() < 0.3:
                        money.append(MoneyFact(sid, "app", "wechatpay", made, 5000, False))
                        money.append(MoneyFact(sid, "app", "wechatpay", back or made, 5000, True))
                if rng.random() < 0.4:
                    # Sold out soon after the 08:00 release: the refusals keep coming.
                    release_day = day - timedelta(days=7)
                    for hour, refused in ((8, rng.randint(20, 90)), (9, rng.randint(0, 15))):
                        attempts.append(
                            AttemptFact(sid, "wechat", release_day, hour, "sold_out", refused)
                        )
                    attempts.append(
                        AttemptFact(sid, "app", release_day, 7, "outside_release_window", 3)
                    )
                if rng.random() < 0.3:
                    waitlist.append(
                        WaitlistFact(
                            sid,
                            "app",
                            rng.choice(("accepted", "lapsed")),
                            _at(day - timedelta(days=6), 8, 5),
                        )
                    )
            session.add(ReportRefresh(hospital_id=hospital.id, day=day, refreshed_at=NOW))
            summary = rules.summarise_day(
                DayFacts(day, sessions, appointments, waitlist, visits, money, attempts),
                hospital_id=hospital.id,
                timezone=hospital.timezone,
            )
            for table, rows in (
                (ReportDay, summary.day_rows),
                (ReportPlaces, summary.place_rows),
                (ReportDemand, summary.demand_rows),
                (ReportWaits, summary.wait_rows),
                (ReportMoney, summary.money_rows),
            ):
                if rows:
                    await session.execute(
                        insert(table), [{"id": uuid.uuid4(), **row} for row in rows]
                    )


class TestReports:
    async def test_the_scheduler_opens_every_report(
        self,
        live_server: LiveServer,
        desktop: BrowserContext,  # noqa: F811
    ) -> None:
        await live_server.acall(history)
        # The sell-out report reads the sessions' rows, which the quota advice's test writes.
        await live_server.acall(session_history)
        page = await desktop.new_page()
        first = (TODAY - timedelta(days=WEEKS * 7)).isoformat()
        last = (TODAY - timedelta(days=1)).isoformat()
        # Opening a report signed out leads to the sign-in, and back to the report.
        await page.goto("/reports")
        await page.get_by_label("用户名").fill("scheduler")
        await page.get_by_label("密码").fill("scheduler123")
        await page.get_by_test_id("staff-sign-in").click()
        await expect(page.get_by_test_id("report-title")).to_be_visible()
        for number, name in enumerate(ReportName, start=1):
            await page.goto(f"/reports/{name.value}?date_from={first}&date_to={last}")
            await expect(page.get_by_test_id("report-title")).to_be_visible()
            chart = page.get_by_test_id("chart")
            await expect(chart).to_be_visible()
            box = await chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 60
            await expect(page.get_by_test_id("report-row").first).to_be_visible()
            await screenshot(page, f"reports-{number:02d}-{name.value}.png", full_page=True)
            if name is ReportName.DEMAND_HEATMAP:
                # Hundreds of cells: the page lists the busiest, the files hold them all.
                rows = page.get_by_test_id("report-row")
                await expect(rows).to_have_count(rules.HEAT_TABLE_ROWS)
                await expect(page.get_by_test_id("heat-note")).to_be_visible()
                rings = page.locator("[data-sellouts]")
                assert await rings.count() > 0
                # Shaded by attempts, with the sold-out share along the cells' foot.
                await expect(chart).to_contain_text("挂号尝试")
                assert await page.locator("[data-share]").count() > 0
            if name is ReportName.SELL_OUTS:
                await expect(chart).to_contain_text("分钟")
                await expect(chart).to_contain_text("约满场次 / 出诊场次")
        csv = page.get_by_test_id("export-csv")
        assert "format=csv" in (await csv.get_attribute("href") or "")
