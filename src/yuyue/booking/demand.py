"""Booking attempts, counted for the demand heat map: how many times patients asked for a
session's places, and what they were told (booked, sold out, or another refusal).

Most attempts at the release peak are refused from memory (`fastpath`, the sold-out
memory in `api`), before any database work, and those refusals are exactly the demand a
report of bookings cannot see. So each serving process counts them where they are
answered: `DemandCounter.count` adds one to an in-memory dict entry — no I/O, no lock, a
few hundred nanoseconds (bench/demand.py) — keyed by hospital, session, channel, the
quarter-hour of the attempt (UTC; turned into the hospital's local hour when written, so
offsets of 30 or 45 minutes land right) and the outcome.

`flush` adds those counts to `booking_demand` in one transaction with an additive upsert
(`attempts = attempts + excluded.attempts`, on SQLite and PostgreSQL alike), so every
process adds its own and nothing is overwritten. Only what that transaction committed is
taken off the counter afterwards: attempts counted meanwhile stay, a failed flush leaves
everything for the next one, and a count is never written twice (the one exception is a
commit whose acknowledgement is lost with the connection, which no client can tell from a
failure). The server flushes every `demand_flush_seconds` and once more on shutdown.

Reports read the counts through `session_attempts`, never the table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.models import BookingDemand
from yuyue.kit.db import Database
from yuyue.kit.errors import YuyueError
from yuyue.scheduling.models import Hospital

log = logging.getLogger(__name__)

BOOKED = "booked"
SOLD_OUT = "sold_out"
# Attempts are counted per quarter of an hour (seconds), then written per local hour.
QUARTER = 900
# Rows per upsert statement: well below SQLite's and asyncpg's parameter limits.
_CHUNK = 500

# (hospital, session, channel, epoch quarter-hour, outcome); the ids as their 128-bit ints,
# since hashing a UUID runs Python code and an int's hash does not.
CounterKey = tuple[int, int, str, int, str]


def refusal_outcome(refusal: YuyueError) -> str | None:
    """The outcome a refused booking attempt is counted under: its code when a booking
    rule refused the place (409: sold out, closed, limits, already booked…; 403
    blacklisted), else None — a malformed request, an unknown session or patient, a
    missing key or maintenance says nothing about demand for the session's places."""
    if refusal.status == 409 or refusal.code == "blacklisted":
        return refusal.code
    return None


class DemandCounter:
    """One process's booking attempts not yet written to `booking_demand`."""

    def __init__(self, seconds: Callable[[], float] = time.time) -> None:
        # The clock, as epoch seconds (`kit.clock.epoch_seconds`): `time.time` when serving.
        self._seconds = seconds
        self._counts: dict[CounterKey, int] = {}
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def count(
        self,
        hospital_id: uuid.UUID,
        session_id: uuid.UUID,
        channel: str,
        outcome: str,
        at: datetime | None = None,
    ) -> None:
        """One attempt, now (or `at`). On the booking hot path: a dict increment, nothing
        else."""
        seconds = self._seconds() if at is None else at.timestamp()
        key = (hospital_id.int, session_id.int, channel, int(seconds) // QUARTER, outcome)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def pending(self) -> dict[CounterKey, int]:
        """A copy of the counts not yet written."""
        return dict(self._counts)

    async def flush(self, db: Database) -> int:
        """Adds the counts to `booking_demand` in one transaction and, once it committed,
        takes exactly those counts off; returns the attempts written. Raises (keeping every
        count) when the transaction fails. One flush at a time, so two never write the same
        counts."""
        async with self._flushing:
            taken = dict(self._counts)
            if not taken:
                return 0

            async def work(session: AsyncSession) -> None:
                await add_attempts(session, taken)

            await db.transact(work)
            counts = self._counts
            for key, written in taken.items():
                left = counts[key] - written
                if left:
                    counts[key] = left
                else:
                    del counts[key]
            return sum(taken.values())

    async def flush_quietly(self, db: Database) -> None:
        try:
            await self.flush(db)
        except Exception:
            log.warning(
                "booking attempts could not be written; kept for the next flush", exc_info=True
            )

    def start(self, db: Database, *, every: float) -> None:
        """Flushes every `every` seconds until `stop`."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                await self.flush_quietly(db)

        self._task = asyncio.get_running_loop().create_task(loop(), name="yuyue-booking-demand")

    async def stop(self, db: Database) -> None:
        """Stops the periodic flush and writes what is left (serving ends)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush_quietly(db)


async def _timezones(session: AsyncSession, hospital_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Hospital.id, Hospital.timezone).where(Hospital.id.in_(hospital_ids))
    )
    return {row[0]: row[1] or "Asia/Shanghai" for row in rows}


async def add_attempts(session: AsyncSession, counts: Mapping[CounterKey, int]) -> None:
    """Adds counted attempts to `booking_demand` (never overwrites: each process adds its
    own). Quarter-hours become the hospital's local day and hour here."""
    if not counts:
        return
    zones = await _timezones(session, {uuid.UUID(int=key[0]) for key in counts})
    rows: dict[tuple[uuid.UUID, uuid.UUID, str, date, int, str], int] = {}
    for (hospital, clinic, channel, quarter, outcome), n in counts.items():
        hospital_id, session_id = uuid.UUID(int=hospital), uuid.UUID(int=clinic)
        # ZoneInfo keeps one instance per name: no cache of our own.
        tz = ZoneInfo(zones.get(hospital_id, "Asia/Shanghai"))
        local = datetime.fromtimestamp(quarter * QUARTER, tz)
        key = (hospital_id, session_id, str(channel), local.date(), local.hour, outcome)
        rows[key] = rows.get(key, 0) + n
    table = cast(Table, BookingDemand.__table__)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["hospital_id", "session_id", "channel", "day", "hour", "outcome"],
        set_={"attempts": table.c.attempts + statement.excluded.attempts},
    )
    values = [
        {
            "hospital_id": h,
            "session_id": s,
            "channel": c,
            "day": d,
            "hour": hour,
            "outcome": o,
            "attempts": n,
        }
        # In key order: two processes flushing the same keys at once lock the rows in the
        # same order, so one waits for the other instead of deadlocking.
        for (h, s, c, d, hour, o), n in sorted(rows.items(), key=lambda item: item[0])
    ]
    for start in range(0, len(values), _CHUNK):
        await session.execute(statement, values[start : start + _CHUNK])


@dataclass(frozen=True, slots=True)
class SessionAttempts:
    """Booking attempts for one session from one channel in one local hour, by outcome."""

    session_id: uuid.UUID
    channel: str
    day: date
    hour: int
    outcome: str
    attempts: int


async def session_attempts(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_ids: Sequence[uuid.UUID]
) -> list[SessionAttempts]:
    """Every written attempt for these sessions (the public read for reports)."""
    found: list[SessionAttempts] = []
    for start in range(0, len(session_ids), _CHUNK):
        chunk = session_ids[start : start + _CHUNK]
        rows = await session.execute(
            select(
                BookingDemand.session_id,
                BookingDemand.channel,
                BookingDemand.day,
                BookingDemand.hour,
                BookingDemand.outcome,
                BookingDemand.attempts,
            ).where(BookingDemand.hospital_id == hospital_id, BookingDemand.session_id.in_(chunk))
        )
        found.extend(SessionAttempts(*row) for row in rows)
    return found
