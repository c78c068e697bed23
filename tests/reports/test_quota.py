"""The quota advice over the summary rows and over HTTP: the refresh records each session's
places, release and sell-out; the advice reads the last weeks; accepting writes the pool
ratios through scheduling, audited; bad ratios and roles without the right change nothing.
On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select, update

from tests import factories as f
from tests.conftest import VISIT_DAY, World
from tests.frontdesk.test_pages import staff
from tests.helpers import assert_problem, row_counts, staff_auth
from tests.reports.conftest import Fixture, local
from tests.reports.test_api import make_user
from tests.reports.test_service import rebuild
from yuyue.reports.models import ReportSession
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.models import ClinicSession
from yuyue.staff.enums import Role
from yuyue.staff.models import AuditEntry
from yuyue.web.context import AppContext

TODAY = date(2026, 11, 20)  # NOW on the hospital's clock
ADVISED = {"appointment": 65, "onsite": 25, "reserved": 10}


async def history(
    ctx: AppContext,
    world: World,
    *,
    sessions: int = 8,
    doctor: bool = True,
    sellout_minutes: int | None = 30,
    department_id: uuid.UUID | None = None,
) -> None:
    """`sessions` past sessions of 25 places (15 remote, 10 local), every remote place taken
    and sold out `sellout_minutes` after the release, 6 of the 10 on-site places used: the
    advice is +2 places and 5 points more for booking."""
    async with ctx.db.session_scope() as s:
        for number in range(sessions):
            day = TODAY - timedelta(days=1 + 3 * number)
            released = datetime.combine(day - timedelta(days=7), datetime.min.time(), tzinfo=UTC)
            s.add(
                ReportSession(
                    hospital_id=world.hospital.id,
                    day=day,
                    campus_id=None,
                    department_id=department_id or world.department.id,
                    doctor_id=world.doctor.id if doctor else None,
                    session_id=uuid.uuid4(),
                    level_id=world.free_level.id,
                    capacity=25,
                    remote_capacity=15,
                    remote_used=15,
                    local_used=6,
                    attended=19,
                    no_show=1,
                    waitlist_joined=0,
                    waitlist_accepted=0,
                    released_at=released,
                    sold_out_at=None
                    if sellout_minutes is None
                    else released + timedelta(minutes=sellout_minutes),
                    sellout_minutes=sellout_minutes,
                )
            )


async def ratios(ctx: AppContext, world: World, *, doctor: bool = False) -> dict[str, int]:
    async with ctx.db.read() as s:
        return await scheduling.pool_ratios(
            s,
            hospital_id=world.hospital.id,
            department_id=world.department.id,
            doctor_id=world.doctor.id if doctor else None,
        )


async def audits(ctx: AppContext, action: str) -> list[AuditEntry]:
    async with ctx.db.read() as s:
        return list((await s.scalars(select(AuditEntry).where(AuditEntry.action == action))).all())


class TestSessionRows:
    async def test_refresh_records_each_sessions_places_release_and_sell_out(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        async with ctx.db.session_scope() as s:
            # Created well before the release, so the release is the policy's: 7 days ahead
            # at 08:00, Monday 11-16 08:00.
            await s.execute(update(ClinicSession).values(created_at=local(1, 8)))
        await rebuild(ctx)
        async with ctx.db.read() as s:
            rows = {
                row.session_id: row
                for row in (
                    await s.scalars(select(ReportSession).where(ReportSession.day == VISIT_DAY))
                ).all()
            }
        a, b = rows[books.world.session.id], rows[books.fee_session.id]
        # A: 1, 2, 4, 5 kept from the appointment pool (3 cancelled); 6 expired on-site.
        assert (a.capacity, a.remote_capacity, a.remote_used, a.local_used) == (25, 15, 4, 0)
        assert (a.attended, a.no_show, a.waitlist_joined) == (2, 1, 0)
        assert a.sold_out_at is None and a.sellout_minutes is None
        assert a.released_at == local(16, 8)
        # B: its one remote place went at Wed 20:00, 2 days 12 hours after the release.
        assert (b.capacity, b.remote_capacity, b.remote_used, b.local_used) == (2, 1, 1, 0)
        assert (b.waitlist_joined, b.waitlist_accepted) == (2, 1)
        assert b.sold_out_at == local(18, 20)
        assert b.sellout_minutes == 60 * 60

    async def test_a_session_created_after_the_release_is_released_when_created(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        async with ctx.db.session_scope() as s:
            await s.execute(update(ClinicSession).values(created_at=local(18, 19)))
        await rebuild(ctx)
        async with ctx.db.read() as s:
            b = await s.scalar(
                select(ReportSession).where(ReportSession.session_id == books.fee_session.id)
            )
        assert b is not None and b.released_at == local(18, 19) and b.sellout_minutes == 60


class TestAdvice:
    async def test_department_and_doctor_advice_with_reasons(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.get("/api/v1/reports/quota-advice", headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["date_from"], body["date_to"], body["weeks"]) == (
            "2026-10-23",
            "2026-11-19",
            4,
        )
        department, doctor = body["advice"]
        assert department["doctor_id"] is None and doctor["doctor_id"] == str(world.doctor.id)
        for item in (department, doctor):
            assert item["demand"]["sessions"] == 8 and item["demand"]["sold_out"] == 8
            assert item["demand"]["median_sellout_minutes"] == 30
            assert item["capacity_change"] == 2
            assert item["current"] == {"appointment": 60, "onsite": 30, "reserved": 10}
            assert item["ratios"] == ADVISED
            assert [r["code"] for r in item["reasons"]] == ["sells_out_fast"]
            assert "30" in item["reasons"][0]["text"]

    async def test_only_the_weeks_asked_for_count(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)  # one session every 3 days: 3 in the last week
        auth = await staff_auth(client, ctx, world, Role.FINANCE)
        response = await client.get(
            "/api/v1/reports/quota-advice?weeks=1", headers={**auth, "Accept-Language": "en"}
        )
        assert response.status_code == 200, response.text
        item = response.json()["advice"][0]
        assert item["demand"]["sessions"] == 3
        assert [r["code"] for r in item["reasons"]] == ["too_little_data"]
        assert item["reasons"][0]["text"].startswith("Only 3 sessions")

    async def test_filtered_by_department(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            other = await f.make_department(s, hospital=world.hospital, name="外科")
        await history(ctx, world)
        await history(ctx, world, department_id=other.id, doctor=False)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        everything = await client.get("/api/v1/reports/quota-advice", headers=auth)
        assert len(everything.json()["advice"]) == 3
        one = await client.get(
            f"/api/v1/reports/quota-advice?department_id={other.id}", headers=auth
        )
        assert [item["department_id"] for item in one.json()["advice"]] == [str(other.id)]

    async def test_refused_without_a_reports_role(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.REGISTRAR)
        response = await client.get("/api/v1/reports/quota-advice", headers=auth)
        assert_problem(response, 403, "forbidden")
        response = await client.get("/api/v1/reports/quota-advice", headers=world.auth)
        assert response.status_code in (401, 403)

    async def test_weeks_out_of_range(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.get("/api/v1/reports/quota-advice?weeks=13", headers=auth)
        assert_problem(response, 422, "validation_error")


class TestAccept:
    async def test_accepting_writes_the_department_ratios_and_audits(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        response = await client.post(
            "/api/v1/reports/quota-advice/accept",
            json={"department_id": str(world.department.id), "ratios": ADVISED},
            headers=auth,
        )
        assert response.status_code == 200, response.text
        assert response.json()["written"] == ADVISED and response.json()["edited"] is False
        assert await ratios(ctx, world) == ADVISED
        (entry,) = await audits(ctx, "quota_advice_accepted")
        assert entry.entity_type == "department" and entry.entity_id == world.department.id
        assert entry.before == {"ratios": {"appointment": 60, "onsite": 30, "reserved": 10}}
        assert entry.after is not None
        assert entry.after["written"] == ADVISED and entry.after["edited"] is False
        assert entry.after["advice"]["capacity_change"] == 2
        assert entry.after["advice"]["reasons"][0]["code"] == "sells_out_fast"
        # scheduling's own audit row of the ratios is there too.
        assert len(await audits(ctx, "set_pool_ratios")) == 1

    async def test_an_edited_advice_for_a_doctor(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        edited = {"appointment": 70, "onsite": 20, "reserved": 10}
        response = await client.post(
            "/api/v1/reports/quota-advice/accept",
            json={
                "department_id": str(world.department.id),
                "doctor_id": str(world.doctor.id),
                "ratios": edited,
            },
            headers=auth,
        )
        assert response.status_code == 200, response.text
        assert response.json()["edited"] is True
        assert await ratios(ctx, world, doctor=True) == edited
        assert await ratios(ctx, world) == {"appointment": 60, "onsite": 30, "reserved": 10}
        (entry,) = await audits(ctx, "quota_advice_accepted")
        assert entry.entity_type == "doctor" and entry.entity_id == world.doctor.id
        assert entry.after is not None and entry.after["advice"]["ratios"] == ADVISED

    async def test_bad_ratios_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        for bad, code in (
            ({"appointment": 60, "onsite": 30}, "invalid_schedule"),  # adds up to 90
            ({"appointment": 60, "walk_in": 30, "reserved": 10}, "invalid_schedule"),
            ({"appointment": 160, "onsite": -60}, "validation_error"),
        ):
            response = await client.post(
                "/api/v1/reports/quota-advice/accept",
                json={"department_id": str(world.department.id), "ratios": bad},
                headers=auth,
            )
            assert_problem(response, 422, code)
        assert await row_counts(ctx.db) == before
        assert await ratios(ctx, world) == {"appointment": 60, "onsite": 30, "reserved": 10}

    async def test_only_the_scheduler_accepts(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        auth = await staff_auth(client, ctx, world, Role.FINANCE)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/reports/quota-advice/accept",
            json={"department_id": str(world.department.id), "ratios": ADVISED},
            headers=auth,
        )
        assert_problem(response, 403, "forbidden")
        assert await row_counts(ctx.db) == before

    async def test_a_doctor_of_another_department_is_not_found(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            other = await f.make_department(s, hospital=world.hospital, name="外科")
        auth = await staff_auth(client, ctx, world, Role.SCHEDULER)
        before = await row_counts(ctx.db)
        response = await client.post(
            "/api/v1/reports/quota-advice/accept",
            json={
                "department_id": str(other.id),
                "doctor_id": str(world.doctor.id),
                "ratios": ADVISED,
            },
            headers=auth,
        )
        assert_problem(response, 404, "not_found")
        assert await row_counts(ctx.db) == before


class TestPage:
    async def test_the_page_shows_advice_and_accepts_an_edit(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        browser = await staff(client, await make_user(ctx, world, Role.SCHEDULER))
        page = await browser.page("/reports/quota-advice")
        assert page.status_code == 200, page.text[:500]
        assert page.text.count('data-testid="advice"') == 2
        assert 'data-code="sells_out_fast"' in page.text and "+2 个" in page.text
        assert 'name="pool.appointment"' in page.text and 'value="65"' in page.text
        assert "<script>" not in page.text
        done = await browser.submit(
            "/reports/quota-advice/accept",
            {
                "department_id": str(world.department.id),
                "weeks": "4",
                "pool.appointment": "70",
                "pool.onsite": "20",
                "pool.reserved": "10",
            },
        )
        assert done.status_code == 303, done.text[:500]
        assert await ratios(ctx, world) == {"appointment": 70, "onsite": 20, "reserved": 10}
        shown = await browser.page(done.headers["location"], headers={"Accept-Language": "en"})
        assert "Pool ratios of" in shown.text and "Appointment 70%" in shown.text
        (entry,) = await audits(ctx, "quota_advice_accepted")
        assert entry.after is not None and entry.after["edited"] is True

    async def test_bad_ratios_on_the_page_change_nothing(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        browser = await staff(client, await make_user(ctx, world, Role.SCHEDULER))
        await browser.page("/reports/quota-advice")
        before = await row_counts(ctx.db)
        page = await browser.submit(
            "/reports/quota-advice/accept",
            {
                "department_id": str(world.department.id),
                "pool.appointment": "70",
                "pool.onsite": "30",
                "pool.reserved": "10",
            },
        )
        assert page.status_code == 422 and "未写入" in page.text
        assert await row_counts(ctx.db) == before

    async def test_without_the_csrf_token_nothing_is_written(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        browser = await staff(client, await make_user(ctx, world, Role.SCHEDULER))
        await browser.page("/reports/quota-advice")
        before = await row_counts(ctx.db)
        response = await client.post(
            "/reports/quota-advice/accept",
            data={
                "department_id": str(world.department.id),
                **{f"pool.{k}": str(v) for k, v in ADVISED.items()},
            },
        )
        assert response.status_code in (400, 403)
        assert await row_counts(ctx.db) == before

    async def test_finance_reads_but_cannot_accept(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        await history(ctx, world)
        browser = await staff(client, await make_user(ctx, world, Role.FINANCE))
        page = await browser.page("/reports/quota-advice")
        assert page.status_code == 200 and 'data-testid="advice"' in page.text
        assert 'data-testid="accept-advice"' not in page.text
        before = await row_counts(ctx.db)
        refused = await browser.submit(
            "/reports/quota-advice/accept",
            {
                "department_id": str(world.department.id),
                "pool.appointment": "65",
                "pool.onsite": "25",
                "pool.reserved": "10",
            },
        )
        assert refused.status_code == 403
        assert await row_counts(ctx.db) == before

    async def test_a_registrar_is_refused(
        self, client: httpx.AsyncClient, ctx: AppContext, world: World
    ) -> None:
        browser = await staff(client, await make_user(ctx, world, Role.REGISTRAR))
        page = await browser.page("/reports/quota-advice")
        assert page.status_code == 403 and 'data-testid="advice"' not in page.text
