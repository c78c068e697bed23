"""In-process memory that lets the release peak be answered before the database.

At 08:00 most booking attempts are for places already gone. Once a claim has failed, the
"sold out" answer (with its alternatives) is kept for a short time and served from memory;
a place returned by this process (cancel, expiry, extra places) clears it at once, and
other processes see the change within `ttl` seconds. The cache can only say "sold out"
too long, never "available": the conditional UPDATE stays the only way to take a place,
so a stale entry can delay a booking by a moment but can never overbook.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SoldOutKey = tuple[uuid.UUID, tuple[str, ...], uuid.UUID | None]


@dataclass(slots=True)
class SoldOutEntry:
    alternatives: list[dict[str, Any]]
    expires: float
    # The finished answer per language, so a repeated refusal is a dictionary look-up.
    rendered: dict[str, bytes] = field(default_factory=dict)
    # While one request re-asks the database about a stale entry, the others keep being
    # answered from it: no stampede at each expiry under a flood of requests.
    revalidating_until: float = 0.0


class SoldOutCache:
    def __init__(self, ttl: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._now = monotonic
        self._entries: dict[SoldOutKey, SoldOutEntry] = {}
        self._in_flight: dict[SoldOutKey, asyncio.Future[list[dict[str, Any]]]] = {}
        self._listeners: list[Callable[[uuid.UUID | None], None]] = []

    def on_change(self, listener: Callable[[uuid.UUID | None], None]) -> None:
        """Calls `listener(session_id)` whenever this process took or returned a place of
        that session (`forget`, `places_returned`), and `listener(None)` when anything may
        have changed (`clear`): the moments other in-process memories must forget too."""
        self._listeners.append(listener)

    def _tell(self, session_id: uuid.UUID | None) -> None:
        for listener in self._listeners:
            listener(session_id)

    async def remember(
        self, key: SoldOutKey, compute: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> list[dict[str, Any]]:
        """The alternatives for a sold-out key, computed once however many refusals arrive
        together (a few hundred at the release second)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            alternatives = await compute()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # marks it retrieved when no one else waits
            raise
        finally:
            self._in_flight.pop(key, None)
        future.set_result(alternatives)
        self.put(key, alternatives)
        return alternatives

    def lookup(self, key: SoldOutKey) -> SoldOutEntry | None:
        """The answer to serve from memory, or None when this request must ask the database:
        there is no entry, or it is stale and nobody is asking yet (then this request is
        the one, and must end with `remember`, `release` or `forget`)."""
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._now()
        if entry.expires > now or entry.revalidating_until > now:
            return entry
        entry.revalidating_until = now + max(self.ttl, 5.0)
        return None

    def peek(self, key: SoldOutKey) -> SoldOutEntry | None:
        """Like `lookup` but never volunteers this request to revalidate: None whenever
        `lookup` might send the request to the database."""
        entry = self._entries.get(key)
        if entry is None or self.ttl <= 0:
            return None
        now = self._now()
        return entry if entry.expires > now or entry.revalidating_until > now else None

    def get(self, key: SoldOutKey) -> list[dict[str, Any]] | None:
        """Fresh alternatives only (no side effects)."""
        entry = self._entries.get(key)
        if entry is None or entry.expires <= self._now():
            return None
        return entry.alternatives

    def release(self, key: SoldOutKey) -> None:
        """The database answered something else (a limit, say): availability is still
        unknown, so the next request asks again."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.revalidating_until = 0.0

    def forget(self, key: SoldOutKey) -> None:
        """A place was found: the entry was wrong, drop it."""
        self._entries.pop(key, None)
        self._tell(key[0])

    def put(self, key: SoldOutKey, alternatives: list[dict[str, Any]]) -> None:
        if self.ttl > 0:
            self._entries[key] = SoldOutEntry(alternatives, self._now() + self.ttl)

    def places_returned(self, session_id: uuid.UUID) -> None:
        for key in [k for k in self._entries if k[0] == session_id]:
            self._entries.pop(key, None)
        self._tell(session_id)

    def clear(self) -> None:
        self._entries.clear()
        self._tell(None)


class BoundedSet:
    """A set that forgets its oldest members past `limit` (an LRU of ids)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[Any, None] = OrderedDict()
        self.evicted = False

    def add(self, item: Any) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)
            self.evicted = True

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


class KnownKeys:
    """Idempotency keys that may have a remembered answer.

    A request whose key is here must be looked up in the database before any shortcut.
    The set is filled with the last day's keys at start-up and with every key before its
    booking is attempted, so in a single serving process a key *not* here has no stored
    answer. With several processes and no shared store that is no longer true, and
    `authoritative` is False: every keyed request then asks the database.
    """

    def __init__(self, *, authoritative: bool, limit: int = 2_000_000) -> None:
        self.authoritative = authoritative
        self._keys = BoundedSet(limit)
        self._complete = True

    def add(self, scope: str, key: str) -> None:
        self._keys.add((scope, key))
        if self._keys.evicted:
            self._complete = False

    def may_have_answer(self, scope: str, key: str) -> bool:
        if not self.authoritative or not self._complete:
            return True
        return (scope, key) in self._keys


@dataclass(frozen=True, slots=True)
class CachedActor:
    value: Any
    expires: float


class ActorCache:
    """API key digest → actor, so the hot path does not read the key table each request.
    A revoked key stops working in this process at once and elsewhere within `ttl`."""

    def __init__(
        self, ttl: float = 30.0, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._now = monotonic
        self._entries: dict[str, CachedActor] = {}

    def get(self, digest: str) -> Any | None:
        entry = self._entries.get(digest)
        if entry is None or entry.expires <= self._now():
            return None
        return entry.value

    def put(self, digest: str, actor: Any) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = CachedActor(actor, self._now() + self.ttl)

    def forget_all(self) -> None:
        self._entries.clear()
