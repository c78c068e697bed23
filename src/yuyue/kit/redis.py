"""One process's link to Redis for the state several serving processes share.

The sold-out memory, the idempotency-key filter and the "places changed" signals use Redis
when ``YUYUE_REDIS_URL`` is set, through one :class:`RedisLink` per process (per event
loop): short commands on a pooled client, and one pub/sub connection whose reader hands
each message to the handler registered for its channel.

Redis speeds things up and is never the truth: the database decides every booking. So a Redis that
goes away must cost speed, not correctness. Every command runs through :meth:`RedisLink.call`,
which raises :class:`RedisUnavailable` at once while Redis is known to be down, and each
user then takes its in-process or database path. The outage is logged once, and once when
Redis is back; the reader reconnects on its own and tells its users, which reload what
they may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
T = TypeVar("T")

MessageHandler = Callable[[dict[str, Any]], None]
Reconnected = Callable[[], Awaitable[None]]


class RedisUnavailable(Exception):
    """Redis could not be used just now; take the path that does without it."""


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


class RedisLink:
    """Commands, one pub/sub reader, and the state "Redis is down, don't wait for it".

    Messages are JSON objects stamped with this link's `origin`; a link never hands its
    own messages to its handlers, since whoever published them has already acted locally.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "yuyue:",
        timeout: float = 0.5,
        retry_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.origin = uuid.uuid4().hex[:16]
        # Shown by CLIENT LIST: which connections are yuyue's, and which process's.
        self.client_name = f"yuyue-{self.origin}"
        self._now = monotonic
        self._client: aioredis.Redis | None = None
        self._handlers: dict[str, MessageHandler] = {}
        self._reconnected: list[Reconnected] = []
        self._reader: asyncio.Task[None] | None = None
        # Set after the first attempt to subscribe, whatever its outcome.
        self._tried = asyncio.Event()
        self._down_until = 0.0
        self._down = False

    # --- commands -------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def up(self) -> bool:
        """False from a failure until Redis answers again. The reader (when started)
        probes in the background, so no request waits on a sick Redis; without a reader
        one command tries again every `retry_seconds`."""
        if not self._down:
            return True
        return self._reader is None and self._now() >= self._down_until

    def redis(self) -> aioredis.Redis:
        if self._client is None:
            # Short timeouts: a request never waits long on a sick Redis, it does without.
            # One connection: commands are few and coalesced, and skipping the pool's
            # check-out costs a third less CPU per command.
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
                client_name=self.client_name,
                single_connection_client=True,
            )
        return self._client

    async def call(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Runs `command` against Redis; :class:`RedisUnavailable` when it cannot."""
        if not self.up:
            raise RedisUnavailable()
        try:
            result = await command(self.redis())
        except (RedisError, OSError, TimeoutError) as error:
            self.failed(error)
            raise RedisUnavailable() from error
        self._recovered()
        return result

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Publishes to the other processes' handlers of `channel`."""
        text = json.dumps({"o": self.origin, **message}, separators=(",", ":"), default=str)
        await self.call(lambda r: r.publish(self.key(channel), text))

    def failed(self, error: BaseException) -> None:
        self._down_until = self._now() + self.retry_seconds
        if not self._down:
            self._down = True
            log.warning(
                "Redis at %s is unreachable (%s): sold-out memory, idempotency keys and "
                "place signals fall back to this process and the database until it returns",
                redact(self.url),
                error or type(error).__name__,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("Redis at %s is reachable again", redact(self.url))

    # --- pub/sub --------------------------------------------------------------------------

    def on_message(self, channel: str, handler: MessageHandler) -> None:
        """Hands other processes' messages on `channel` to `handler` (register before
        :meth:`start`)."""
        self._handlers[self.key(channel)] = handler

    def on_reconnected(self, reload: Reconnected) -> None:
        """Called after each (re)subscription, the first included: messages may have been
        missed before it, so whatever they maintain should be read again."""
        self._reconnected.append(reload)

    async def start(self, *, wait: float = 1.0) -> None:
        """Starts the reader; waits up to `wait` seconds for the first subscription (and
        the reloads it triggers), and carries on without it (the reader keeps trying)."""
        if self._reader is not None or not self._handlers:
            return
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="yuyue-redis-link")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), wait)

    async def _read(self) -> None:
        # Its own client without a read timeout: the subscription idles for long.
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.timeout,
            decode_responses=True,
            client_name=self.client_name,
        )
        try:
            await self._subscribe_forever(client)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _subscribe_forever(self, client: aioredis.Redis) -> None:
        while True:
            pubsub = None
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(*self._handlers)
                confirmed = 0
                while confirmed < len(self._handlers):
                    message = await pubsub.get_message(timeout=self.retry_seconds * 2)
                    if message is None:
                        raise TimeoutError("no subscription confirmation")
                    if message.get("type") == "subscribe":
                        confirmed += 1
                self._recovered()
                for reload in self._reconnected:
                    with contextlib.suppress(RedisUnavailable):
                        await reload()
                self._tried.set()
                while True:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.retry_seconds
                    )
                    if message is not None and message.get("type") == "message":
                        self._dispatch(str(message["channel"]), message["data"])
                    if self._down and self._now() >= self._down_until:
                        await self._probe()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as error:
                self.failed(error)
                self._tried.set()
                await asyncio.sleep(self.retry_seconds)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()

    async def _probe(self) -> None:
        """Commands failed while the subscription lives on: are they back?"""
        try:
            await asyncio.wait_for(self.redis().ping(), self.timeout)
        except (RedisError, OSError, TimeoutError):
            self._down_until = self._now() + self.retry_seconds
        else:
            self._recovered()

    def _dispatch(self, channel: str, data: Any) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            log.warning("ignored a malformed message on %s", channel)
            return
        if not isinstance(message, dict) or message.get("o") == self.origin:
            return
        try:
            handler(message)
        except Exception:
            # One bad message must not end the subscription every cache depends on.
            log.exception("a message on %s could not be handled", channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()
            self._client = None
