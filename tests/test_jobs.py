"""The periodic jobs the worker runs: each sweeps every hospital in its own transaction."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.booking.waitlist.support import entries, full_session, join_in_order, new_patients
from tests.conftest import VISIT_DAY, World
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.jobs import close_waitlists_once
from yuyue.kit.clock import FixedClock
from yuyue.web.context import AppContext


class TestCloseWaitlists:
    async def test_lines_close_at_their_closing_time_and_not_before(
        self, ctx: AppContext, world: World
    ) -> None:
        full = await full_session(ctx, world, start=time(13, 30))
        waiting = await join_in_order(ctx, world, full.clinic, await new_patients(ctx, world, 2))
        assert len(waiting) == 2
        clock = ctx.clock
        assert isinstance(clock, FixedClock)
        start = datetime.combine(VISIT_DAY, time(13, 30), tzinfo=ZoneInfo("Asia/Shanghai"))
        clock.set(start - timedelta(minutes=121))  # the default closes 120 minutes before
        assert await close_waitlists_once(ctx) == 0
        assert {e.status for e in await entries(ctx, full.clinic)} == {WaitlistStatus.WAITING}
        clock.set(start - timedelta(minutes=119))
        assert await close_waitlists_once(ctx) == 2
        assert {e.status for e in await entries(ctx, full.clinic)} == {WaitlistStatus.CLOSED}
        assert await close_waitlists_once(ctx) == 0  # idempotent
