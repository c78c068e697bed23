"""The demo's past weeks: written once (a second run changes nothing), in the states a past
day leaves, consistent with the places they take, never on the demo's own patients, and
enough for the reports and the quota advice. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.conftest import NOW
from tests.helpers import row_counts
from yuyue.booking import demand
from yuyue.booking.models import Appointment
from yuyue.demo.history import HISTORY_WEEKS, HistorySummary, seed_history
from yuyue.demo.seed import DemoSummary, seed_demo
from yuyue.kit.localtime import local_today
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.web.context import AppContext

TODAY = local_today(NOW, "Asia/Shanghai")


async def seed(ctx: AppContext) -> tuple[DemoSummary, HistorySummary]:
    async with ctx.db.session_scope() as s:
        demo = await seed_demo(s, cipher=ctx.cipher, now=NOW, today=TODAY)
        history = await seed_history(
            s, hospital_id=demo.hospital_id, cipher=ctx.cipher, today=TODAY, now=NOW
        )
    return demo, history


async def test_history_is_written_once_and_is_consistent(ctx: AppContext) -> None:
    demo, history = await seed(ctx)
    assert history.sessions > 500 and history.appointments > 10_000
    loaded = await row_counts(ctx.db)
    _, again = await seed(ctx)
    assert again.sessions == 0
    assert await row_counts(ctx.db) == loaded

    first = TODAY - timedelta(days=7 * HISTORY_WEEKS)
    async with ctx.db.read() as s:
        states = dict(
            (
                await s.execute(
                    select(Appointment.status, func.count())
                    .where(Appointment.visit_date < TODAY)
                    .group_by(Appointment.status)
                )
            ).all()
        )
        # A past day leaves no held or booked appointment behind.
        assert set(states) == {"completed", "no_show", "cancelled", "expired"}
        # Every place counted as taken is a kept appointment of that pool.
        kept = dict(
            (
                await s.execute(
                    select(Appointment.pool_id, func.count())
                    .where(
                        Appointment.visit_date < TODAY,
                        Appointment.status.in_(("completed", "no_show")),
                    )
                    .group_by(Appointment.pool_id)
                )
            ).all()
        )
        taken = dict(
            (
                await s.execute(
                    select(SlotPool.id, SlotPool.taken)
                    .join(ClinicSession, ClinicSession.id == SlotPool.session_id)
                    .where(ClinicSession.date < TODAY, SlotPool.taken > 0)
                )
            ).all()
        )
        assert kept == taken
        days = await s.scalar(
            select(func.count(func.distinct(ClinicSession.date))).where(
                ClinicSession.date >= first, ClinicSession.date < TODAY
            )
        )
        assert days == 7 * HISTORY_WEEKS
        mine = await s.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(Appointment.patient_id.in_(list(demo.patients.values())))
        )
        assert mine == 0


async def test_history_has_refused_attempts_after_the_morning_sell_outs(ctx: AppContext) -> None:
    """The heat map's attempts: every remote booking was a booked attempt, and sessions that
    sold out kept refusing, mostly in the hour after the 08:00 release; written once."""
    demo, _ = await seed(ctx)
    async with ctx.db.read() as s:
        session_ids = list(
            (
                await s.scalars(
                    select(ClinicSession.id).where(
                        ClinicSession.hospital_id == demo.hospital_id, ClinicSession.date < TODAY
                    )
                )
            ).all()
        )
        attempts = await demand.session_attempts(
            s, hospital_id=demo.hospital_id, session_ids=session_ids
        )
        remote_booked = await s.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(
                Appointment.visit_date < TODAY,
                Appointment.channel.not_in(("window", "kiosk")),
                Appointment.created_by == "demo-history",
            )
        )
    by_outcome: dict[str, int] = {}
    sold_out_by_hour: dict[int, int] = {}
    for row in attempts:
        by_outcome[row.outcome] = by_outcome.get(row.outcome, 0) + row.attempts
        if row.outcome == demand.SOLD_OUT:
            sold_out_by_hour[row.hour] = sold_out_by_hour.get(row.hour, 0) + row.attempts
    assert {"booked", "sold_out", "outside_release_window", "limit_exceeded"} <= set(by_outcome)
    # Booked attempts: the remote bookings the POST made (waitlist offers taken are not).
    assert 0 < remote_booked - by_outcome["booked"] < remote_booked * 0.05
    assert by_outcome["sold_out"] > by_outcome["booked"] * 0.1
    busiest = max(sold_out_by_hour, key=lambda hour: sold_out_by_hour[hour])
    assert busiest == 8
    # A second run writes no attempts again.
    await seed(ctx)
    async with ctx.db.read() as s:
        again = await demand.session_attempts(
            s, hospital_id=demo.hospital_id, session_ids=session_ids
        )
    assert sum(r.attempts for r in again) == sum(r.attempts for r in attempts)
