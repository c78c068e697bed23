"""The "places changed" signals: a session's places were taken or given back, committed.

Caches in front of the database (the sold-out memory, an availability answer cache)
subscribe here to drop what a change made wrong, in this process at once and in every
other serving process a moment later. A signal is a nudge to read again, never data to
trust: a lost signal costs freshness for at most the listener's own TTL, not correctness.

Who publishes: the entry point that committed the change, after the commit (a listener
that re-read before the commit would cache the old state again). ``publish`` waits until
the other processes have been told — use it for places given back, so a patient who was
refused a moment ago can book on any node at once; ``notify`` sends in the background,
coalescing a burst — use it for places taken, which only make caches more optimistic for
a moment and never let anyone overbook (the database claim decides).

Subscribing::

    from yuyue.kit.signals import PlaceChange, PlacesChanged

    def on_change(change: PlacesChanged) -> None:
        cache.drop(change.hospital_id, change.session_id)

    unsubscribe = ctx.places.subscribe(on_change, on_reset=cache.clear)

A listener is a plain function, called on the event loop of the process that serves the
requests (keep it short: no I/O). ``on_reset`` is called when signals may have been lost
(Redis reconnected after an outage): drop everything.

Two implementations: :class:`InProcessPlaceSignals` (the default, one process) and
:class:`RedisPlaceSignals` (``YUYUE_REDIS_URL`` set: Redis pub/sub between processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from yuyue.kit.redis import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

CHANNEL = "places"


class PlaceChange(StrEnum):
    TAKEN = "taken"  # a booking, a walk-in, a waitlist offer
    RETURNED = "returned"  # a cancellation, an expired hold, extra places, a stopped clinic


@dataclass(frozen=True, slots=True)
class PlacesChanged:
    hospital_id: uuid.UUID
    session_id: uuid.UUID
    change: PlaceChange


Listener = Callable[[PlacesChanged], None]
Reset = Callable[[], None]


class PlaceSignals(Protocol):
    def subscribe(self, listener: Listener, *, on_reset: Reset | None = None) -> Callable[[], None]:
        """Calls `listener` for every change from now on; returns the way to stop."""
        ...

    def notify(self, *changes: PlacesChanged) -> None:
        """This process's listeners now, the other processes' soon."""
        ...

    async def publish(self, *changes: PlacesChanged) -> None:
        """This process's listeners now; returns once the other processes were told."""
        ...


class InProcessPlaceSignals:
    def __init__(self) -> None:
        self._listeners: dict[int, tuple[Listener, Reset | None]] = {}
        self._next = 0

    def subscribe(self, listener: Listener, *, on_reset: Reset | None = None) -> Callable[[], None]:
        token = self._next
        self._next += 1
        self._listeners[token] = (listener, on_reset)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe

    def notify(self, *changes: PlacesChanged) -> None:
        self.deliver(changes)

    async def publish(self, *changes: PlacesChanged) -> None:
        self.deliver(changes)

    def deliver(self, changes: Iterable[PlacesChanged]) -> None:
        listeners = [listener for listener, _ in self._listeners.values()]
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:
                    # A broken cache must not fail the request that already committed.
                    log.exception("a places-changed listener failed")

    def reset(self) -> None:
        for _, on_reset in list(self._listeners.values()):
            if on_reset is not None:
                try:
                    on_reset()
                except Exception:
                    log.exception("a places-changed reset failed")


def _encode(changes: Iterable[PlacesChanged]) -> list[list[str]]:
    return [[str(c.hospital_id), str(c.session_id), c.change.value] for c in changes]


def _decode(message: dict[str, Any]) -> list[PlacesChanged]:
    changes: list[PlacesChanged] = []
    for item in message.get("c", []):
        try:
            hospital, session, change = item
            changes.append(
                PlacesChanged(uuid.UUID(hospital), uuid.UUID(session), PlaceChange(change))
            )
        except (TypeError, ValueError):
            log.warning("ignored a malformed places-changed signal: %r", item)
    return changes


class RedisPlaceSignals(InProcessPlaceSignals):
    """Local listeners at once; other processes through one Redis pub/sub channel."""

    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link
        self._pending: dict[tuple[uuid.UUID, PlaceChange], PlacesChanged] = {}
        self._sender: asyncio.Task[None] | None = None
        link.on_message(CHANNEL, self._received)
        link.on_reconnected(self._reconnected)

    def notify(self, *changes: PlacesChanged) -> None:
        self.deliver(changes)
        for change in changes:
            self._pending[change.session_id, change.change] = change
        if self._sender is None or self._sender.done():
            # Sent on the next turn of the loop: the bookings committed meanwhile go in
            # the same message (at the release second, mostly the same few sessions).
            self._sender = asyncio.get_running_loop().create_task(self._send_pending())

    async def publish(self, *changes: PlacesChanged) -> None:
        self.deliver(changes)
        pending = [*self._pending.values(), *changes]
        self._pending.clear()
        await self._send(pending)

    async def _send_pending(self) -> None:
        pending = list(self._pending.values())
        self._pending.clear()
        await self._send(pending)

    async def _send(self, changes: list[PlacesChanged]) -> None:
        if not changes:
            return
        # The link logged it; other processes' caches age out on their own.
        with contextlib.suppress(RedisUnavailable):
            await self.link.publish(CHANNEL, {"c": _encode(changes)})

    def _received(self, message: dict[str, Any]) -> None:
        self.deliver(_decode(message))

    async def _reconnected(self) -> None:
        # Signals published while this process was not subscribed are lost. (At start-up
        # the caches are empty, and a reset costs nothing.)
        self.reset()
