"""Rebuilding the summary tables over many visit days, as the CLI and the periodic job run
it. Like `staff.access`, this takes the `Database` and runs its own transactions: one per
hospital and visit day, so each day is replaced whole or not at all (a report never sees
half a day), and a backfill of a year never holds one long transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.db import Database
from yuyue.kit.localtime import local_today
from yuyue.reports import service
from yuyue.reports.service import Refreshed


async def refresh(
    db: Database,
    *,
    now: datetime,
    days: Callable[[date], Sequence[date]],
    hospital_id: uuid.UUID | None = None,
) -> list[Refreshed]:
    """Rebuilds `days(today)` (today on each hospital's calendar) for every hospital, or
    for one."""
    async with db.read() as session:
        hospitals = await service.hospitals(session)
    done: list[Refreshed] = []
    for hospital, timezone in hospitals:
        if hospital_id is not None and hospital != hospital_id:
            continue
        written = 0
        chosen = days(local_today(now, timezone))
        for day in chosen:

            async def work(
                session: AsyncSession,
                day: date = day,
                hospital: uuid.UUID = hospital,
                timezone: str = timezone,
            ) -> int:
                return await service.refresh_day(
                    session, hospital_id=hospital, day=day, timezone=timezone, now=now
                )

            written += await db.transact(work)
        done.append(Refreshed(hospital, len(chosen), written))
    return done
