"""Background sweeps. `yuyue serve` runs them in-process by default; `yuyue worker` runs
them on their own. Each sweep is one transaction per hospital; several workers may run at
once because rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import service as booking_service
from yuyue.scheduling.models import Hospital
from yuyue.staff.rules import Actor, system_actor
from yuyue.web.context import AppContext

log = logging.getLogger(__name__)


async def sweep_once(ctx: AppContext) -> list[uuid.UUID]:
    """Expires unpaid holds in every hospital; returns the sessions that got places back."""
    async with ctx.db.read() as session:
        hospitals = list((await session.scalars(select(Hospital.id))).all())
    touched: list[uuid.UUID] = []
    for hospital_id in hospitals:
        actor = system_actor(hospital_id, "hold-expiry")

        async def work(session: AsyncSession, actor: Actor = actor) -> list[uuid.UUID]:
            return await booking_service.expire_holds(session, actor=actor, now=ctx.clock.now())

        sessions = await ctx.db.transact(work)
        for session_id in sessions:
            ctx.sold_out.places_returned(session_id)
        touched.extend(sessions)
    return touched


async def run_forever(ctx: AppContext, *, interval: float) -> None:
    while True:
        try:
            touched = await sweep_once(ctx)
            if touched:
                log.info("expired holds returned places in %d sessions", len(touched))
        except asyncio.CancelledError:
            raise
        except Exception:
            # A sweep that fails is retried next round; the next round is the repair.
            log.exception("background sweep failed")
        await asyncio.sleep(interval)
