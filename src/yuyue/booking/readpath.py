"""Availability reads at the release peak: session lists and slot lists as finished bytes.

At 08:00 thousands of patients refresh the same lists. Each answer is built once, rendered
once to JSON from plain values (`booking/listing.py`: no ORM objects, the hospital's
rules from memory) and kept as bytes per (hospital, channel, list, normalised query,
language). It is built from the caller's *board* — every session of the hospital from today
to the end of the furthest release window, with its slots and the places left in the
channel's pools, read in two statements and read again in the background once it is half
a second old — or, for a question outside the board, from one statement of its own. It is
kept:

- for at most `ttl` seconds (`YUYUE_AVAILABILITY_CACHE_SECONDS`, at most 1) from the
  moment its data was read. That is the staleness bound everywhere, across processes too:
  a place taken or returned by another process (or another machine) shows within it;
- and never past the next instant at which the clock alone changes it (a release at 08:00,
  the cut-off at 16:00, same-day registration at 07:00): `bookable_now` flips on time;
- and dropped when a place of a session the answer lists is given back: every commit that
  returns one publishes a "places changed" signal (`kit/signals.py`), heard here at once
  and, with Redis, in every other process a moment later. A place *taken* shows within
  the bound instead: at the release peak places are taken many times a second, and
  dropping answers at each booking made nearly every read a query of its own (p99 of the
  mixed peak 5.4 s against 0.2 s without).

An answer built while such a change happened is not kept, and a request that arrives after
a change never waits for a build that started before it, so an answer is never older than
the request's own arrival by more than the bound.

`AvailabilityFastPath` serves kept answers in front of the framework to channel clients
whose API key is in the caller cache (the same check the route's dependency makes), with
the route's status, headers and body. Everything else goes to the routes, which build
through the same cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.types import ASGIApp, Receive, Scope, Send

from yuyue.booking import listing
from yuyue.kit import crypto, i18n
from yuyue.kit.errors import ValidationFailed
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.rules import Actor

if TYPE_CHECKING:
    from yuyue.web.context import AppContext

log = logging.getLogger(__name__)

SESSIONS_PATH = "/api/v1/sessions"
_SLOTS_SUFFIX = "/slots"
MAX_RANGE_DAYS = 31
JSON = "application/json"

# (hospital, channel, list, normalised query, language)
ReadKey = tuple[uuid.UUID, str, str, Any, str]


@dataclass(frozen=True, slots=True)
class Built:
    body: bytes
    # The sessions the answer shows: a place taken or returned in one of them drops it.
    sessions: tuple[uuid.UUID, ...]
    # The clock instant from which the answer is wrong by time alone (None: never).
    valid_until: datetime | None
    # When it was rendered from a board: when and at which change number the board's data
    # was read (its age counts from then).
    read_started: float | None = None
    read_tick: int | None = None


@dataclass(slots=True)
class _Kept:
    body: bytes
    expires: float
    built_at: datetime
    valid_until: datetime | None


@dataclass(slots=True)
class _Flight:
    future: asyncio.Future[bytes]
    tick: int


# (hospital, the channel's pools)
BoardKey = tuple[uuid.UUID, tuple[str, ...]]
BoardLoad = Callable[[], Awaitable[tuple[listing.RangeRead, listing.HospitalRules]]]


@dataclass(slots=True)
class Board:
    """The coming days of one hospital as one channel sees them, read in one go: most
    answers are rendered from it without a query. Sessions whose places changed here since
    it was read are `dirty`: answers showing them are read afresh instead."""

    read: listing.RangeRead
    rules: listing.HospitalRules
    started: float
    tick: int
    dirty: set[uuid.UUID]


class ReadCache:
    """Finished availability answers for at most `ttl` seconds (see the module text)."""

    def __init__(
        self,
        ttl: float = 1.0,
        *,
        limit: int = 20_000,
        rules_ttl: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._now = monotonic
        self._kept: dict[ReadKey, _Kept] = {}
        self._by_session: dict[uuid.UUID, set[ReadKey]] = {}
        self._flights: dict[ReadKey, _Flight] = {}
        self._boards: dict[BoardKey, Board] = {}
        self._board_loads: dict[BoardKey, asyncio.Task[Board | None]] = {}
        # Changes are numbered; a build remembers the number it started at, so a change
        # that happened while it read is seen when it wants to keep its answer.
        self._tick = 0
        self._changed: dict[uuid.UUID, int] = {}
        self._cleared = 0
        # Time zone and policies per hospital. Policy changes made here clear it at once
        # (`changed(None)`); others' within `rules_ttl`, as on the booking path.
        self.rules = listing.RulesCache(rules_ttl)

    def get(self, key: ReadKey, now: datetime) -> bytes | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        if (
            kept.expires <= self._now()
            or now < kept.built_at
            or (kept.valid_until is not None and now >= kept.valid_until)
        ):
            return None
        return kept.body

    async def answer(
        self, key: ReadKey, now: datetime, build: Callable[[], Awaitable[Built]]
    ) -> bytes:
        """The kept answer, or one built now; concurrent requests for the same answer
        share one build unless a place changed after it started."""
        body = self.get(key, now)
        if body is not None:
            return body
        flight = self._flights.get(key)
        if flight is not None and flight.tick == self._tick:
            return await asyncio.shield(flight.future)
        tick, started = self._tick, self._now()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        mine = _Flight(future, tick)
        self._flights[key] = mine
        try:
            built = await build()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # marks it retrieved when nobody else waits
            raise
        finally:
            if self._flights.get(key) is mine:
                del self._flights[key]
        future.set_result(built.body)
        if built.read_started is not None and built.read_tick is not None:
            tick, started = built.read_tick, built.read_started
        self._keep(key, built, tick=tick, started=started, now=now)
        return built.body

    async def board(self, key: BoardKey, load: BoardLoad) -> Board | None:
        """A board younger than `ttl`, or None (then answers are read one by one)."""
        if self.ttl <= 0:
            return None
        board = self._boards.get(key)
        if board is not None and self._now() - board.started < self.ttl:
            return board
        return await asyncio.shield(self.load_board(key, load))

    def refresh_due(self, key: BoardKey) -> bool:
        """Whether the board is past half its life with nobody reading it again: under
        steady traffic it is read again in the background while it still serves, so no
        request waits for it."""
        board = self._boards.get(key)
        return (
            board is not None
            and key not in self._board_loads
            and self._now() - board.started >= self.ttl / 2
        )

    def load_board(self, key: BoardKey, load: BoardLoad) -> asyncio.Task[Board | None]:
        """Reads the board (once, however many ask at the same time)."""
        task = self._board_loads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read_board(key, load))
            self._board_loads[key] = task
            task.add_done_callback(lambda done: self._board_loaded(key, done))
        return task

    async def close(self) -> None:
        """Stops boards being read (the application is shutting down)."""
        loads = list(self._board_loads.values())
        for task in loads:
            task.cancel()
        await asyncio.gather(*loads, return_exceptions=True)

    async def _read_board(self, key: BoardKey, load: BoardLoad) -> Board | None:
        tick, started = self._tick, self._now()
        read, rules = await load()
        if self._cleared > tick:
            return None  # anything may have changed while it read
        dirty = {s for s, at in self._changed.items() if at > tick and s in read.by_id}
        board = Board(read, rules, started, tick, dirty)
        current = self._boards.get(key)
        if current is None or current.started <= started:
            self._boards[key] = board
        return board

    def _board_loaded(self, key: BoardKey, task: asyncio.Task[Board | None]) -> None:
        if self._board_loads.get(key) is task:
            del self._board_loads[key]
        if not task.cancelled() and task.exception() is not None:
            # A request waiting for it has its error; a background refresh only logs it.
            log.warning("reading the availability board failed: %r", task.exception())

    def _keep(
        self, key: ReadKey, built: Built, *, tick: int, started: float, now: datetime
    ) -> None:
        if self.ttl <= 0 or self._now() - started >= self.ttl or self._cleared > tick:
            return
        if built.valid_until is not None and built.valid_until <= now:
            return
        if any(self._changed.get(s, 0) > tick for s in built.sessions):
            return
        if len(self._kept) >= self.limit:
            self._kept.clear()
            self._by_session.clear()
        self._kept[key] = _Kept(built.body, started + self.ttl, now, built.valid_until)
        for session_id in built.sessions:
            self._by_session.setdefault(session_id, set()).add(key)

    def changed(self, session_id: uuid.UUID | None) -> None:
        """A place of `session_id` was taken or returned here (None: anything may have
        changed, e.g. a policy): drop every answer that shows it."""
        self._tick += 1
        if session_id is None or len(self._changed) >= 100_000:
            self._kept.clear()
            self._by_session.clear()
            self._changed.clear()
            self._boards.clear()
            self._cleared = self._tick
            if session_id is None:
                self.rules.clear()
            return
        self._changed[session_id] = self._tick
        for key in self._by_session.pop(session_id, ()):
            self._kept.pop(key, None)
        for board in self._boards.values():
            if session_id in board.read.by_id:
                board.dirty.add(session_id)


# --- keys -----------------------------------------------------------------------------------


def sessions_key(actor: Actor, query_string: bytes, locale: str) -> ReadKey:
    # The raw parameters, sorted: two spellings of one question are two keys (a miss),
    # never one key for two questions.
    query = tuple(sorted(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)))
    return (actor.hospital_id, actor.channel.value, "sessions", query, locale)


def slots_key(actor: Actor, session_id: uuid.UUID) -> ReadKey:
    # Slot lists carry no words, so one answer serves every language.
    return (actor.hospital_id, actor.channel.value, "slots", session_id, "")


# --- the answers ----------------------------------------------------------------------------


def _pick(zh: str, en: str, locale: str) -> str:
    return en if locale == "en" and en else zh


def utc_text(instant: datetime | None) -> str | None:
    """An instant as the API writes it (ISO 8601, UTC, `Z`)."""
    if instant is None:
        return None
    text = instant.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _render(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def session_json(s: listing.ListedSession, locale: str) -> dict[str, Any]:
    doctor = s.doctor
    return {
        "id": str(s.id),
        "date": s.date.isoformat(),
        "period": s.period.value,
        "start": s.start_time.isoformat(),
        "end": s.end_time.isoformat(),
        "department": {
            "id": str(s.department.id),
            "name": _pick(s.department.name, s.department.name_en, locale),
        },
        "doctor": {
            "id": str(doctor.id),
            "name": doctor.name,
            "title": _pick(doctor.title, doctor.title_en, locale),
        }
        if doctor is not None
        else None,
        "level": {
            "code": s.level.code,
            "name": _pick(s.level.name, s.level.name_en, locale),
            "name_en": s.level.name_en,
            "fee": s.level.fee_fen,
        },
        "fee": s.fee_fen,
        "status": s.status.value,
        "is_extra": s.is_extra,
        "capacity": s.capacity,
        "remaining": s.remaining,
        "bookable_now": s.bookable_now,
        "opens_at": utc_text(s.opens_at),
        "booking_opens_at": utc_text(s.window.opens_at),
        "booking_closes_at": utc_text(s.window.closes_at),
        "stop_reason": s.stop_reason,
    }


def slot_json(slot: listing.ListedSlot) -> dict[str, Any]:
    return {
        "id": str(slot.id),
        "start": slot.start_time.isoformat(),
        "end": slot.end_time.isoformat(),
        "remaining": slot.remaining,
        "bookable_now": slot.bookable_now,
        "opens_at": utc_text(slot.opens_at),
    }


def _earliest(*instants: datetime | None) -> datetime | None:
    found = [i for i in instants if i is not None]
    return min(found) if found else None


def _next_midnight(now: datetime, timezone: str) -> datetime:
    local = now.astimezone(ZoneInfo(timezone))
    tomorrow = local.date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=local.tzinfo).astimezone(
        UTC
    )


def board_key(actor: Actor) -> BoardKey:
    return (actor.hospital_id, pools_for_channel(actor.channel))


def _board_load(ctx: AppContext, actor: Actor) -> BoardLoad:
    async def load() -> tuple[listing.RangeRead, listing.HospitalRules]:
        async with listing.read_connection(ctx.db) as conn:
            rules = await listing.hospital_rules(conn, actor.hospital_id, cache=ctx.reads.rules)
            today = ctx.clock.now().astimezone(ZoneInfo(rules.timezone)).date()
            # Every day some department releases, and the next, which patients look at too.
            ahead = max(
                p.release_days_ahead for p in (rules.default, *rules.by_department.values())
            )
            read = await listing.read_range(
                conn,
                hospital_id=actor.hospital_id,
                channel=actor.channel,
                start=today,
                end=today + timedelta(days=ahead + 1),
            )
        return read, rules

    return load


async def _board(ctx: AppContext, actor: Actor) -> Board | None:
    return await ctx.reads.board(board_key(actor), _board_load(ctx, actor))


def keep_board_fresh(ctx: AppContext, actor: Actor) -> None:
    """Starts reading the caller's board again once it is past half its life."""
    key = board_key(actor)
    if ctx.reads.refresh_due(key):
        ctx.reads.load_board(key, _board_load(ctx, actor))


