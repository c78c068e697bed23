"""Group commit: works that arrive together share one transaction, each answered after its
commit; a refusal leaves only its own work, anything else sends every work to run alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from yuyue.kit.groupcommit import GroupCommit
from yuyue.kit.sql import Driver, Statement

READ = Statement("SELECT facts")
CLAIM = Statement("UPDATE claim RETURNING id")


class Refused(Exception):
    pass


class FakeDatabase:
    """Transactions that record what their works wrote, kept only when committed."""

    def __init__(self, *, fail_commit: bool = False) -> None:
        self.committed: list[list[str]] = []
        self.rolled_back = 0
        self.alone: list[str] = []
        self.fail_commit = fail_commit
        self.events: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Driver]:
        written: list[str] = []
        driver = FakeDriver(written)
        try:
            yield driver
        except BaseException:
            self.rolled_back += 1
            raise
        await asyncio.sleep(0)
        if self.fail_commit:
            self.rolled_back += 1
            raise RuntimeError("commit failed")
        self.committed.append(written)
        self.events.append("commit")

    async def run_alone(self, work: Any) -> Any:
        async with self.transaction() as db:
            result = await work(db)
        self.alone.append(str(result))
        return result


class FakeDriver:
    is_sqlite = False

    def __init__(self, written: list[str]) -> None:
        self.written = written

    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
        await asyncio.sleep(0)
        if statement is CLAIM:
            if args and args[0] == "nothing":
                return []
            self.written.append(str(args[0]))
            return [(args[0],)]
        return [("facts",)]

    async def fetchrow(self, statement: Statement, *args: Any) -> Sequence[Any] | None:
        rows = await self.fetch(statement, *args)
        return rows[0] if rows else None

    async def execute(self, statement: Statement, *args: Any) -> None:
        self.written.append("executed")

    def uuid(self, value: Any) -> Any:
        return value

    instant = day = clock_time = uuid


def grouping(db: FakeDatabase, *, width: int = 1, most: int = 16) -> GroupCommit:
    return GroupCommit(
        transaction=db.transaction,
        alone=db.run_alone,
        refusals=(Refused,),
        reads=(READ,),
        width=width,
        most=most,
    )


def booking(name: str, *, refuse_before: bool = False, refuse_after: bool = False) -> Any:
    async def work(db: Driver) -> str:
        await db.fetch(READ)
        if refuse_before:
            raise Refused(name)
        await db.fetch(CLAIM, name)
        if refuse_after:
            raise Refused(name)
        return name

    return work


async def test_works_that_arrive_together_share_one_commit() -> None:
    db = FakeDatabase()
    group = grouping(db)
    answers = await asyncio.gather(
        *(group.run(booking(n), order=n) for n in ["a", "b", "c", "d", "e"])
    )
    assert answers == ["a", "b", "c", "d", "e"]
    assert db.committed == [["a", "b", "c", "d", "e"]]
    assert group.groups == 1 and group.grouped == 5


async def test_a_group_runs_its_works_in_order_of_their_key() -> None:
    db = FakeDatabase()
    group = grouping(db)
    await asyncio.gather(*(group.run(booking(n), order=n) for n in ["first", "z", "m", "b"]))
    assert db.committed == [["b", "first", "m", "z"]]


async def test_no_answer_before_the_commit() -> None:
    db = FakeDatabase()
    group = grouping(db)
    answered: list[str] = []

    async def book(name: str) -> None:
        await group.run(booking(name), order=name)
        answered.append(f"{name} after {len(db.committed)} commits")

    await asyncio.gather(*(book(n) for n in ["a", "b", "c"]))
    assert answered == ["a after 1 commits", "b after 1 commits", "c after 1 commits"]


async def test_a_refusal_before_any_change_leaves_only_its_own_work() -> None:
    db = FakeDatabase()
    group = grouping(db)
    results = await asyncio.gather(
        group.run(booking("a"), order="a"),
        group.run(booking("b"), order="b"),
        group.run(booking("c", refuse_before=True), order="c"),
        group.run(booking("d"), order="d"),
        return_exceptions=True,
    )
    assert results[:2] == ["a", "b"] and results[3] == "d"
    assert isinstance(results[2], Refused)
    assert db.committed == [["a", "b", "d"]]
    assert group.abandoned == 0


async def test_a_refusal_after_a_change_sends_every_work_to_run_alone() -> None:
    db = FakeDatabase()
    group = grouping(db)
    results = await asyncio.gather(
        group.run(booking("a"), order="a"),
        group.run(booking("b"), order="b"),
        group.run(booking("c", refuse_after=True), order="c"),
        return_exceptions=True,
    )
    assert results[:2] == ["a", "b"] and isinstance(results[2], Refused)
    # The group's transaction was rolled back; a and b were written again, each alone.
    assert sorted(db.committed) == [["a"], ["b"]]
    assert db.rolled_back >= 2 and group.abandoned == 1


async def test_a_claim_that_found_nothing_changed_nothing() -> None:
    db = FakeDatabase()
    group = grouping(db)

    async def sold_out(d: Driver) -> str:
        if await d.fetchrow(CLAIM, "nothing") is None:
            raise Refused("no place")
        return "never"

    results = await asyncio.gather(
        group.run(booking("a"), order="a"),
        group.run(booking("b"), order="b"),
        group.run(sold_out, order="c"),
        return_exceptions=True,
    )
    assert results[:2] == ["a", "b"] and isinstance(results[2], Refused)
    assert db.committed == [["a", "b"]] and group.abandoned == 0


async def test_an_error_sends_every_work_to_run_alone_and_reaches_only_its_own_caller() -> None:
    db = FakeDatabase()
    group = grouping(db)

    async def broken(d: Driver) -> str:
        await d.fetch(CLAIM, "half")
        raise RuntimeError("a statement failed")

    results = await asyncio.gather(
        group.run(booking("a"), order="a"),
        group.run(booking("b"), order="b"),
        group.run(broken, order="c"),
        group.run(booking("d"), order="d"),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[1] == "b" and results[3] == "d"
    assert isinstance(results[2], RuntimeError)
    assert sorted(w for c in db.committed for w in c) == ["a", "b", "d"]


async def test_a_failed_commit_is_no_ones_answer_and_every_work_runs_again() -> None:
    db = FakeDatabase()
    group = grouping(db)
    failures = 0
    transaction = db.transaction

    @asynccontextmanager
    async def failing_once_for_a_group() -> AsyncIterator[Driver]:
        nonlocal failures
        async with transaction() as driver:
            yield driver
            if len(driver.written) > 1 and failures == 0:  # type: ignore[attr-defined]
                failures += 1
                raise RuntimeError("the connection broke at COMMIT")

    group._transaction = failing_once_for_a_group
    answers = await asyncio.gather(*(group.run(booking(n), order=n) for n in "abcd"))
    assert answers == list("abcd")
    assert failures == 1 and group.abandoned == 1
    # b, c and d were rolled back with the group and written again, each alone, once.
    assert sorted(w for c in db.committed for w in c) == list("abcd")


async def test_width_groups_run_at_once_and_most_bounds_a_group() -> None:
    db = FakeDatabase()
    group = grouping(db, width=2, most=3)
    names = [f"p{i:02d}" for i in range(20)]
    answers = await asyncio.gather(*(group.run(booking(n), order=n) for n in names))
    assert answers == names
    assert max(len(c) for c in db.committed) <= 3
    assert sorted(w for c in db.committed for w in c) == names


TAKE = Statement("SELECT facts, claim")
GIVE_BACK = Statement("UPDATE give back")


def taking(db: FakeDatabase) -> GroupCommit:
    return GroupCommit(
        transaction=db.transaction,
        alone=db.run_alone,
        refusals=(Refused,),
        reads=(READ,),
        takes={TAKE: lambda rows: sum(1 for row in rows if row[0] == "took")},
        gives_back=GIVE_BACK,
        width=1,
    )


class TakingDriver(FakeDriver):
    async def fetch(self, statement: Statement, *args: Any) -> Sequence[Sequence[Any]]:
        if statement is TAKE:
            await asyncio.sleep(0)
            self.written.append(f"took:{args[0]}")
            return [("facts",), ("took",)]
        return await super().fetch(statement, *args)

    async def execute(self, statement: Statement, *args: Any) -> None:
        self.written.append(f"gave:{args[0]}" if statement is GIVE_BACK else "executed")


class TakingDatabase(FakeDatabase):
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Driver]:
        written: list[str] = []
        try:
            yield TakingDriver(written)
        except BaseException:
            self.rolled_back += 1
            raise
        await asyncio.sleep(0)
        self.committed.append(written)


def take_then(name: str, *, give_back: bool, refuse: bool) -> Any:
    async def work(db: Driver) -> str:
        await db.fetch(TAKE, name)
        if give_back:
            await db.execute(GIVE_BACK, name)
        if refuse:
            raise Refused(name)
        return name

    return work


async def test_a_refusal_that_gave_back_what_it_took_leaves_only_its_own_work() -> None:
    db = TakingDatabase()
    group = taking(db)
    results = await asyncio.gather(
        group.run(take_then("a", give_back=False, refuse=False), order="a"),
        group.run(take_then("b", give_back=True, refuse=True), order="b"),
        group.run(take_then("c", give_back=False, refuse=False), order="c"),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c" and isinstance(results[1], Refused)
    assert group.abandoned == 0
    # One transaction: b's place was taken and given back inside it.
    assert db.committed[-1] == ["took:a", "took:b", "gave:b", "took:c"]


async def test_a_refusal_that_kept_what_it_took_sends_every_work_to_run_alone() -> None:
    db = TakingDatabase()
    group = taking(db)
    results = await asyncio.gather(
        group.run(take_then("a", give_back=False, refuse=False), order="a"),
        group.run(take_then("b", give_back=False, refuse=True), order="b"),
        group.run(take_then("c", give_back=False, refuse=False), order="c"),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c" and isinstance(results[1], Refused)
    assert group.abandoned == 1
    assert ["took:a"] in db.committed and ["took:c"] in db.committed
    assert not any("took:b" in written for written in db.committed)
