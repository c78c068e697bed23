"""Memory that lets the release peak be answered before the database.

At 08:00 most booking attempts are for places already gone. Once a claim has failed, the
"sold out" answer (with its alternatives) is kept for a short time and served from memory;
a place given back (cancel, expiry, extra places) clears it at once. The cache can only
say "sold out" too long, never "available": the conditional UPDATE stays the only way to
take a place, so a stale entry can delay a booking by a moment but can never overbook.

One process keeps it in a dictionary (:class:`SoldOutCache`). Several processes with Redis
(:class:`SharedSoldOut`) keep the same dictionary, so a refusal is still a look-up, and
share what they learn: a sell-out found by one is written to Redis (a hash per session,
expiring with the TTL) and announced on pub/sub, so every process answers it from memory
at once; places given back anywhere delete the hash and reach every process through the
"places changed" signal (`kit/signals.py`) before the answer to the cancelling request.
A process that starts or reconnects reads the hashes again. Without Redis, or while it is
down, each process learns and forgets on its own, exactly as one process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from yuyue.kit.flights import Flights
from yuyue.kit.redis import RedisLink, RedisUnavailable
from yuyue.kit.signals import PlaceChange, PlacesChanged

log = logging.getLogger(__name__)

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
        self._computing: Flights[SoldOutKey, list[dict[str, Any]]] = Flights()

    async def remember(
        self, key: SoldOutKey, compute: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> list[dict[str, Any]]:
        """The alternatives for a sold-out key, computed once however many refusals arrive
        together (a few hundred at the release second)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        computed = False

        async def first() -> list[dict[str, Any]]:
            nonlocal computed
            computed = True
            return await compute()

        alternatives = await self._computing.run(key, first)
        if computed:
            self.put(key, alternatives)
            await self._learned(key, alternatives)
        return alternatives

    async def _learned(self, key: SoldOutKey, alternatives: list[dict[str, Any]]) -> None:
        """A sell-out this process found out: nobody else to tell here."""

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

    def put(self, key: SoldOutKey, alternatives: list[dict[str, Any]]) -> None:
        if self.ttl > 0:
            self._entries[key] = SoldOutEntry(alternatives, self._now() + self.ttl)

    def places_returned(self, session_id: uuid.UUID) -> None:
        for key in [k for k in self._entries if k[0] == session_id]:
            self._entries.pop(key, None)

    def on_places_changed(self, change: PlacesChanged) -> None:
        """The "places changed" listener: places given back anywhere end "sold out"."""
        if change.change is PlaceChange.RETURNED:
            self.places_returned(change.session_id)

    async def share_returned(self, session_ids: Iterable[uuid.UUID]) -> None:
        """Before places given back are announced: forget them where others would read
        them again. One process has no such place."""

    def clear(self) -> None:
        self._entries.clear()

    async def start(self) -> None:
        """Nothing to load: the memory of one process starts empty."""

    async def close(self) -> None:
        """Nothing to let go of."""


class _Background:
    """Fire-and-forget Redis work whose task must be kept alive until it ends."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()  # no loop (a script): the other processes' TTL covers it
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """At shutdown: what was not sent is covered by the other processes' TTLs."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _field(key: SoldOutKey) -> str:
    _, pools, slot = key
    return f"{'+'.join(pools)}|{slot or ''}"


def _key_of(session_id: uuid.UUID, name: str) -> SoldOutKey:
    pools, _, slot = name.partition("|")
    return session_id, tuple(pools.split("+")), uuid.UUID(slot) if slot else None


