"""The sold-out memory and the idempotency keys shared by several processes through Redis:
each "process" here is a cache with its own link, as two serving processes hold them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from tests.redis_support import closed_port_url, eventually, flushed_redis
from yuyue.booking.availability import SharedKnownKeys, SharedSoldOut, SoldOutKey
from yuyue.kit.redis import RedisLink
from yuyue.kit.signals import PlaceChange, PlacesChanged, RedisPlaceSignals

T = TypeVar("T")
HOSPITAL = uuid.uuid4()
ALTERNATIVES = [{"kind": "same_doctor", "session_id": "s2", "remaining": 3}]


def _key(slot: uuid.UUID | None = None) -> SoldOutKey:
    return (uuid.uuid4(), ("app", "appointment"), slot)


async def _refused(cache: SharedSoldOut, key: SoldOutKey) -> list[dict[str, Any]]:
    """What the route does after a failed claim."""

    async def compute() -> list[dict[str, Any]]:
        return ALTERNATIVES

    return await cache.remember(key, compute)


class Node:
    """One serving process's shared state."""

    def __init__(self, url: str, *, ttl: float = 30.0) -> None:
        self.link = RedisLink(url)
        self.sold_out = SharedSoldOut(ttl, link=self.link)
        self.places = RedisPlaceSignals(self.link)
        self.places.subscribe(self.sold_out.on_places_changed)

    async def start(self) -> Node:
        await self.link.start()
        return self

    async def places_returned(self, session_id: uuid.UUID) -> None:
        """As `AppContext.places_returned` does after a cancel commits."""
        await self.sold_out.share_returned([session_id])
        await self.places.publish(PlacesChanged(HOSPITAL, session_id, PlaceChange.RETURNED))

    async def close(self) -> None:
        await self.sold_out.close()
        await self.link.close()


@pytest_asyncio.fixture
async def nodes() -> AsyncIterator[Callable[[], Awaitable[Node]]]:
    url = await flushed_redis()
    started: list[Node] = []

    async def start() -> Node:
        node = await Node(url).start()
        started.append(node)
        return node

    yield start
    for node in started:
        await node.close()


class TestSharedSoldOut:
    async def test_a_sell_out_learned_by_one_process_is_answered_from_memory_by_another(
        self, nodes: Callable[[], Awaitable[Node]]
    ) -> None:
        a, b = await nodes(), await nodes()
        key = _key()
        await _refused(a.sold_out, key)
        # Announced before A's refusal was answered; B has it as soon as the message lands.
        await eventually(lambda: b.sold_out.peek(key) is not None)
        entry = b.sold_out.lookup(key)
        assert entry is not None and entry.alternatives == ALTERNATIVES
        assert b.sold_out.peek(_key()) is None

    async def test_places_returned_in_one_process_clear_every_process_before_it_answers(
        self, nodes: Callable[[], Awaitable[Node]]
    ) -> None:
        a, b = await nodes(), await nodes()
        key = _key()
        other_slot = (key[0], key[1], uuid.uuid4())
        await _refused(a.sold_out, key)
        await _refused(a.sold_out, other_slot)
        await eventually(lambda: b.sold_out.peek(other_slot) is not None)
        await b.places_returned(key[0])
        assert b.sold_out.peek(key) is None
        await eventually(lambda: a.sold_out.peek(key) is None)
        assert a.sold_out.peek(other_slot) is None
        # Nor does a process that starts now find it in Redis.
        c = await nodes()
        assert c.sold_out.peek(key) is None

    async def test_a_process_that_starts_later_loads_what_the_others_learned(
        self, nodes: Callable[[], Awaitable[Node]]
    ) -> None:
        a = await nodes()
        key = _key(uuid.uuid4())
        await _refused(a.sold_out, key)
        late = await nodes()
        entry = late.sold_out.peek(key)
        assert entry is not None and entry.alternatives == ALTERNATIVES

    async def test_a_learned_entry_lives_no_longer_than_its_ttl_anywhere(self) -> None:
        url = await flushed_redis()
        a = Node(url, ttl=0.3)
        b = Node(url, ttl=0.3)
        await a.start()
        await b.start()
        try:
            key = _key()
            await _refused(a.sold_out, key)
            await eventually(lambda: b.sold_out.peek(key) is not None)
            await asyncio.sleep(0.35)
            assert b.sold_out.peek(key) is None
            assert a.sold_out.peek(key) is None
            late = await Node(url, ttl=0.3).start()
            assert late.sold_out.peek(key) is None
            await late.close()
        finally:
            await a.close()
            await b.close()

    async def test_an_entry_proved_wrong_by_a_booking_is_dropped_everywhere(
        self, nodes: Callable[[], Awaitable[Node]]
    ) -> None:
        a, b = await nodes(), await nodes()
        key = _key()
        await _refused(a.sold_out, key)
        await eventually(lambda: b.sold_out.peek(key) is not None)
        b.sold_out.forget(key)  # B revalidated and found a place
        await eventually(lambda: a.sold_out.peek(key) is None)
        assert (await nodes()).sold_out.peek(key) is None

    async def test_a_policy_change_clears_every_process(
        self, nodes: Callable[[], Awaitable[Node]]
    ) -> None:
        a, b = await nodes(), await nodes()
        keys = [_key(), _key()]
        for key in keys:
            await _refused(a.sold_out, key)
        await eventually(lambda: all(b.sold_out.peek(k) is not None for k in keys))
        a.sold_out.clear()
        await eventually(lambda: all(b.sold_out.peek(k) is None for k in keys))
        late = await nodes()
        assert all(late.sold_out.peek(k) is None for k in keys)

    async def test_without_redis_each_process_keeps_its_own_memory(self) -> None:
        node = Node(closed_port_url())
        await node.start()
        try:
            key = _key()
            assert await _refused(node.sold_out, key) == ALTERNATIVES
            assert node.sold_out.peek(key) is not None
            await node.places_returned(key[0])  # the local listener still clears it
            assert node.sold_out.peek(key) is None
        finally:
            await node.close()


