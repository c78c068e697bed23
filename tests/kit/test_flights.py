"""Flights: one computation per key, shared by whoever asks while it runs."""

from __future__ import annotations

import asyncio

import pytest

from yuyue.kit.flights import Flights


class Slow:
    """A computation that waits for `release` and counts how often it ran."""

    def __init__(self, answer: str = "answer", error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.runs = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        await asyncio.sleep(0)  # a real look-up yields to the others while it runs
        if self.error is not None and self.runs == 1:
            raise self.error
        return self.answer


async def test_callers_asking_meanwhile_share_one_computation() -> None:
    flights: Flights[str, str] = Flights()
    slow = Slow()
    callers = [asyncio.create_task(flights.run("k", slow)) for _ in range(20)]
    await asyncio.sleep(0)
    slow.release.set()
    assert await asyncio.gather(*callers) == ["answer"] * 20
    assert slow.runs == 1


async def test_other_keys_and_later_callers_compute_anew() -> None:
    flights: Flights[str, str] = Flights()
    slow = Slow()
    slow.release.set()
    assert await flights.run("a", slow) == "answer"
    assert await flights.run("b", slow) == "answer"
    assert await flights.run("a", slow) == "answer"
    assert slow.runs == 3


async def test_a_shared_failure_reaches_every_waiter() -> None:
    flights: Flights[str, str] = Flights()
    slow = Slow(error=RuntimeError("down"))
    callers = [asyncio.create_task(flights.run("k", slow)) for _ in range(5)]
    await asyncio.sleep(0)
    slow.release.set()
    answers = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(a, RuntimeError) for a in answers)
    assert slow.runs == 1


async def test_without_shared_failures_the_waiters_ask_for_themselves() -> None:
    flights: Flights[str, str] = Flights(share_failures=False)
    slow = Slow(error=RuntimeError("down"))
    first = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(flights.run("k", slow)) for _ in range(3)]
    await asyncio.sleep(0)
    slow.release.set()
    with pytest.raises(RuntimeError):
        await first
    # The first waiter to resume computes again; the others share its answer.
    assert await asyncio.gather(*waiters) == ["answer"] * 3
    assert slow.runs == 2


async def test_an_abandoned_computation_leaves_the_next_caller_to_compute() -> None:
    flights: Flights[str, str] = Flights(share_failures=False)
    slow = Slow()
    first = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    slow.release.set()
    assert await flights.run("k", slow) == "answer"
    assert slow.runs == 2


async def test_forgetting_a_key_starts_a_new_flight_for_later_callers() -> None:
    flights: Flights[str, str] = Flights()
    old, new = Slow("old"), Slow("new")
    waiting = asyncio.create_task(flights.run("k", old))
    await asyncio.sleep(0)
    flights.forget("k")
    new.release.set()
    assert await flights.run("k", new) == "new"
    old.release.set()
    assert await waiting == "old"
