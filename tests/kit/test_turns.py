"""Turns per key: width holders at a time, first come first served, nothing left behind."""

from __future__ import annotations

import asyncio

import pytest

from yuyue.kit.turns import Turns


async def test_one_holder_at_a_time_in_order_of_arrival() -> None:
    turns = Turns()
    order: list[int] = []
    inside = 0
    most_inside = 0

    async def take(n: int) -> None:
        nonlocal inside, most_inside
        async with turns.turn("session"):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0)
            order.append(n)
            inside -= 1

    await asyncio.gather(*(take(n) for n in range(20)))
    assert order == list(range(20))
    assert most_inside == 1
    assert turns.holders("session") == 0 and turns.waiting("session") == 0


async def test_keys_do_not_wait_for_each_other() -> None:
    turns = Turns()
    release = asyncio.Event()

    async def hold() -> None:
        async with turns.turn("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    async with turns.turn("b"):
        assert turns.holders("a") == 1
    release.set()
    await holder


async def test_width_lets_that_many_in() -> None:
    turns = Turns(width=3)
    inside = 0
    most_inside = 0

    async def take() -> None:
        nonlocal inside, most_inside
        async with turns.turn("k"):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(take() for _ in range(12)))
    assert most_inside == 3


async def test_a_waiter_that_gives_up_leaves_the_line_and_the_turn_goes_on() -> None:
    turns = Turns()
    release = asyncio.Event()
    served: list[str] = []

    async def hold() -> None:
        async with turns.turn("k"):
            await release.wait()
            served.append("holder")

    async def wait(name: str) -> None:
        async with turns.turn("k"):
            served.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    quitter = asyncio.create_task(wait("quitter"))
    patient = asyncio.create_task(wait("patient"))
    await asyncio.sleep(0)
    assert turns.waiting("k") == 2
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert turns.waiting("k") == 1
    release.set()
    await asyncio.gather(holder, patient)
    assert served == ["holder", "patient"]
    assert turns.holders("k") == 0 and turns.waiting("k") == 0


async def test_a_holder_that_fails_still_passes_the_turn_on() -> None:
    turns = Turns()

    async def fail() -> None:
        async with turns.turn("k"):
            await asyncio.sleep(0)
            raise RuntimeError("the transaction failed")

    async def after() -> str:
        async with turns.turn("k"):
            return "served"

    failing = asyncio.create_task(fail())
    await asyncio.sleep(0)
    result = await asyncio.wait_for(after(), timeout=2)
    assert result == "served"
    with pytest.raises(RuntimeError):
        await failing


def test_a_width_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Turns(width=0)
