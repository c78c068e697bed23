"""The "places changed" signals in one process, and between two processes' links over Redis;
and the link's behaviour when Redis is not there."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis import asyncio as aioredis

from tests.redis_support import closed_port_url, eventually, flushed_redis
from yuyue.kit.redis import RedisLink, RedisUnavailable
from yuyue.kit.signals import (
    InProcessPlaceSignals,
    PlaceChange,
    PlacesChanged,
    RedisPlaceSignals,
)

HOSPITAL = uuid.uuid4()


def _returned(session_id: uuid.UUID | None = None) -> PlacesChanged:
    return PlacesChanged(HOSPITAL, session_id or uuid.uuid4(), PlaceChange.RETURNED)


def _taken(session_id: uuid.UUID | None = None) -> PlacesChanged:
    return PlacesChanged(HOSPITAL, session_id or uuid.uuid4(), PlaceChange.TAKEN)


class TestInProcess:
    async def test_listeners_hear_every_change_until_they_leave(self) -> None:
        signals = InProcessPlaceSignals()
        heard: list[PlacesChanged] = []
        leave = signals.subscribe(heard.append)
        first, second = _returned(), _taken()
        await signals.publish(first)
        signals.notify(second)
        assert heard == [first, second]
        leave()
        await signals.publish(_returned())
        assert heard == [first, second]

    async def test_a_failing_listener_does_not_keep_the_change_from_the_others(self) -> None:
        signals = InProcessPlaceSignals()
        heard: list[PlacesChanged] = []

        def broken(change: PlacesChanged) -> None:
            raise RuntimeError("broken cache")

        signals.subscribe(broken)
        signals.subscribe(heard.append)
        change = _returned()
        await signals.publish(change)
        assert heard == [change]

    def test_a_reset_reaches_the_listeners_that_asked_for_it(self) -> None:
        signals = InProcessPlaceSignals()
        resets: list[str] = []
        signals.subscribe(lambda change: None, on_reset=lambda: resets.append("a"))
        signals.subscribe(lambda change: None)
        signals.reset()
        assert resets == ["a"]


@pytest_asyncio.fixture
async def two_links() -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    """Two links as two serving processes hold them."""
    url = await flushed_redis()
    one, two = RedisLink(url), RedisLink(url)
    yield one, two
    await one.close()
    await two.close()


class TestBetweenProcesses:
    async def test_a_published_change_reaches_the_other_process_before_publish_returns(
        self, two_links: tuple[RedisLink, RedisLink]
    ) -> None:
        one, two = two_links
        here, there = RedisPlaceSignals(one), RedisPlaceSignals(two)
        heard_here: list[PlacesChanged] = []
        heard_there: list[PlacesChanged] = []
        here.subscribe(heard_here.append)
        there.subscribe(heard_there.append)
        await one.start()
        await two.start()
        change = _returned()
        await here.publish(change)
        assert heard_here == [change]  # at once, and only once (not again from Redis)
        await eventually(lambda: heard_there == [change])

    async def test_notified_takes_arrive_coalesced_by_session(
        self, two_links: tuple[RedisLink, RedisLink]
    ) -> None:
        one, two = two_links
        here, there = RedisPlaceSignals(one), RedisPlaceSignals(two)
        heard: list[PlacesChanged] = []
        there.subscribe(heard.append)
        await two.start()
        busy, quiet = uuid.uuid4(), uuid.uuid4()
        for _ in range(20):  # a burst of bookings in one turn of the loop
            here.notify(_taken(busy))
        here.notify(_taken(quiet))
        await eventually(lambda: len(heard) >= 2)
        assert sorted(str(c.session_id) for c in heard) == sorted([str(busy), str(quiet)])
        assert {c.change for c in heard} == {PlaceChange.TAKEN}

    async def test_a_lost_subscription_resets_the_listeners_when_it_comes_back(
        self, two_links: tuple[RedisLink, RedisLink]
    ) -> None:
        one, two = two_links
        there = RedisPlaceSignals(two)
        resets: list[int] = []
        there.subscribe(lambda change: None, on_reset=lambda: resets.append(1))
        two.retry_seconds = 0.05
        await two.start()
        assert resets == [1]  # the first subscription, at start-up
        killed = await one.call(lambda redis: _kill_named(redis, two.client_name))
        assert killed >= 1
        await eventually(lambda: len(resets) == 2)
        change = _returned()
        heard: list[PlacesChanged] = []
        there.subscribe(heard.append)
        await RedisPlaceSignals(one).publish(change)
        await eventually(lambda: heard == [change])


async def _kill_named(redis: aioredis.Redis, name: str) -> int:
    """Closes the connections a link opened (as a Redis restart would), no one else's."""
    killed = 0
    for client in await redis.client_list():
        if client.get("name") == name:
            killed += int(await redis.execute_command("CLIENT", "KILL", "ID", client["id"]))
    return killed


class TestWithoutRedis:
    async def test_local_listeners_still_hear_and_the_outage_is_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        link = RedisLink(closed_port_url())
        signals = RedisPlaceSignals(link)
        heard: list[PlacesChanged] = []
        signals.subscribe(heard.append)
        changes = [_returned() for _ in range(3)]
        with caplog.at_level(logging.WARNING, logger="yuyue.kit.redis"):
            for change in changes:
                await signals.publish(change)
        assert heard == changes
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
        await link.close()

    async def test_a_down_link_refuses_at_once_and_tries_again_after_a_pause(self) -> None:
        now = [100.0]
        link = RedisLink(closed_port_url(), retry_seconds=2.0, monotonic=lambda: now[0])
        with pytest.raises(RedisUnavailable):
            await link.call(lambda redis: redis.ping())
        assert not link.up  # the next request does not even try
        now[0] += 2.0
        assert link.up  # one request probes again
        await link.close()

    async def test_with_a_reader_no_request_probes_a_sick_redis_the_reader_does(
        self, two_links: tuple[RedisLink, RedisLink]
    ) -> None:
        one, _ = two_links
        one.retry_seconds = 0.05
        one.on_message("c", lambda message: None)
        await one.start()
        one.failed(ConnectionError("a command failed"))
        with pytest.raises(RedisUnavailable):
            await one.call(lambda redis: redis.ping())  # refused without trying
        await eventually(lambda: one.up)  # the reader found Redis answering again
        assert await one.call(lambda redis: redis.ping())

    async def test_a_link_ignores_its_own_messages(
        self, two_links: tuple[RedisLink, RedisLink]
    ) -> None:
        one, two = two_links
        seen_one: list[dict[str, object]] = []
        seen_two: list[dict[str, object]] = []
        one.on_message("c", seen_one.append)
        two.on_message("c", seen_two.append)
        await one.start()
        await two.start()
        await one.publish("c", {"n": 1})
        await eventually(lambda: len(seen_two) == 1)
        await two.publish("c", {"n": 2})
        await eventually(lambda: len(seen_one) == 1)  # Redis keeps the order: 1 came first
        assert [m["n"] for m in seen_one] == [2]
        assert [m["n"] for m in seen_two] == [1]