class SharedSoldOut(SoldOutCache):
    """The sold-out memory of several processes, shared through Redis.

    In Redis: ``{prefix}sold-out:{session}`` is a hash of ``{pools}|{slot}`` → the
    alternatives and the wall-clock instant they stop being fresh; the hash expires `ttl`
    after its last write. On pub/sub (channel ``sold-out``): a learned entry, a forgotten
    one, or "clear all". Places given back arrive as "places changed" signals.
    """

    CHANNEL = "sold-out"

    def __init__(
        self,
        ttl: float,
        *,
        link: RedisLink,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl, monotonic=monotonic)
        self.link = link
        self._wall = wall
        self._background = _Background()
        link.on_message(self.CHANNEL, self._received)
        link.on_reconnected(self._reload)

    def _hash(self, session_id: uuid.UUID) -> str:
        return self.link.key(self.CHANNEL, str(session_id))

    def _message(self, **values: Any) -> str:
        return json.dumps({"o": self.link.origin, **values}, separators=(",", ":"), default=str)

    async def _learned(self, key: SoldOutKey, alternatives: list[dict[str, Any]]) -> None:
        # Awaited before the refusal is answered: a client that tries another node next
        # is answered there from memory too.
        if self.ttl <= 0:
            return
        ttl_ms = int(self.ttl * 1000)
        value = json.dumps(
            {"a": alternatives, "x": int(self._wall() * 1000) + ttl_ms},
            separators=(",", ":"),
            default=str,
        )
        announcement = self._message(
            kind="learned", s=str(key[0]), f=_field(key), a=alternatives, ms=ttl_ms
        )

        async def share(redis: Any) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._hash(key[0]), _field(key), value)
                pipe.pexpire(self._hash(key[0]), ttl_ms)
                pipe.publish(self.link.key(self.CHANNEL), announcement)
                await pipe.execute()

        # Learned here only; the others learn it from their own claims.
        with contextlib.suppress(RedisUnavailable):
            await self.link.call(share)

    def forget(self, key: SoldOutKey) -> None:
        known = key in self._entries
        super().forget(key)
        if known:
            # The entry was wrong (a place was found), so it is wrong everywhere.
            self._background.spawn(self._forget_shared(key))

    async def _forget_shared(self, key: SoldOutKey) -> None:
        announcement = self._message(kind="forget", s=str(key[0]), f=_field(key))

        async def unshare(redis: Any) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hdel(self._hash(key[0]), _field(key))
                pipe.publish(self.link.key(self.CHANNEL), announcement)
                await pipe.execute()

        with contextlib.suppress(RedisUnavailable):
            await self.link.call(unshare)

    async def share_returned(self, session_ids: Iterable[uuid.UUID]) -> None:
        hashes = [self._hash(session_id) for session_id in session_ids]
        if not hashes:
            return
        # The signal still reaches whoever can hear it; the rest age out.
        with contextlib.suppress(RedisUnavailable):
            await self.link.call(lambda redis: redis.delete(*hashes))

    def clear(self) -> None:
        super().clear()
        self._background.spawn(self._clear_shared())

    async def _clear_shared(self) -> None:
        async def clear(redis: Any) -> None:
            names = [name async for name in redis.scan_iter(self._hash_pattern(), count=500)]
            async with redis.pipeline(transaction=False) as pipe:
                if names:
                    pipe.unlink(*names)
                pipe.publish(self.link.key(self.CHANNEL), self._message(kind="clear"))
                await pipe.execute()

        with contextlib.suppress(RedisUnavailable):
            await self.link.call(clear)

    def _hash_pattern(self) -> str:
        return self.link.key(self.CHANNEL, "*")

    def _received(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "clear":
            super().clear()
            return
        try:
            key = _key_of(uuid.UUID(str(message["s"])), str(message["f"]))
        except (KeyError, ValueError):
            log.warning("ignored a malformed sold-out message")
            return
        if kind == "forget":
            super().forget(key)
        elif kind == "learned" and self.ttl > 0:
            ttl = min(self.ttl, max(0.0, float(message.get("ms", 0)) / 1000))
            alternatives = message.get("a")
            if ttl > 0 and isinstance(alternatives, list):
                self._entries[key] = SoldOutEntry(alternatives, self._now() + ttl)

    async def start(self) -> None:
        """The link's first subscription loads what the other processes know
        (:meth:`_reload`)."""

    async def _reload(self) -> None:
        """After (re)subscribing: announcements may have been missed, so the memory
        becomes what Redis holds now."""
        if self.ttl <= 0:
            return

        async def read(redis: Any) -> dict[str, dict[str, str]]:
            names = [name async for name in redis.scan_iter(self._hash_pattern(), count=500)]
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(name)
                values = await pipe.execute()
            return dict(zip(names, values, strict=True))

        shared = await self.link.call(read)
        super().clear()
        wall_ms, now = self._wall() * 1000, self._now()
        for name, fields in shared.items():
            try:
                session_id = uuid.UUID(name.rsplit(":", 1)[1])
            except ValueError:
                continue
            for field_name, raw in fields.items():
                try:
                    value = json.loads(raw)
                    key = _key_of(session_id, field_name)
                    left = min(self.ttl, (float(value["x"]) - wall_ms) / 1000)
                    alternatives = value["a"]
                except (KeyError, TypeError, ValueError):
                    continue
                if left > 0 and isinstance(alternatives, list):
                    self._entries[key] = SoldOutEntry(alternatives, now + left)

    async def close(self) -> None:
        await self._background.close()


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


RecentKeys = Callable[[], Awaitable[Iterable[tuple[str, str]]]]


class _Coalesced:
    """Runs `run` once for all the names asked during one turn of the event loop: at the
    release second hundreds of requests share one round trip to Redis."""

    def __init__(
        self, run: Callable[[list[str]], Awaitable[dict[str, bool]]], background: _Background
    ) -> None:
        self._run = run
        self._background = background
        self._batch: dict[str, list[asyncio.Future[bool]]] | None = None

    async def __call__(self, name: str) -> bool:
        if self._batch is None:
            self._batch = {}
            self._background.spawn(self._flush())
        waiting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._batch.setdefault(name, []).append(waiting)
        return await waiting

    async def _flush(self) -> None:
        batch, self._batch = self._batch or {}, None
        waiters = [waiting for group in batch.values() for waiting in group]
        try:
            answers = await self._run(list(batch))
        except asyncio.CancelledError:
            for waiting in waiters:
                waiting.cancel()
            raise
        except Exception as error:
            # Each request fails with it (and is logged there), none waits forever.
            for waiting in waiters:
                if not waiting.done():
                    waiting.set_exception(error)
            return
        for name, waiters in batch.items():
            for waiting in waiters:
                if not waiting.done():
                    waiting.set_result(answers[name])


class KnownKeys:
    """Idempotency keys that may have a remembered answer.

    A request whose key may have one must be looked up in the database before any shortcut
    (the sold-out answer from memory above all: a retry of a booking that succeeded must
    get its booking back, not "sold out"). The set is filled with the last day's keys at
    start-up and with every key before its booking is attempted, so in a single serving
    process a key *not* here has no stored answer. With several processes and no shared
    store that is no longer true, and `authoritative` is False: every keyed request then
    asks the database. With Redis, :class:`SharedKnownKeys` is the set of all processes.
    """

    def __init__(self, *, authoritative: bool, limit: int = 2_000_000) -> None:
        self.authoritative = authoritative
        self._keys = BoundedSet(limit)
        self._complete = True

    async def start(self, recent: RecentKeys) -> None:
        """Loads the keys of the last day (whose answers a retry may still ask for)."""
        if self.authoritative:
            for scope, key in await recent():
                self._add(scope, key)

    async def add(self, scope: str, key: str) -> None:
        """Before a keyed booking is attempted (its answer may be stored from then on)."""
        self._add(scope, key)

    def _add(self, scope: str, key: str) -> None:
        self._keys.add((scope, key))
        if self._keys.evicted:
            self._complete = False

    async def may_have_answer(self, scope: str, key: str) -> bool:
        if not self.authoritative or not self._complete:
            return True
        return (scope, key) in self._keys

    async def close(self) -> None:
        """Nothing to let go of."""


class SharedKnownKeys(KnownKeys):
    """The idempotency keys of every process, in Redis.

    Each key is ``{prefix}idem:{digest of scope and key}`` with a day's TTL, written before
    its booking is attempted. A request asks Redis (one MGET for all the requests of the
    same turn of the loop); a digest collision can only answer "may have", the safe side.
    ``{prefix}idem:complete`` says the set holds every key of the last day: when it is
    missing (a new or emptied Redis) every keyed request asks the database until one
    process has copied the last day's keys from the database into Redis. While Redis is
    unreachable every keyed request asks the database; keys added meanwhile are written
    once it is back.
    """

    TTL_SECONDS = 24 * 3600

    def __init__(self, *, link: RedisLink, settle_seconds: float = 30.0) -> None:
        super().__init__(authoritative=False)
        self.link = link
        # A booking that took its key before Redis lost its data may commit its answer
        # after the first copy: a second copy this much later catches it.
        self.settle_seconds = settle_seconds
        self._complete_key = link.key("idem", "complete")
        self._recent: RecentKeys | None = None
        self._unshared: OrderedDict[str, None] = OrderedDict()
        self._background = _Background()
        self._look_up = _Coalesced(self._look_up_all, self._background)
        self._write = _Coalesced(self._write_all, self._background)
        self._filling = False

    def _name(self, scope: str, key: str) -> str:
        digest = hashlib.blake2b(f"{scope}\n{key}".encode(), digest_size=16).hexdigest()
        return self.link.key("idem", digest)

    async def start(self, recent: RecentKeys) -> None:
        self._recent = recent
        try:
            complete = await self.link.call(lambda redis: redis.exists(self._complete_key))
        except RedisUnavailable:
            return
        if not complete:
            self._background.spawn(self._fill())

    async def add(self, scope: str, key: str) -> None:
        await self._write(self._name(scope, key))

    async def _write_all(self, names: list[str]) -> dict[str, bool]:
        """Writes the keys of this turn of the loop in one pipeline."""
        try:
            await self._set_all(names)
        except RedisUnavailable:
            # Written when Redis is back. Until then every process asks the database
            # (its own link is down too); see docs/operations.md for a node cut off alone.
            self._unshared.update(dict.fromkeys(names))
            while len(self._unshared) > 100_000:
                self._unshared.popitem(last=False)
            return dict.fromkeys(names, False)
        return dict.fromkeys(names, True)

    async def may_have_answer(self, scope: str, key: str) -> bool:
        return await self._look_up(self._name(scope, key))

    async def _look_up_all(self, names: list[str]) -> dict[str, bool]:
        """Answers every `may_have_answer` of this turn of the loop with one MGET."""
        try:
            values = await self.link.call(lambda redis: redis.mget(self._complete_key, *names))
        except RedisUnavailable:
            return dict.fromkeys(names, True)
        complete, found = values[0] is not None, values[1:]
        if not complete:
            self._background.spawn(self._fill())
        if self._unshared:
            self._background.spawn(self._write_unshared())
        return {n: not complete or v is not None for n, v in zip(names, found, strict=True)}

    async def _write_unshared(self) -> None:
        names, self._unshared = list(self._unshared), OrderedDict()
        try:
            await self._set_all(names)
        except RedisUnavailable:
            self._unshared.update(dict.fromkeys(names))

    async def _set_all(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]

            async def write(redis: Any, chunk: list[str] = chunk) -> None:
                async with redis.pipeline(transaction=False) as pipe:
                    for name in chunk:
                        pipe.set(name, 1, ex=self.TTL_SECONDS)
                    await pipe.execute()

            await self.link.call(write)

    async def _fill(self) -> None:
        """Copies the last day's keys from the database into Redis, then marks the set
        complete. One process does it (a lock in Redis); the others wait for the mark."""
        if self._filling or self._recent is None:
            return
        self._filling = True
        lock = self.link.key("idem", "filling")
        try:
            hold = int(self.settle_seconds * 2 + 120)
            if not await self.link.call(
                lambda redis: redis.set(lock, self.link.origin, nx=True, ex=hold)
            ):
                return
            try:
                for round_ in range(2 if self.settle_seconds > 0 else 1):
                    if round_:
                        await asyncio.sleep(self.settle_seconds)
                    keys = await self._recent()
                    await self._set_all([self._name(scope, key) for scope, key in keys])
                await self.link.call(lambda redis: redis.set(self._complete_key, 1))
                log.info("idempotency keys of the last day copied into Redis")
            finally:
                await self.link.call(lambda redis: redis.delete(lock))
        except RedisUnavailable:
            pass  # tried again by the next request that finds the mark missing
        except Exception:
            log.exception("could not copy the idempotency keys into Redis")
        finally:
            self._filling = False

    async def close(self) -> None:
        await self._background.close()


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
