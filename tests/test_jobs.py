"""The periodic jobs the worker runs: each sweeps every hospital in its own transaction."""

from __future__ import annotations

import asyncio
import logging
import time as time_module
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.booking.waitlist.support import entries, full_session, join_in_order, new_patients
from tests.conftest import VISIT_DAY, World
from tests.redis_support import closed_port_url
from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.config import Settings
from yuyue.jobs import Jobs, close_waitlists_once, worker_context
from yuyue.kit.clock import FixedClock
from yuyue.kit.crypto import generate_master_secret
from yuyue.kit.signals import PlaceChange, PlacesChanged
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


class TestDoorbellWithoutJobStorage:
    def test_a_missing_redis_is_logged_once_however_many_bookings_ring(
        self, tmp_path, caplog
    ) -> None:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
            secret_key=generate_master_secret(),
            redis_url=closed_port_url(),
        )
        jobs = Jobs(settings)
        jobs.start_doorbell()
        try:
            with caplog.at_level(logging.WARNING, logger="yuyue.jobs"):
                for _ in range(4):
                    jobs.request_delivery()
                    time_module.sleep(0.7)  # each ring is tried: the bell wakes every 0.5 s
        finally:
            jobs.close()
        failures = [r for r in caplog.records if "could not queue" in r.getMessage()]
        assert len(failures) == 1


class TestHostedWorker:
    async def test_places_a_job_returns_reach_the_serving_loops_caches(self, tmp_path) -> None:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", secret_key=generate_master_secret()
        )
        base = AppContext.build(settings)
        heard: list[PlacesChanged] = []
        base.places.subscribe(heard.append)
        hospital, session = uuid.uuid4(), uuid.uuid4()
        host = asyncio.get_running_loop()

        def job() -> None:
            worker = worker_context(settings, base=base, host=host)
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(worker.places_returned(hospital, session))
                loop.run_until_complete(worker.db.dispose())
            finally:
                loop.close()

        await asyncio.to_thread(job)
        await asyncio.sleep(0)  # the forwarded call runs on this loop
        assert heard == [PlacesChanged(hospital, session, PlaceChange.RETURNED)]
        await base.db.dispose()
