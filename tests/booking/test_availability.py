"""The sold-out memory: fresh answers, one revalidator at a time, and never a false
"available". Pure: a fake monotonic clock, no database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from yuyue.booking.availability import KnownKeys, SoldOutCache

KEY = (uuid.uuid4(), ("app", "appointment"), None)
OTHER = (uuid.uuid4(), ("app", "appointment"), None)
ALTERNATIVES = [{"kind": "same_doctor", "session_id": "s2", "remaining": 3}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> SoldOutCache:
    return SoldOutCache(2.0, monotonic=clock)


async def _remember(cache: SoldOutCache, key: Any = KEY) -> list[dict[str, Any]]:
    async def compute() -> list[dict[str, Any]]:
        return ALTERNATIVES

    return await cache.remember(key, compute)


class TestSoldOutCache:
    async def test_an_unknown_session_goes_to_the_database(self, cache: SoldOutCache) -> None:
        assert cache.lookup(KEY) is None

    async def test_a_fresh_entry_answers_everyone(self, cache: SoldOutCache) -> None:
        await _remember(cache)
        for _ in range(3):
            entry = cache.lookup(KEY)
            assert entry is not None
            assert entry.alternatives == ALTERNATIVES
        assert cache.lookup(OTHER) is None

    async def test_after_expiry_exactly_one_request_revalidates(
        self, cache: SoldOutCache, clock: FakeClock
    ) -> None:
        await _remember(cache)
        clock.now += 2.0
        assert cache.lookup(KEY) is None  # this one asks the database
        assert cache.lookup(KEY) is not None  # the others keep the stale answer
        assert cache.lookup(KEY) is not None
        await _remember(cache)  # the database said sold out again: fresh for 2 s
        clock.now += 1.9
        assert cache.lookup(KEY) is not None

    async def test_a_place_found_by_the_revalidator_drops_the_entry(
        self, cache: SoldOutCache, clock: FakeClock
    ) -> None:
        await _remember(cache)
        clock.now += 3
        assert cache.lookup(KEY) is None
        cache.forget(KEY)
        assert cache.lookup(KEY) is None
        assert cache.lookup(KEY) is None  # everyone goes to the database again

    async def test_an_inconclusive_revalidation_lets_the_next_request_ask(
        self, cache: SoldOutCache, clock: FakeClock
    ) -> None:
        await _remember(cache)
        clock.now += 3
        assert cache.lookup(KEY) is None
        cache.release(KEY)  # refused for a limit: availability still unknown
        assert cache.lookup(KEY) is None

    async def test_a_revalidator_that_never_reports_back_is_replaced(
        self, cache: SoldOutCache, clock: FakeClock
    ) -> None:
        await _remember(cache)
        clock.now += 3
        assert cache.lookup(KEY) is None
        clock.now += 5
        assert cache.lookup(KEY) is None

    async def test_a_returned_place_clears_every_entry_of_the_session(
        self, cache: SoldOutCache
    ) -> None:
        await _remember(cache)
        await _remember(cache, (KEY[0], ("window", "onsite"), None))
        await _remember(cache, OTHER)
        cache.places_returned(KEY[0])
        assert cache.lookup(KEY) is None
        assert cache.lookup((KEY[0], ("window", "onsite"), None)) is None
        assert cache.lookup(OTHER) is not None

    async def test_a_burst_computes_alternatives_once(self, cache: SoldOutCache) -> None:
        calls = 0

        async def compute() -> list[dict[str, Any]]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return ALTERNATIVES

        answers = await asyncio.gather(*[cache.remember(KEY, compute) for _ in range(50)])
        assert calls == 1
        assert all(a == ALTERNATIVES for a in answers)

    async def test_a_zero_ttl_turns_the_memory_off(self, clock: FakeClock) -> None:
        cache = SoldOutCache(0, monotonic=clock)
        await _remember(cache)
        assert cache.lookup(KEY) is None


class TestKnownKeys:
    async def test_a_single_process_knows_which_keys_can_have_an_answer(self) -> None:
        keys = KnownKeys(authoritative=True)
        await keys.add("channel:k", "a")
        assert await keys.may_have_answer("channel:k", "a")
        assert not await keys.may_have_answer("channel:k", "b")
        assert not await keys.may_have_answer("channel:other", "a")

    async def test_the_last_days_keys_are_known_from_the_start(self) -> None:
        keys = KnownKeys(authoritative=True)

        async def recent() -> list[tuple[str, str]]:
            return [("channel:k", "yesterday")]

        await keys.start(recent)
        assert await keys.may_have_answer("channel:k", "yesterday")
        assert not await keys.may_have_answer("channel:k", "today")

    async def test_several_processes_must_ask_the_database(self) -> None:
        assert await KnownKeys(authoritative=False).may_have_answer("channel:k", "never-seen")

    async def test_forgetting_any_key_makes_every_key_suspect(self) -> None:
        keys = KnownKeys(authoritative=True, limit=2)
        for key in ("a", "b", "c"):
            await keys.add("s", key)
        assert await keys.may_have_answer("s", "zzz")
