"""Group commit: driver transactions that arrive together are committed together.

At the release peak every booking is a short transaction of three statements between a
BEGIN and a COMMIT. The BEGIN, the COMMIT and its WAL flush cost as much again as the
statements, in the database and in this process, so transactions that wait for a
connection at the same moment are run one after another inside one transaction on one
connection and committed once. Each is still answered only after that commit, so
"acknowledged means kept" holds exactly as before.

What keeps this safe:

- A work that refuses (one of `refusals`, raised before it changed anything, or after it
  gave back everything it took) leaves the group: its refusal is its answer, the others
  go on. A statement of `takes` may take something (its answer says how many: a booking's
  facts come with the claim of a place); the `gives_back` statement returns one, so a
  work that took a place and gave it back before refusing changed nothing. A work that
  fails otherwise, or refuses after a change, a failed statement or a failed COMMIT
  rolls the whole group back, and every work of it is run again alone
  (`Database.transact_driver`, which retries deadlocks), so nobody's answer depends on a
  neighbour's failure.
- The works of a group are run in the order of their `order` key (the patient), so two
  groups in flight lock patients in the same order; what else they lock the caller keeps
  apart (booking lets one transaction per clinic session run at a time, `kit.turns`).
- At most `width` groups run at once; the rest of the arrivals wait for the next group.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from yuyue.kit.sql import Driver, Statement

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Tracked:
    """The group's driver as one work sees it: notes whether the work changed anything."""

    def __init__(
        self,
        inner: Driver,
        reads: frozenset[Statement],
        takes: Mapping[Statement, Callable[[Sequence[Sequence[Any]]], int]],
        gives_back: Statement | None,
    ) -> None:
        self._inner = inner
        self._reads = reads
        self._takes = takes
        self._gives_back = gives_back
        self.is_sqlite = inner.is_sqlite
        self.changed = False
        # Taken by a statement of `takes` and not yet given back.
        self.owed = 0
        self.uuid = inner.uuid
        self.instant = inner.instant
        self.day = inner.day
        self.clock_time = inner.clock_time

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
        if statement in self._reads:
            return await self._inner.fetch(statement, *args)
        counted = self._takes.get(statement)
        if counted is not None:
            try:
                rows = await self._inner.fetch(statement, *args)
            except BaseException:
                self.changed = True
                raise
            self.owed += counted(rows)
            return rows
        try:
            rows = await self._inner.fetch(statement, *args)
        except BaseException:
            self.changed = True  # a failed statement ends the group's transaction anyway
            raise
        # A conditional UPDATE or INSERT that returned nothing (no place left, a voucher
        # code taken) changed nothing.
        self.changed = self.changed or bool(rows)
        return rows

    async def fetchrow(self, statement: Statement, *args: Any) -> Sequence[Any] | None:
        rows = await self.fetch(statement, *args)
        return rows[0] if rows else None

    async def execute(self, statement: Statement, *args: Any) -> None:
        if statement is self._gives_back and self.owed > 0:
            try:
                await self._inner.execute(statement, *args)
            except BaseException:
                self.changed = True
                raise
            self.owed -= 1
            return
        self.changed = True
        await self._inner.execute(statement, *args)

    @property
    def unchanged(self) -> bool:
        return not self.changed and self.owed == 0


@dataclass
class _Job(Generic[T]):
    work: Callable[[Driver], Awaitable[T]]
    order: Any
    done: asyncio.Future[T]
    result: Any = None
    refusal: BaseException | None = None


class _Abandon(Exception):
    """The group's transaction must not commit; its works run again alone."""


class GroupCommit:
    def __init__(
        self,
        *,
        transaction: Callable[[], Any],
        alone: Callable[[Callable[[Driver], Awaitable[Any]]], Awaitable[Any]],
        refusals: tuple[type[BaseException], ...],
        reads: Sequence[Statement] = (),
        takes: Mapping[Statement, Callable[[Sequence[Sequence[Any]]], int]] | None = None,
        gives_back: Statement | None = None,
        width: int = 4,
        most: int = 16,
    ) -> None:
        """`transaction()` opens one driver transaction (an async context manager);
        `alone(work)` runs one work in a transaction of its own, with retries."""
        self._transaction = transaction
        self._alone = alone
        self._refusals = refusals
        self._reads = frozenset(reads)
        self._takes = dict(takes or {})
        self._gives_back = gives_back
        self._width = width
        self._most = most
        self._waiting: deque[_Job[Any]] = deque()
        self._running = 0
        self.groups = 0
        self.grouped = 0
        self.abandoned = 0

    async def run(self, work: Callable[[Driver], Awaitable[T]], *, order: Any) -> T:
        job: _Job[T] = _Job(work, order, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        if self._running < self._width:
            self._running += 1
            asyncio.get_running_loop().create_task(self._runner())
        # The group's task answers the future; a caller that goes away leaves it running.
        return await asyncio.shield(job.done)

    async def _runner(self) -> None:
        try:
            while self._waiting:
                group = [
                    self._waiting.popleft() for _ in range(min(self._most, len(self._waiting)))
                ]
                await self._run(group)
        finally:
            self._running -= 1

    async def _run(self, group: list[_Job[Any]]) -> None:
        if len(group) == 1:
            await self._run_alone(group[0])
            return
        group.sort(key=lambda job: job.order)
        try:
            async with self._transaction() as db:
                for job in group:
                    tracked = _Tracked(db, self._reads, self._takes, self._gives_back)
                    try:
                        job.result = await job.work(tracked)
                    except self._refusals as refusal:
                        if not tracked.unchanged:
                            raise _Abandon from refusal
                        job.refusal = refusal
        except Exception as error:
            self.abandoned += 1
            log.info("group of %d abandoned (%s); each runs alone", len(group), type(error))
            await asyncio.gather(*(self._run_alone(job) for job in group))
            return
        self.groups += 1
        self.grouped += len(group)
        for job in group:
            if job.done.done():
                continue
            if job.refusal is not None:
                job.done.set_exception(job.refusal)
            else:
                job.done.set_result(job.result)

    async def _run_alone(self, job: _Job[Any]) -> None:
        try:
            result = await self._alone(job.work)
        except BaseException as error:  # the caller's to handle, as without grouping
            if not job.done.done():
                job.done.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        if not job.done.done():
            job.done.set_result(result)
