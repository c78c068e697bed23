"""Every report's figures against the hand-counted fixture (tests/reports/conftest.py), on
SQLite and PostgreSQL; the refresh is idempotent and follows changes; filters narrow."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select, update

from tests.conftest import NOW, VISIT_DAY
from tests.reports.conftest import WEEK, Fixture
from yuyue.booking.models import Appointment
from yuyue.reports import refresh, service
from yuyue.reports.models import ReportDay, ReportDemand, ReportMoney, ReportPlaces, ReportWaits
from yuyue.reports.rules import ReportFilters, ReportName, ReportTable
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind
from yuyue.web.context import AppContext


def reader(books: Fixture, *roles: Role) -> Actor:
    return Actor(
        hospital_id=books.world.hospital.id,
        kind=ActorKind.STAFF,
        id=str(uuid.uuid4()),
        channel=Channel.WINDOW,
        roles=frozenset(roles or (Role.SCHEDULER,)),
    )


async def rebuild(ctx: AppContext, day: date = VISIT_DAY) -> int:
    done = await refresh.refresh(ctx.db, now=NOW, days=lambda today: [day])
    return sum(item.rows for item in done)


async def run(ctx: AppContext, books: Fixture, name: ReportName, **narrow: object) -> ReportTable:
    filters = ReportFilters(date_from=WEEK[0], date_to=WEEK[1], **narrow)  # type: ignore[arg-type]
    async with ctx.db.read() as session:
        return await service.report(
            session, actor=reader(books), name=name, filters=filters, locale="en"
        )


async def counts(ctx: AppContext) -> dict[str, int]:
    out = {}
    async with ctx.db.read() as session:
        for table in (ReportDay, ReportPlaces, ReportDemand, ReportWaits, ReportMoney):
            out[table.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(table)) or 0
            )
    return out


class TestFigures:
    async def test_bookings_by_channel_and_level(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.BOOKINGS_BY_CHANNEL)
        got = {(r["channel"], r["level"]): r for r in table.rows}
        free, fee = books.world.free_level.name, books.world.fee_level.name
        assert set(got) == {
            ("app", free),
            ("wechat", free),
            ("window", free),
            ("app", fee),
            ("wechat", fee),
        }
        assert got[("app", free)] | {} == {
            "channel": "app",
            "level": free,
            "made": 3,
            "kept": 3,
            "cancelled": 0,
            "expired": 0,
            "attended": 1,
            "no_show": 1,
        }
        assert (got[("wechat", free)]["made"], got[("wechat", free)]["kept"]) == (2, 1)
        assert (got[("wechat", free)]["cancelled"], got[("wechat", free)]["attended"]) == (1, 1)
        assert (got[("window", free)]["made"], got[("window", free)]["expired"]) == (1, 1)
        assert (got[("app", fee)]["made"], got[("app", fee)]["kept"]) == (1, 1)
        assert (got[("wechat", fee)]["made"], got[("wechat", fee)]["cancelled"]) == (1, 1)
        assert table.totals == {
            "made": 8,
            "kept": 5,
            "cancelled": 2,
            "expired": 1,
            "attended": 2,
            "no_show": 1,
        }

    async def test_demand_heatmap_counts_requests_waitlist_and_sellouts(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.DEMAND_HEATMAP)
        cells = {
            (r["weekday"], r["hour"]): (r["requests"], r["waitlist_joins"], r["sellouts"])
            for r in table.rows
        }
        # Monday 0 … Sunday 6; the hour of the request on the hospital's clock.
        assert cells == {
            (0, 8): (2, 0, 0),
            (1, 9): (2, 0, 0),
            (2, 10): (1, 0, 0),
            (2, 20): (1, 0, 1),  # session B's one remote place taken: sold out
            (3, 8): (1, 0, 0),
            (3, 9): (0, 1, 0),
            (3, 10): (0, 1, 0),
            (4, 10): (1, 0, 0),
            (6, 10): (0, 0, 0),  # only a refused attempt
        }
        assert table.totals == {
            "attempts": 10,
            "booked_attempts": 4,
            "sold_out_refusals": 4,
            "other_refusals": 2,
            "sold_out_share": 0.4,
            "requests": 8,
            "waitlist_joins": 2,
            "sellouts": 1,
        }

    async def test_demand_heatmap_counts_attempts_booked_and_refused(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.DEMAND_HEATMAP)
        attempts = {
            (r["weekday"], r["hour"]): (
                r["attempts"],
                r["booked_attempts"],
                r["sold_out_refusals"],
                r["other_refusals"],
                r["sold_out_share"],
            )
            for r in table.rows
            if r["attempts"]
        }
        # The conftest's attempts, counted by hand: the four quarter-hours after B sold out
        # at Wed 20:00 land in one local hour.
        assert attempts == {
            (0, 8): (2, 2, 0, 0, 0.0),
            (2, 20): (5, 1, 4, 0, 0.8),
            (3, 8): (2, 1, 0, 1, 0.0),
            (6, 10): (1, 0, 0, 1, 0.0),
        }

    async def test_demand_filters_on_the_request_day(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        filters = ReportFilters(date_from=date(2026, 11, 19), date_to=date(2026, 11, 19))
        async with ctx.db.read() as session:
            table = await service.report(
                session,
                actor=reader(books),
                name=ReportName.DEMAND_HEATMAP,
                filters=filters,
                locale="en",
            )
        assert (table.totals["requests"], table.totals["waitlist_joins"]) == (1, 2)
        assert (table.totals["sellouts"], table.totals["attempts"]) == (0, 2)
        assert table.totals["other_refusals"] == 1

    async def test_utilisation(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.UTILISATION)
        [row] = table.rows
        assert row == {
            "department": books.world.department.name_en or books.world.department.name,
            "places": 27,
            "used": 5,
            "held": 0,
            "unused": 22,
            "returned": 3,
            "utilisation": round(5 / 27, 4),
        }

    async def test_no_shows_cancellations_and_waitlist(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.NO_SHOWS)
        [row] = table.rows
        assert (row["made"], row["cancelled"], row["cancellation_rate"]) == (8, 2, 0.25)
        assert (row["attended"], row["no_show"], row["no_show_rate"]) == (2, 1, 0.3333)
        assert (row["waitlist_joined"], row["waitlist_accepted"]) == (2, 1)
        assert row["waitlist_success_rate"] == 0.5

    async def test_waits_by_hour_of_check_in(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.WAITS)
        by_hour = {r["hour"]: r for r in table.rows}
        assert set(by_hour) == {8, 9}
        assert (by_hour[8]["visits"], by_hour[8]["wait_minutes"]) == (1, 20.0)
        assert (by_hour[8]["finished"], by_hour[8]["consult_minutes"]) == (1, 15.0)
        assert (by_hour[9]["called"], by_hour[9]["wait_minutes"]) == (1, 10.0)
        assert (by_hour[9]["finished"], by_hour[9]["consult_minutes"]) == (0, None)
        assert table.totals == {
            "visits": 2,
            "called": 2,
            "wait_minutes": 15.0,
            "finished": 1,
            "consult_minutes": 15.0,
        }

    async def test_revenue_by_the_day_money_moved(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.REVENUE)
        got = {(r["period"], r["provider"]): r for r in table.rows}
        assert set(got) == {
            (date(2026, 11, 18), "alipay"),
            (date(2026, 11, 19), "alipay"),
            (date(2026, 11, 19), "wechatpay"),
        }
        assert got[(date(2026, 11, 18), "alipay")]["paid_fen"] == 8000
        assert got[(date(2026, 11, 19), "alipay")]["refund_fen"] == 8000
        assert got[(date(2026, 11, 19), "wechatpay")]["payments"] == 1
        assert table.totals == {
            "payments": 2,
            "paid_fen": 16000,
            "refunds": 1,
            "refund_fen": 8000,
            "net_fen": 8000,
        }


class TestRefresh:
    async def test_refresh_twice_writes_the_same_rows(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        first = await rebuild(ctx)
        before = await counts(ctx)
        report = await run(ctx, books, ReportName.BOOKINGS_BY_CHANNEL)
        second = await rebuild(ctx)
        assert first == second > 0
        assert await counts(ctx) == before
        again = await run(ctx, books, ReportName.BOOKINGS_BY_CHANNEL)
        assert again.rows == report.rows

    async def test_refresh_follows_a_change(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        async with ctx.db.session_scope() as session:
            await session.execute(
                update(Appointment)
                .where(Appointment.id == books.appointments[5])
                .values(status="no_show")
            )
        stale = await run(ctx, books, ReportName.NO_SHOWS)
        assert stale.totals["no_show"] == 1  # the summary is as of the last refresh
        await rebuild(ctx)
        fresh = await run(ctx, books, ReportName.NO_SHOWS)
        assert fresh.totals["no_show"] == 2

    async def test_other_days_are_left_alone(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        before = await counts(ctx)
        assert await rebuild(ctx, date(2026, 11, 24)) == 0
        assert await counts(ctx) == before


class TestFilters:
    async def test_channel_filter(self, ctx: AppContext, books: Fixture) -> None:
        await rebuild(ctx)
        table = await run(ctx, books, ReportName.BOOKINGS_BY_CHANNEL, channel=Channel.WECHAT)
        assert {r["channel"] for r in table.rows} == {"wechat"}
        assert table.totals["made"] == 3
        heat = await run(ctx, books, ReportName.DEMAND_HEATMAP, channel=Channel.WECHAT)
        # A sell-out is the session's, whatever the channel: kept under a channel filter.
        # WeChat's attempts: one booked and one refused as sold out, both Wed 20:00.
        assert heat.totals == {
            "attempts": 2,
            "booked_attempts": 1,
            "sold_out_refusals": 1,
            "other_refusals": 0,
            "sold_out_share": 0.5,
            "requests": 3,
            "waitlist_joins": 1,
            "sellouts": 1,
        }
        places = await run(ctx, books, ReportName.UTILISATION, channel=Channel.WECHAT)
        assert places.rows[0]["places"] is None and places.rows[0]["used"] == 1

    async def test_department_doctor_and_date_filters(
        self, ctx: AppContext, books: Fixture
    ) -> None:
        await rebuild(ctx)
        other = uuid.uuid4()
        assert (await run(ctx, books, ReportName.NO_SHOWS, department_id=other)).rows == []
        mine = await run(ctx, books, ReportName.NO_SHOWS, doctor_id=books.world.doctor.id)
        assert mine.totals["made"] == 8
        # The heat map narrows to a doctor too (its rows carry the session's doctor).
        heat = await run(ctx, books, ReportName.DEMAND_HEATMAP, doctor_id=books.world.doctor.id)
        assert (heat.totals["requests"], heat.totals["attempts"]) == (8, 10)
        nobody = await run(ctx, books, ReportName.DEMAND_HEATMAP, doctor_id=other)
        assert nobody.rows == []
        filters = ReportFilters(date_from=date(2026, 11, 24), date_to=date(2026, 11, 30))
        async with ctx.db.read() as session:
            later = await service.report(
                session,
                actor=reader(books),
                name=ReportName.UTILISATION,
                filters=filters,
                locale="en",
            )
        assert later.rows == []

    async def test_a_backwards_range_is_refused(self, ctx: AppContext, books: Fixture) -> None:
        from yuyue.kit.errors import ValidationFailed

        filters = ReportFilters(date_from=date(2026, 11, 24), date_to=date(2026, 11, 1))
        async with ctx.db.read() as session:
            with pytest.raises(ValidationFailed):
                await service.report(
                    session,
                    actor=reader(books),
                    name=ReportName.WAITS,
                    filters=filters,
                    locale="en",
                )

    async def test_roles_without_reports_are_refused(self, ctx: AppContext, books: Fixture) -> None:
        from yuyue.kit.errors import Forbidden

        await rebuild(ctx)
        for role in (Role.REGISTRAR, Role.NURSE, Role.DOCTOR):
            async with ctx.db.read() as session:
                with pytest.raises(Forbidden):
                    await service.report(
                        session,
                        actor=reader(books, role),
                        name=ReportName.REVENUE,
                        filters=ReportFilters(date_from=WEEK[0], date_to=WEEK[1]),
                        locale="en",
                    )
