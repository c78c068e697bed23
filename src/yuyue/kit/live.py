"""Live events: small JSON messages published on named channels and fanned out to whoever
listens right now (waiting-room screens, doctors' queues, patients' phones).

Channels are plain names such as ``board:{department_id}:{date}``, ``queue:{session_id}``
or ``visit:{appointment_id}``. An event is a JSON object; listeners use it as a nudge to
read the current state again, so a lost event costs freshness, never correctness.

Two implementations, one interface:

- :class:`InProcessLiveBus` (the default): a bounded asyncio queue per subscriber. A
  publisher never waits: a subscriber whose queue is full is dropped (its stream ends and
  the browser reconnects, reading the current state first). Safe to publish from another
  thread (a job worker): delivery hops onto each subscriber's own loop.
- :class:`RedisLiveBus` (when ``YUYUE_REDIS_URL`` is set): publishing goes through Redis
  pub/sub, and each process holds one pattern subscription that feeds its local
  subscribers, so every screen connected to any process sees every event. Events travel
  through Redis even inside one process, so all processes see them in the same order.

Publishing happens after the transaction that caused it commits; a failed publish is
logged and never undoes or fails the work it reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

log = logging.getLogger(__name__)

LiveEvent = dict[str, Any]

DEFAULT_QUEUE_SIZE = 64


class Subscription:
    """One listener's view of some channels: ``await next(timeout)`` or iterate."""

    def __init__(self, channels: tuple[str, ...], size: int) -> None:
        self.channels = channels
        self.loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, LiveEvent] | None] = asyncio.Queue(size)
        self.dropped = False

    def _offer(self, channel: str, event: LiveEvent) -> bool:
        """Runs on the subscriber's loop. False when the subscriber is too slow."""
        if self.dropped:
            return False
        try:
            self._queue.put_nowait((channel, event))
        except asyncio.QueueFull:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        # Make room for the end marker so a waiting reader wakes up at once.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, wait: float | None = None) -> tuple[str, LiveEvent] | None:
        """The next ``(channel, event)``; None after `wait` seconds. Raises
        :class:`SubscriptionEnded` once dropped (too slow, or the bus lost its connection)."""
        if self.dropped and self._queue.empty():
            raise SubscriptionEnded()
        try:
            item = await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None
        if item is None:
            raise SubscriptionEnded()
        return item

    def pending(self) -> list[tuple[str, LiveEvent]]:
        """Everything already queued, without waiting (to coalesce a burst of events)."""
        items: list[tuple[str, LiveEvent]] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)
                break
            items.append(item)
        return items

    def __aiter__(self) -> AsyncIterator[tuple[str, LiveEvent]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[str, LiveEvent]]:
        while True:
            try:
                item = await self.next()
            except SubscriptionEnded:
                return
            if item is not None:
                yield item


class SubscriptionEnded(Exception):
    """The subscription was dropped; the listener should start again from current state."""


class LiveBus(Protocol):
    async def publish(self, channel: str, event: Mapping[str, Any]) -> None: ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Listen to these channels; events published after entering are delivered."""
        ...

    async def close(self) -> None: ...


def encode(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)


class InProcessLiveBus:
    """Fan-out inside one process. Publishers never block; slow subscribers are dropped."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()

    def subscriber_count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, ()))

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        self.deliver(channel, event)

    def deliver(self, channel: str, event: Mapping[str, Any]) -> None:
        # A copy through JSON for each listener: they get exactly what Redis would carry,
        # and nobody shares a mutable dict with the publisher or with each other.
        text = encode(event)
        with self._lock:
            listeners = list(self._subscribers.get(channel, ()))
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for subscription in listeners:
            payload: LiveEvent = json.loads(text)
            if subscription.loop is here:
                delivered = subscription._offer(channel, payload)
                if not delivered:
                    self._forget(subscription)
            elif not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(
                    self._offer_or_forget, subscription, channel, payload
                )

    def _offer_or_forget(self, subscription: Subscription, channel: str, event: LiveEvent) -> None:
        if not subscription._offer(channel, event):
            self._forget(subscription)

    def drop_all(self) -> None:
        """Ends every subscription (their listeners reconnect and re-read the state)."""
        with self._lock:
            everyone = {s for group in self._subscribers.values() for s in group}
            self._subscribers.clear()
        for subscription in everyone:
            if not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(subscription._drop)

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            for channel in subscription.channels:
                group = self._subscribers.get(channel)
                if group is not None:
                    group.discard(subscription)
                    if not group:
                        del self._subscribers[channel]

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(tuple(dict.fromkeys(channels)), self.queue_size)
        with self._lock:
            for channel in subscription.channels:
                self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            self._forget(subscription)

    async def close(self) -> None:
        self.drop_all()


class RedisLiveBus:
    """Redis pub/sub between processes; a local :class:`InProcessLiveBus` fans out inside
    this one. The Redis client is made on first use, on the loop that uses it."""

    def __init__(
        self, url: str, *, prefix: str = "yuyue:live:", queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.local = InProcessLiveBus(queue_size=queue_size)
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Lock | None = None

    def _redis(self) -> Any:
        if self._client is None:
            from redis import asyncio as aioredis

            self._client = aioredis.from_url(self.url, decode_responses=True)
        return self._client

    async def publish(self, channel: str, event: Mapping[str, Any]) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis().publish(self.prefix + channel, encode(event))
        except (RedisError, OSError) as error:
            log.warning("live event on %s not published: %s", channel, error)

    async def _listen(self) -> None:
        """Starts the one pattern subscription of this process, once, and waits until
        Redis confirms it (so nothing published afterwards can be missed)."""
        if self._ready is None:
            self._ready = asyncio.Lock()
        async with self._ready:
            if self._reader is not None and not self._reader.done():
                return
            pubsub = self._redis().pubsub()
            await pubsub.psubscribe(self.prefix + "*")
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message.get("type") == "psubscribe":
                    break
            self._pubsub = pubsub
            self._reader = asyncio.get_running_loop().create_task(
                self._read(pubsub), name="yuyue-live-redis"
            )

    async def _read(self, pubsub: Any) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
            except (RedisError, OSError) as error:
                # Whatever was published meanwhile is lost: end every stream so each
                # browser reconnects and reads the current state again.
                log.warning("live events: Redis connection lost (%s); reconnecting", error)
                self.local.drop_all()
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "pmessage":
                continue
            channel = str(message["channel"])[len(self.prefix) :]
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("live events: ignored a malformed message on %s", channel)
                continue
            if isinstance(event, dict):
                self.local.deliver(channel, event)

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        await self._listen()
        async with self.local.subscribe(*channels) as subscription:
            yield subscription

    async def close(self) -> None:
        self.local.drop_all()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_live_bus(redis_url: str | None) -> InProcessLiveBus | RedisLiveBus:
    return RedisLiveBus(redis_url) if redis_url else InProcessLiveBus()
