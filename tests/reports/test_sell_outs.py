"""The sell-out report: how many sessions sold every remote place and how long after the
release, per department, against hand-counted rows on SQLite and PostgreSQL; its filters;
JSON, CSV and XLSX; refused to roles without reports."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import update

from tests import factories as f
from tests.conftest import World
from tests.frontdesk.test_pages import staff
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.reports.conftest import WEEK, Fixture, local
from tests.reports.test_api import make_user
from tests.reports.test_service import reader, rebuild, run
from yuyue.reports import service
from yuyue.reports.models import ReportSession
from yuyue.reports.rules import ReportFilters, ReportName, ReportTable
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext

QUERY = f"date_from={WEEK[0].isoformat()}&date_to={WEEK[1].isoformat()}"


async def released_on_monday(ctx: AppContext) -> None:
    """The fixture's sessions created long before, so their release is the policy's:
    7 days ahead at 08:00, Monday 11-16 08:00; session B sold out Wed 11-18 20:00."""
    async with ctx.db.session_scope() as s:
        await s.execute(update(ClinicSession).values(created_at=local(1, 8)))


class TestFromTheRefresh:
    async def test_the_fixture_sells_out_one_of_two_sessions_after_sixty_hours(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        await released_on_monday(ctx)
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.SELL_OUTS)
        # A (15 remote places, 4 kept) never sold out; B's one remote place went 2 days
        # 12 hours after the release: 3600 minutes.
        assert table.rows == [
            {
                "department": books.world.department.name_en or books.world.department.name,
                "sessions": 2,
                "sold_out": 1,
                "sold_out_rate": 0.5,
                "fastest_minutes": 3600,
                "median_minutes": 3600,
                "p90_minutes": 3600,
            }
        ]
        assert table.totals["sessions"] == 2 and table.totals["median_minutes"] == 3600


async def session_rows(ctx: AppContext, world: World) -> dict[str, uuid.UUID]:
    """Hand-made report_session rows (minutes from release to sell-out; None: not sold out):
    内科 with the doctor:    10, 30, 30, 45, 200, 600, 1000, 5000, None   (9 sessions)
    内科 without a doctor:   9000, 20000, None                           (3)
    外科:                    5, 15, None, and 1 on the day before the range (out)
    眼科:                    None, None                                  (2)
    """
    async with ctx.db.session_scope() as s:
        surgery = await f.make_department(s, hospital=world.hospital, name="外科")
        eyes = await f.make_department(s, hospital=world.hospital, name="眼科")

        def row(
            department: uuid.UUID, minutes: int | None, *, doctor: bool = False, day: date = WEEK[0]
        ) -> ReportSession:
            released = datetime.combine(day - timedelta(days=7), datetime.min.time(), tzinfo=UTC)
            return ReportSession(
                hospital_id=world.hospital.id,
                day=day,
                campus_id=None,
                department_id=department,
                doctor_id=world.doctor.id if doctor else None,
                session_id=uuid.uuid4(),
                level_id=world.free_level.id,
                capacity=20,
                remote_capacity=12,
                remote_used=12 if minutes is not None else 5,
                local_used=3,
                released_at=released,
                sold_out_at=None if minutes is None else released + timedelta(minutes=minutes),
                sellout_minutes=minutes,
            )

        medicine = world.department.id
        for minutes in (10, 30, 30, 45, 200, 600, 1000, 5000, None):
            s.add(row(medicine, minutes, doctor=True, day=WEEK[1]))
        for minutes in (9000, 20000, None):
            s.add(row(medicine, minutes))
        for minutes in (5, 15, None):
            s.add(row(surgery.id, minutes))
        s.add(row(surgery.id, 1, day=WEEK[0] - timedelta(days=1)))
        s.add(row(eyes.id, None))
        s.add(row(eyes.id, None))
    return {"内科": medicine, "外科": surgery.id, "眼科": eyes.id}


async def sell_outs(ctx: AppContext, world: World, **narrow: object) -> ReportTable:
    filters = ReportFilters(date_from=WEEK[0], date_to=WEEK[1], **narrow)  # type: ignore[arg-type]
    actor = reader(Fixture(world, world.session, {}))
    async with ctx.db.read() as session:
        return await service.report(
            session, actor=actor, name=ReportName.SELL_OUTS, filters=filters, locale="zh-CN"
        )


class TestPercentiles:
    async def test_median_and_p90_per_department_and_over_all(
        self, ctx: AppContext, world: World
    ) -> None:
        await session_rows(ctx, world)
        table = await sell_outs(ctx, world)
        got = {
            row["department"]: (
                row["sessions"],
                row["sold_out"],
                row["sold_out_rate"],
                row["fastest_minutes"],
                row["median_minutes"],
                row["p90_minutes"],
            )
            for row in table.rows
        }
        # 内科 sold out 10 of 12: sorted 10 30 30 45 200 600 1000 5000 9000 20000; the lower
        # median is the 5th (200), the 90th percentile the 9th (9000).
        # 外科 2 of 3: 5 15 → median 5, p90 the 2nd (15); its session before the range is out.
        assert got == {
            "内科": (12, 10, 0.8333, 10, 200, 9000),
            "外科": (3, 2, 0.6667, 5, 5, 15),
            "眼科": (2, 0, 0.0, None, None, None),
        }
        # Fastest median first; a department that never sold out last.
        assert [row["department"] for row in table.rows] == ["外科", "内科", "眼科"]
        # Over all 17 sessions, 12 sold out: 5 10 15 30 30 45 200 600 1000 5000 9000 20000;
        # median the 6th (45), p90 the 11th (9000).
        assert table.totals == {
            "sessions": 17,
            "sold_out": 12,
            "sold_out_rate": 0.7059,
            "fastest_minutes": 5,
            "median_minutes": 45,
            "p90_minutes": 9000,
        }

    async def test_department_doctor_and_date_filters(self, ctx: AppContext, world: World) -> None:
        ids = await session_rows(ctx, world)
        surgery = await sell_outs(ctx, world, department_id=ids["外科"])
        assert [row["department"] for row in surgery.rows] == ["外科"]
        # The doctor's 9 sessions: 8 sold out, 10 30 30 45 200 600 1000 5000 → median the
        # 4th (45), p90 the 8th (5000).
        doctor = await sell_outs(ctx, world, doctor_id=world.doctor.id)
        [row] = doctor.rows
        assert (row["sessions"], row["sold_out"], row["median_minutes"], row["p90_minutes"]) == (
            9,
            8,
            45,
            5000,
        )
        # The day before the range: only 外科's one session, sold out a minute after release.
        filters = ReportFilters(date_from=WEEK[0] - timedelta(days=1), date_to=WEEK[0])
        earlier = await sell_outs(ctx, world)
        async with ctx.db.read() as session:
            wider = await service.report(
                session,
                actor=reader(Fixture(world, world.session, {})),
                name=ReportName.SELL_OUTS,
                filters=filters,
                locale="zh-CN",
            )
        assert wider.totals["sessions"] == earlier.totals["sessions"] - 9 + 1
        assert wider.totals["fastest_minutes"] == 1

    async def test_a_sell_out_is_the_sessions_whatever_the_channel(
        self, ctx: AppContext, world: World
    ) -> None:
        await session_rows(ctx, world)
        assert (await sell_outs(ctx, world, channel=Channel.WECHAT)).rows == (
            await sell_outs(ctx, world)
        ).rows


class TestHttp:
    async def test_json_csv_and_xlsx(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await session_rows(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.get(f"/api/v1/reports/sell-outs?{QUERY}", headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["report"] == "sell-outs"
        assert [c["key"] for c in body["columns"]] == [
            "department",
            "sessions",
            "sold_out",
            "sold_out_rate",
            "fastest_minutes",
            "median_minutes",
            "p90_minutes",
        ]
        assert body["rows"][0]["department"] == "外科"
        assert (body["totals"]["median_minutes"], body["totals"]["p90_minutes"]) == (45, 9000)

        sheet = await client.get(f"/api/v1/reports/sell-outs?{QUERY}&format=csv", headers=auth)
        rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
        assert rows[0][:4] == ["科室", "出诊场次", "约满场次", "约满比例"]
        assert rows[1] == ["外科", "3", "2", "66.7%", "5.0", "5.0", "15.0"]
        assert rows[3][0] == "眼科" and rows[3][4:] == ["", "", ""]

        book = await client.get(
            f"/api/v1/reports/sell-outs?{QUERY}&format=xlsx",
            headers={**auth, "Accept-Language": "en"},
        )
        found = list(load_workbook(io.BytesIO(book.content)).active.iter_rows(values_only=True))
        assert found[0][:3] == ("Department", "Sessions", "Sold out")
        assert found[2][0] == "内科" and found[2][5:] == (200, 9000)

    @pytest.mark.parametrize("role", [Role.REGISTRAR, Role.NURSE, Role.DOCTOR])
    async def test_other_roles_are_refused_and_nothing_changes(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World, role: Role
    ) -> None:
        await session_rows(ctx, world)
        auth = await staff_auth(client, ctx, world, role)
        before = await row_counts(ctx.db)
        for fmt in ("json", "csv", "xlsx"):
            response = await client.get(
                f"/api/v1/reports/sell-outs?{QUERY}&format={fmt}", headers=auth
            )
            assert_problem(response, 403, "forbidden")
        assert_problem(
            await client.get("/api/v1/reports/sell-outs", headers=world.auth), 403, "forbidden"
        )
        assert await row_counts(ctx.db) == before

    async def test_the_page_draws_medians_and_shares_and_has_no_channel_menu(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await session_rows(ctx, world)
        browser = await staff(client, await make_user(ctx, world, Role.FINANCE))
        page = await browser.page(f"/reports/sell-outs?{QUERY}")
        assert page.status_code == 200, page.text[:500]
        assert 'data-testid="chart"' in page.text
        # 内科: median 200 minutes (3.3 hours), 90 % within 9000 (6.2 days); 10 of 12.
        assert "3.3 小时 · 6.2 天" in page.text and "10/12" in page.text
        assert "未约满" in page.text  # 眼科
        assert 'name="channel"' not in page.text

    async def test_the_page_is_refused_to_a_registrar(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await session_rows(ctx, world)
        refused = await staff(client, await make_user(ctx, world, Role.REGISTRAR))
        denied = await refused.page(f"/reports/sell-outs?{QUERY}")
        assert denied.status_code == 403 and 'data-testid="chart"' not in denied.text