def _range(
    rules: listing.HospitalRules, now: datetime, date_from: date | None, date_to: date | None
) -> tuple[date, date]:
    today = now.astimezone(ZoneInfo(rules.timezone)).date()
    start = date_from or today
    end = date_to or today + timedelta(days=rules.default.release_days_ahead)
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        raise ValidationFailed(
            errors=[
                {
                    "field": "date_to",
                    "message": "must be on or after date_from, "
                    f"at most {MAX_RANGE_DAYS} days later",
                }
            ],
            summary="date_from, date_to",
        )
    return start, end


async def sessions_answer(
    ctx: AppContext,
    *,
    actor: Actor,
    locale: str,
    query_string: bytes,
    department_id: uuid.UUID | None,
    doctor_id: uuid.UUID | None,
    date_from: date | None,
    date_to: date | None,
) -> bytes:
    """The JSON body of `GET /api/v1/sessions` for this caller and query."""
    now = ctx.clock.now()
    keep_board_fresh(ctx, actor)

    def built(
        sessions: list[listing.ListedSession], rules: listing.HospitalRules, board: Board | None
    ) -> Built:
        # Without both dates the question itself moves at midnight ("from today").
        midnight = (
            _next_midnight(now, rules.timezone) if date_from is None or date_to is None else None
        )
        return Built(
            _render([session_json(s, locale) for s in sessions]),
            tuple(s.id for s in sessions),
            _earliest(midnight, *(s.bookability.changes_at for s in sessions)),
            board.started if board else None,
            board.tick if board else None,
        )

    async def build() -> Built:
        board = await _board(ctx, actor)
        if board is not None:
            start, end = _range(board.rules, now, date_from, date_to)
            if board.read.covers(start, end):
                sessions = board.read.sessions(
                    rules=board.rules,
                    channel=actor.channel,
                    now=now,
                    start=start,
                    end=end,
                    department_id=department_id,
                    doctor_id=doctor_id,
                )
                if not any(s.id in board.dirty for s in sessions):
                    return built(sessions, board.rules, board)
        async with listing.read_connection(ctx.db) as conn:
            rules = await listing.hospital_rules(conn, actor.hospital_id, cache=ctx.reads.rules)
            start, end = _range(rules, now, date_from, date_to)
            sessions = await listing.list_sessions(
                conn,
                hospital_id=actor.hospital_id,
                rules=rules,
                channel=actor.channel,
                start=start,
                end=end,
                now=now,
                department_id=department_id,
                doctor_id=doctor_id,
            )
        return built(sessions, rules, None)

    return await ctx.reads.answer(sessions_key(actor, query_string, locale), now, build)