class CountingLink(RedisLink):
    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.calls = 0

    async def call(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        self.calls += 1
        return await super().call(command)


async def _until_complete(keys: SharedKnownKeys) -> None:
    """Until the set is marked complete: a key never used has no answer then."""

    async def complete() -> bool:
        return not await keys.may_have_answer("never", "used")

    await eventually(complete)


def _no_recent() -> Callable[[], Awaitable[list[tuple[str, str]]]]:
    async def recent() -> list[tuple[str, str]]:
        return []

    return recent


class TestSharedKnownKeys:
    async def test_a_key_taken_in_one_process_may_have_an_answer_in_every_other(self) -> None:
        url = await flushed_redis()
        a = SharedKnownKeys(link=RedisLink(url), settle_seconds=0)
        b = SharedKnownKeys(link=RedisLink(url))
        await a.start(_no_recent())  # a new Redis: the set is copied and marked complete
        await _until_complete(b)
        await a.add("channel:k", "retry-me")
        assert await b.may_have_answer("channel:k", "retry-me")
        assert not await b.may_have_answer("channel:k", "fresh")
        assert not await b.may_have_answer("channel:other", "retry-me")
        await a.link.close()
        await b.link.close()

    async def test_until_the_set_is_complete_every_key_may_have_an_answer(self) -> None:
        url = await flushed_redis()
        seen_before = [("channel:k", "yesterday")]
        copied = asyncio.Event()

        async def recent() -> list[tuple[str, str]]:
            await copied.wait()  # the database read is slow: requests come meanwhile
            return seen_before

        keys = SharedKnownKeys(link=RedisLink(url), settle_seconds=0)
        await keys.start(recent)
        assert await keys.may_have_answer("channel:k", "fresh")  # not yet complete
        copied.set()
        await _until_complete(keys)
        assert not await keys.may_have_answer("channel:k", "fresh")
        assert await keys.may_have_answer("channel:k", "yesterday")
        await keys.link.close()

    async def test_a_burst_of_requests_asks_redis_once(self) -> None:
        url = await flushed_redis()
        link = CountingLink(url)
        keys = SharedKnownKeys(link=link, settle_seconds=0)
        await keys.start(_no_recent())
        await _until_complete(keys)
        await keys.add("s", "k7")
        before = link.calls
        answers = await asyncio.gather(*[keys.may_have_answer("s", f"k{n}") for n in range(50)])
        assert answers == [n == 7 for n in range(50)]
        assert link.calls - before == 1
        await link.close()

    async def test_without_redis_every_key_may_have_an_answer(self) -> None:
        keys = SharedKnownKeys(link=RedisLink(closed_port_url()))
        await keys.start(_no_recent())
        await keys.add("s", "k")
        assert await keys.may_have_answer("s", "never-seen")
        await keys.link.close()

    async def test_keys_taken_while_redis_was_away_are_written_once_it_is_back(self) -> None:
        url = await flushed_redis()
        now = [100.0]
        link = RedisLink(url, monotonic=lambda: now[0])
        keys = SharedKnownKeys(link=link, settle_seconds=0)
        await keys.start(_no_recent())
        await _until_complete(keys)
        link.failed(ConnectionError("gone for a moment"))
        await keys.add("s", "during-outage")
        assert await keys.may_have_answer("s", "unrelated")  # down: ask the database
        now[0] += link.retry_seconds
        other = SharedKnownKeys(link=RedisLink(url))
        assert not await other.may_have_answer("s", "during-outage")  # not written yet
        assert not await keys.may_have_answer("s", "unrelated")  # back, and it writes
        await eventually(lambda: other.may_have_answer("s", "during-outage"))
        await link.close()
        await other.link.close()


@pytest.mark.parametrize("ttl", [0.0])
async def test_a_zero_ttl_shares_nothing(ttl: float) -> None:
    url = await flushed_redis()
    a, b = Node(url, ttl=ttl), Node(url, ttl=ttl)
    await a.start()
    await b.start()
    try:
        key = _key()
        await _refused(a.sold_out, key)
        assert a.sold_out.peek(key) is None
        client = aioredis.Redis.from_url(url)
        assert await client.keys("*sold-out*") == []
        await client.aclose()
    finally:
        await a.close()
        await b.close()
