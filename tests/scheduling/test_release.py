"""The visit day's reserved places go to on-site registration at the policy's time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select, update

from tests import factories as f
from tests.conftest import NOW, VISIT_DAY, World
from yuyue.booking import service as booking_service
from yuyue.jobs import release_reserved_once
from yuyue.kit.clock import FixedClock
from yuyue.scheduling import rules
from yuyue.scheduling.models import BookingPolicy, SlotPool
from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import system_actor
from yuyue.web.context import AppContext

TZ = "Asia/Shanghai"
# 07:00 in Shanghai on the visit day.
RELEASE = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("release_time", "day", "now", "due"),
    [
        (time(7, 0), VISIT_DAY, datetime(2026, 11, 22, 22, 59, tzinfo=UTC), False),
        (time(7, 0), VISIT_DAY, RELEASE, True),
        (time(7, 0), VISIT_DAY, datetime(2026, 11, 23, 4, 0, tzinfo=UTC), True),
        (time(7, 0), date(2026, 11, 24), datetime(2026, 11, 23, 4, 0, tzinfo=UTC), False),
        (time(13, 0), VISIT_DAY, datetime(2026, 11, 23, 4, 59, tzinfo=UTC), False),
        (None, VISIT_DAY, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), False),
    ],
)
def test_release_is_due_from_the_time_on_the_visit_day(
    release_time: time | None, day: date, now: datetime, due: bool
) -> None:
    assert rules.reserved_release_due(release_time, day=day, now=now, tz=TZ) is due


async def pools(ctx: AppContext, session_id) -> dict[str, int]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(SlotPool.pool, func.sum(SlotPool.capacity - SlotPool.taken))
            .where(SlotPool.session_id == session_id)
            .group_by(SlotPool.pool)
        )
        return {pool: int(left) for pool, left in rows}


class TestReleaseReserved:
    async def test_reserved_places_go_on_site_at_seven_and_only_once(
        self, ctx: AppContext, world: World
    ) -> None:
        before = await pools(ctx, world.session.id)
        assert before["reserved"] > 0
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.set(RELEASE.replace(minute=0, hour=22))  # 06:00 on the day
        assert await release_reserved_once(ctx) == []
        assert await pools(ctx, world.session.id) == before

        clock.set(RELEASE)
        assert await release_reserved_once(ctx) == [world.session.id]
        after = await pools(ctx, world.session.id)
        assert "reserved" not in after
        assert after["onsite"] == before["onsite"] + before["reserved"]
        assert await release_reserved_once(ctx) == []  # nothing left to hand over
        async with ctx.db.read() as s:
            audited = await s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "release_reserved")
            )
        assert audited == 1

    async def test_the_window_can_book_the_released_places(
        self, ctx: AppContext, world: World
    ) -> None:
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.set(RELEASE)
        window = system_actor(world.hospital.id)  # the window books on-site places
        on_site = (await pools(ctx, world.session.id))["onsite"]
        reserved = (await pools(ctx, world.session.id))["reserved"]
        async with ctx.db.session_scope() as s:
            patients = [
                await f.make_patient(s, hospital=world.hospital, cipher=ctx.cipher, now=NOW)
                for _ in range(on_site + reserved)
            ]
        booked = 0
        for patient in patients[:on_site]:
            async with ctx.db.session_scope() as s:
                await booking_service.book(
                    s,
                    actor=window,
                    patient_id=patient.id,
                    session_id=world.session.id,
                    slot_id=None,
                    now=RELEASE,
                )
                booked += 1
        await release_reserved_once(ctx)
        for patient in patients[on_site:]:
            async with ctx.db.session_scope() as s:
                await booking_service.book(
                    s,
                    actor=window,
                    patient_id=patient.id,
                    session_id=world.session.id,
                    slot_id=None,
                    now=RELEASE,
                )
                booked += 1
        assert booked == on_site + reserved
        assert (await pools(ctx, world.session.id)).get("onsite") == 0

    async def test_a_department_can_keep_its_reserved_places_all_day(
        self, ctx: AppContext, world: World
    ) -> None:
        async with ctx.db.session_scope() as s:
            await s.execute(
                update(BookingPolicy)
                .where(BookingPolicy.hospital_id == world.hospital.id)
                .values(reserved_release_time=None)
            )
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        clock.set(RELEASE)
        assert await release_reserved_once(ctx) == []
        assert "reserved" in await pools(ctx, world.session.id)