async def slots_answer(ctx: AppContext, *, actor: Actor, session_id: uuid.UUID) -> bytes:
    """The JSON body of `GET /api/v1/sessions/{id}/slots` for this caller."""
    now = ctx.clock.now()
    keep_board_fresh(ctx, actor)

    def built(found: listing.SlotListing, board: Board | None) -> Built:
        return Built(
            _render([slot_json(slot) for slot in found.slots]),
            (session_id,),
            found.bookability.changes_at,
            board.started if board else None,
            board.tick if board else None,
        )

    async def build() -> Built:
        board = await _board(ctx, actor)
        if board is not None and session_id not in board.dirty:
            found = board.read.slot_listing(
                session_id, rules=board.rules, channel=actor.channel, now=now
            )
            if found is not None:
                return built(found, board)
        async with listing.read_connection(ctx.db) as conn:
            rules = await listing.hospital_rules(conn, actor.hospital_id, cache=ctx.reads.rules)
            found = await listing.list_slots(
                conn,
                hospital_id=actor.hospital_id,
                rules=rules,
                channel=actor.channel,
                session_id=session_id,
                now=now,
            )
        return built(found, None)

    return await ctx.reads.answer(slots_key(actor, session_id), now, build)


# --- in front of the router -----------------------------------------------------------------

