"""The report routes over HTTP: JSON, CSV (UTF-8 with BOM, parses) and XLSX (opens, holds
the rows); refused to roles without reports and to channel keys (problem+json), and a
refusal reads and changes nothing; the staff pages draw the chart and link the files."""

from __future__ import annotations

import csv
import io
from datetime import date

import httpx
import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]

from tests import factories as f
from tests.conftest import NOW, World
from tests.frontdesk.test_pages import staff
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.reports.conftest import Fixture
from tests.reports.test_service import rebuild
from yuyue.reports import rules
from yuyue.reports.models import ReportDemand
from yuyue.reports.rules import ReportName
from yuyue.staff.enums import Role
from yuyue.web.context import AppContext

WEEK = "date_from=2026-11-16&date_to=2026-11-23"


class TestApi:
    async def test_json_report(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        auth = await staff_auth(client, ctx, books.world, Role.SCHEDULER)
        response = await client.get(f"/api/v1/reports/no-shows?{WEEK}", headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["report"] == "no-shows"
        assert body["filters"]["date_from"] == "2026-11-16"
        assert body["refreshed_at"] is not None
        assert body["totals"]["made"] == 8 and body["totals"]["no_show"] == 1
        assert [c["key"] for c in body["columns"]][:3] == ["department", "made", "cancelled"]

    async def test_every_report_answers(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        auth = await staff_auth(client, ctx, books.world, Role.FINANCE)
        for name in ReportName:
            response = await client.get(f"/api/v1/reports/{name.value}?{WEEK}", headers=auth)
            assert response.status_code == 200, (name, response.text)
            assert response.json()["rows"], name

    async def test_csv_has_a_bom_and_parses(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        auth = await staff_auth(client, ctx, books.world, Role.FINANCE)
        response = await client.get(
            f"/api/v1/reports/bookings-by-channel?{WEEK}&format=csv", headers=auth
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0][:3] == ["渠道", "号别", "预约数"]
        assert len(rows) == 1 + 5
        assert sum(int(row[2]) for row in rows[1:]) == 8
        assert "微信" in {row[0] for row in rows[1:]}

    async def test_xlsx_opens_and_holds_the_rows(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        auth = await staff_auth(client, ctx, books.world, Role.FINANCE)
        response = await client.get(
            f"/api/v1/reports/revenue?{WEEK}&format=xlsx",
            headers={**auth, "Accept-Language": "en"},
        )
        assert response.status_code == 200
        sheet = load_workbook(io.BytesIO(response.content)).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:4] == ("Date", "Provider", "Payments", "Taken (yuan)")
        assert len(rows) == 1 + 3
        assert sum(float(row[3]) for row in rows[1:]) == 160.0

    async def test_unknown_report_and_bad_filters(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        auth = await staff_auth(client, ctx, books.world, Role.ADMIN)
        assert_problem(
            await client.get("/api/v1/reports/everything", headers=auth), 404, "not_found"
        )
        for query in (
            "date_from=2026-11-24&date_to=2026-11-01",
            "date_from=2025-01-01&date_to=2026-11-01",
            "date_from=yesterday",
            "channel=pigeon",
            "format=pdf",
        ):
            response = await client.get(f"/api/v1/reports/waits?{query}", headers=auth)
            assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize("role", [Role.REGISTRAR, Role.NURSE, Role.DOCTOR])
    async def test_other_roles_are_refused_and_nothing_changes(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture, role: Role
    ) -> None:
        await rebuild(ctx)
        auth = await staff_auth(client, ctx, books.world, role)
        before = await row_counts(ctx.db)
        for fmt in ("json", "csv", "xlsx"):
            response = await client.get(f"/api/v1/reports/revenue?format={fmt}", headers=auth)
            assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before

    async def test_a_channel_key_is_refused(
        self, client: httpx.AsyncClient, books: Fixture
    ) -> None:
        response = await client.get("/api/v1/reports/revenue", headers=books.world.auth)
        assert_problem(response, 403, "forbidden")
        assert_problem(await client.get("/api/v1/reports/revenue"), 401, "unauthorized")


async def make_user(ctx: AppContext, world: World, *roles: Role) -> str:
    # The floor pages serve the hospital the settings name.
    ctx.settings.hospital_code = world.hospital.code
    async with ctx.db.session_scope() as s:
        return await f.make_staff(s, hospital=world.hospital, roles=list(roles), now=NOW)


class TestPages:
    async def test_each_report_page_draws_its_chart(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        browser = await staff(client, await make_user(ctx, books.world, Role.SCHEDULER))
        for name in ReportName:
            page = await browser.page(f"/reports/{name.value}?{WEEK}")
            assert page.status_code == 200, (name, page.text[:500])
            assert 'data-testid="chart"' in page.text and "<svg" in page.text
            assert 'data-testid="report-row"' in page.text
            assert f"/reports/{name.value}?" in page.text and "format=xlsx" in page.text
            assert "<script>" not in page.text

    async def test_the_heat_map_lists_only_its_busiest_cells(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        # 30 cells of one department, cell i with i requests (and 3 sell-outs on the 2nd).
        async with ctx.db.session_scope() as s:
            for number in range(1, 31):
                weekday, hour = divmod(number, 24)
                s.add(
                    ReportDemand(
                        hospital_id=world.hospital.id,
                        day=date(2026, 11, 23),
                        request_day=date(2026, 11, 16 + weekday),
                        weekday=weekday,
                        hour=hour,
                        campus_id=None,
                        department_id=world.department.id,
                        doctor_id=None,
                        channel="app",
                        requests=number,
                        waitlist_joins=0,
                        sellouts=3 if number == 2 else 0,
                    )
                )
        browser = await staff(client, await make_user(ctx, world, Role.SCHEDULER))
        page = await browser.page(f"/reports/demand-heatmap?{WEEK}")
        assert page.status_code == 200
        assert page.text.count('data-testid="report-row"') == rules.HEAT_TABLE_ROWS
        assert 'data-testid="heat-note"' in page.text and "共 30 个" in page.text
        first = page.text.index('data-testid="report-row"')
        assert "<td>30</td>" in page.text[first : first + 300]
        # The chart still shows every cell, the sell-outs' ring with its count.
        assert 'data-sellouts="3"' in page.text
        # The totals are of every cell, and the file holds them all.
        assert "<strong>465</strong>" in page.text
        download = await browser.page(f"/reports/demand-heatmap?{WEEK}&format=csv")
        assert len(download.content.decode("utf-8-sig").strip().splitlines()) == 1 + 30

    async def test_english_page_and_csv_download(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        browser = await staff(client, await make_user(ctx, books.world, Role.FINANCE))
        page = await browser.page(f"/reports/waits?{WEEK}", headers={"Accept-Language": "en"})
        assert "Average wait (min)" in page.text and "20.0" in page.text
        download = await browser.page(f"/reports/waits?{WEEK}&format=csv")
        assert download.content.startswith(b"\xef\xbb\xbf")

    async def test_a_bad_filter_is_a_sentence(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        browser = await staff(client, await make_user(ctx, books.world, Role.ADMIN))
        page = await browser.page("/reports/utilisation?date_from=2026-11-24&date_to=2026-11-01")
        assert page.status_code == 422
        assert "筛选条件无效" in page.text

    async def test_a_registrar_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        browser = await staff(client, await make_user(ctx, books.world, Role.REGISTRAR))
        before = await row_counts(ctx.db)
        page = await browser.page(f"/reports/revenue?{WEEK}")
        assert page.status_code == 403
        assert 'data-testid="chart"' not in page.text
        download = await browser.page(f"/reports/revenue?{WEEK}&format=csv")
        assert download.status_code == 403 and not download.content.startswith(b"\xef\xbb\xbf")
        assert await row_counts(ctx.db) == before

    async def test_signed_out_goes_to_sign_in(
        self, client: httpx.AsyncClient, ctx: AppContext, books: Fixture
    ) -> None:
        ctx.settings.hospital_code = books.world.hospital.code
        page = await client.get("/reports/revenue")
        assert page.status_code in (302, 303)
        assert "/staff/signin" in page.headers["location"]
