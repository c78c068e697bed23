"""The live-event bus: in-process fan-out, and Redis pub/sub between two processes' buses."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import IN_CI
from yuyue.kit.live import InProcessLiveBus, RedisLiveBus, SubscriptionEnded, make_live_bus

REDIS_URL = os.environ.get("YUYUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class TestInProcess:
    async def test_subscriber_gets_events_of_its_channels_only(self) -> None:
        bus = InProcessLiveBus()
        async with bus.subscribe("board:a", "queue:1") as sub:
            await bus.publish("board:a", {"type": "called", "number": 3})
            await bus.publish("board:b", {"type": "called", "number": 4})
            await bus.publish("queue:1", {"type": "checked_in"})
            assert await sub.next(1) == ("board:a", {"type": "called", "number": 3})
            assert await sub.next(1) == ("queue:1", {"type": "checked_in"})
            assert await sub.next(0.05) is None

    async def test_every_subscriber_gets_its_own_copy(self) -> None:
        bus = InProcessLiveBus()
        async with bus.subscribe("c") as one, bus.subscribe("c") as two:
            await bus.publish("c", {"n": 1})
            first, second = await one.next(1), await two.next(1)
            assert first == second == ("c", {"n": 1})
            assert first is not None and second is not None
            assert first[1] is not second[1]

    async def test_leaving_unsubscribes(self) -> None:
        bus = InProcessLiveBus()
        async with bus.subscribe("c"):
            assert bus.subscriber_count("c") == 1
        assert bus.subscriber_count("c") == 0
        await bus.publish("c", {"n": 1})  # nobody listens: nothing happens

    async def test_slow_subscriber_is_dropped_and_never_blocks_the_publisher(self) -> None:
        bus = InProcessLiveBus(queue_size=3)
        async with bus.subscribe("c") as slow, bus.subscribe("c") as fast:
            for n in range(3):
                await bus.publish("c", {"n": n})
                assert await fast.next(1) == ("c", {"n": n})
            await asyncio.wait_for(bus.publish("c", {"n": 3}), 0.5)  # slow's queue is full
            assert slow.dropped
            with pytest.raises(SubscriptionEnded):
                await slow.next(1)
            assert await fast.next(1) == ("c", {"n": 3})
            assert bus.subscriber_count("c") == 1

    async def test_publishing_from_another_thread_reaches_the_loop(self) -> None:
        bus = InProcessLiveBus()
        async with bus.subscribe("c") as sub:
            worker = threading.Thread(target=lambda: asyncio.run(bus.publish("c", {"n": 7})))
            worker.start()
            worker.join()
            assert await sub.next(2) == ("c", {"n": 7})

    async def test_iteration_ends_when_the_bus_closes(self) -> None:
        bus = InProcessLiveBus()
        seen: list[int] = []
        async with bus.subscribe("c") as sub:

            async def listen() -> None:
                async for _, event in sub:
                    seen.append(event["n"])

            listener = asyncio.create_task(listen())
            await bus.publish("c", {"n": 1})
            await asyncio.sleep(0.01)
            await bus.close()
            await asyncio.wait_for(listener, 1)
        assert seen == [1]

    def test_redis_only_when_configured(self) -> None:
        assert isinstance(make_live_bus(None), InProcessLiveBus)
        assert isinstance(make_live_bus("redis://127.0.0.1:6379/0"), RedisLiveBus)


async def _redis_reachable() -> bool:
    from redis import asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(REDIS_URL)
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except (RedisError, OSError, TimeoutError):
        return False
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def two_processes() -> AsyncIterator[tuple[RedisLiveBus, RedisLiveBus]]:
    """Two buses as two app processes would hold them, on a prefix of this test's own."""
    if not await _redis_reachable():
        if IN_CI:
            raise RuntimeError(f"CI=true but Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"yuyue-test:{uuid.uuid4().hex[:8]}:"
    one, two = RedisLiveBus(REDIS_URL, prefix=prefix), RedisLiveBus(REDIS_URL, prefix=prefix)
    yield one, two
    await one.close()
    await two.close()


class TestRedis:
    async def test_two_processes_see_each_others_events(
        self, two_processes: tuple[RedisLiveBus, RedisLiveBus]
    ) -> None:
        one, two = two_processes
        async with one.subscribe("board:d") as on_one, two.subscribe("board:d") as on_two:
            await one.publish("board:d", {"type": "called", "number": 3})
            await two.publish("board:d", {"type": "called", "number": 4})
            for sub in (on_one, on_two):
                assert await sub.next(2) == ("board:d", {"type": "called", "number": 3})
                assert await sub.next(2) == ("board:d", {"type": "called", "number": 4})

    async def test_only_the_subscribed_channels_arrive(
        self, two_processes: tuple[RedisLiveBus, RedisLiveBus]
    ) -> None:
        one, two = two_processes
        async with two.subscribe("visit:1") as sub:
            await one.publish("visit:2", {"n": 2})
            await one.publish("visit:1", {"n": 1})
            assert await sub.next(2) == ("visit:1", {"n": 1})
            assert await sub.next(0.2) is None

    async def test_an_unreachable_redis_never_fails_the_publisher(self) -> None:
        bus = RedisLiveBus("redis://127.0.0.1:1/0")
        await bus.publish("c", {"n": 1})  # logged, not raised
        await bus.close()