_HEADERS_TYPE = (b"content-type", JSON.encode())


class AvailabilityFastPath:
    """Serves kept session and slot lists before FastAPI routes, resolves dependencies and
    validates parameters. It answers only what the route would answer identically: a GET
    of one of the two lists, from a channel client whose API key the caller cache knows,
    for which this exact question has a kept answer. Anything else passes through."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._kept(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", str(len(body)).encode()), _HEADERS_TYPE],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _kept(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        session_id: uuid.UUID | None = None
        if path != SESSIONS_PATH:
            if not (path.startswith(SESSIONS_PATH + "/") and path.endswith(_SLOTS_SUFFIX)):
                return None
            text = path[len(SESSIONS_PATH) + 1 : -len(_SLOTS_SUFFIX)]
            # Only the canonical spelling, which the route certainly accepts.
            if len(text) != 36:
                return None
            try:
                session_id = uuid.UUID(text)
            except ValueError:
                return None
            if str(session_id) != text:
                return None
        authorization = language = b""
        for name, value in scope["headers"]:
            # The first of each, as the route's request headers read them.
            if name == b"authorization" and not authorization:
                authorization = value
            elif name == b"accept-language" and not language:
                language = value
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(crypto.API_KEY_PREFIX):
            return None
        actor = self.ctx.actors.get(crypto.api_key_digest(token))
        if not isinstance(actor, Actor):
            return None
        if session_id is not None:
            key = slots_key(actor, session_id)
        else:
            locale = i18n.negotiate(language.decode("latin-1") or None)
            key = sessions_key(actor, scope.get("query_string", b""), locale)
        body = self.ctx.reads.get(key, self.ctx.clock.now())
        if body is not None:
            keep_board_fresh(self.ctx, actor)
        return body
