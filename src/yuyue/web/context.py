"""Everything a request needs that outlives it: settings, database, clock, keys, caches."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from yuyue.booking import store as booking_store
from yuyue.booking.availability import (
    ActorCache,
    KnownKeys,
    SharedKnownKeys,
    SharedSoldOut,
    SoldOutCache,
)
from yuyue.booking.demand import DemandCounter
from yuyue.booking.facts import PolicyCache, SessionInfoCache, warm_session_infos
from yuyue.booking.readpath import ReadCache
from yuyue.booking.service import Caches, NeedsTransaction, recent_idempotency_keys
from yuyue.config import Settings
from yuyue.kit.clock import Clock, SystemClock, epoch_seconds
from yuyue.kit.crypto import FieldCipher, MasterSecrets, TokenSigner
from yuyue.kit.db import Database
from yuyue.kit.errors import YuyueError
from yuyue.kit.groupcommit import GroupCommit
from yuyue.kit.live import InProcessLiveBus, LiveBus, make_live_bus
from yuyue.kit.redis import RedisLink
from yuyue.kit.signals import (
    InProcessPlaceSignals,
    PlaceChange,
    PlacesChanged,
    PlaceSignals,
    RedisPlaceSignals,
)
from yuyue.kit.turns import Turns
from yuyue.payments.insurance import InsuranceGateway
from yuyue.payments.registry import (
    Gateways,
    gateways_from_settings,
    insurance_gateway_from_settings,
)
from yuyue.staff import service as staff_service
from yuyue.visits import live as visits_live
from yuyue.visits.events import QueueEvents

log = logging.getLogger(__name__)

# What booking needs about a session (names, fee, rules) and the policy in force change only
# by a scheduler's hand; this process forgets its copy at once when it makes the change,
# and others within this time. Whether a place is free is never cached here: the claim
# re-checks it on the row it locks. At the release peak a booking spread over hundreds of
# sessions would otherwise read each session's facts again every few seconds.
SESSION_FACTS_SECONDS = 30.0


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    # The current master secret and any previous ones (during a rotation); the cipher and
    # the signers below are built from them.
    keys: MasterSecrets
    cipher: FieldCipher
    staff_signer: TokenSigner
    voucher_signer: TokenSigner
    portal_signer: TokenSigner
    sold_out: SoldOutCache
    known_keys: KnownKeys
    actors: ActorCache = field(default_factory=ActorCache)
    # Requests finding out, on the full path, that a session has no place left for them;
    # others asking the same wait for that answer (booking/api.py).
    last_places: dict[Any, asyncio.Future[None]] = field(default_factory=dict)
    # Booking attempts and their outcomes, counted in memory and written now and then
    # (booking/demand.py), for the demand heat map.
    demand: DemandCounter = field(default_factory=DemandCounter)
    # Booking transactions take turns per clinic session (booking/api.py).
    booking_turns: Turns = field(default_factory=Turns)
    # Booking transactions that arrive together, committed together.
    booking_group: GroupCommit | None = None
    session_infos: SessionInfoCache = field(
        default_factory=lambda: SessionInfoCache(SESSION_FACTS_SECONDS)
    )
    policies: PolicyCache = field(default_factory=lambda: PolicyCache(SESSION_FACTS_SECONDS))
    # Finished session and slot lists (booking/readpath.py), dropped when places change.
    reads: ReadCache = field(default_factory=ReadCache)
    # Live events for screens and phones: Redis pub/sub when configured, else in-process.
    live: LiveBus = field(default_factory=InProcessLiveBus)
    # Subscribers to committed queue changes (`visits.events.publish`); `build` adds the
    # one that forwards them to `live`.
    queue_events: QueueEvents = field(default_factory=QueueEvents)
    # "Places changed" after every committed take or return, for the caches in front of
    # the database (`kit/signals.py`); between processes over Redis when configured.
    places: PlaceSignals = field(default_factory=InProcessPlaceSignals)
    # The shared state's connection when YUYUE_REDIS_URL is set.
    redis: RedisLink | None = None
    # Payment providers this process can reach (payments/registry.py); tests put doubles in.
    gateways: Gateways = field(default_factory=Gateways)
    # The medical-insurance platform (pre-authorisation, settlement, release), when
    # configured: beside the gateways, since it is not one (payments/insurance.py).
    insurance: InsuranceGateway | None = None

    @property
    def caches(self) -> Caches:
        return Caches(sessions=self.session_infos, policies=self.policies)

    def structure_changed(self) -> None:
        """After a commit that added, edited or deactivated a department or doctor: names,
        rooms, age and sex rules and who is listed show anew here at once. The session
        facts other processes keep expire within seconds (SESSION_FACTS_SECONDS), and the
        claim re-checks what could overbook."""
        self.session_infos.clear()
        self.reads.changed(None)

    async def places_returned(self, hospital_id: uuid.UUID, *session_ids: uuid.UUID) -> None:
        """After a commit that gave places back (cancel, expiry, extra places, a declined
        offer, a stopped clinic): "sold out" ends here and, before this returns, in every
        process, so the next request on any node can book."""
        await self.sold_out.share_returned(session_ids)
        await self.places.publish(
            *(PlacesChanged(hospital_id, s, PlaceChange.RETURNED) for s in session_ids)
        )

    def places_taken(self, hospital_id: uuid.UUID, *session_ids: uuid.UUID) -> None:
        """After a commit that took places: the caches of availability learn it, here at
        once and elsewhere a moment later (no one waits: a stale count cannot overbook)."""
        self.places.notify(*(PlacesChanged(hospital_id, s, PlaceChange.TAKEN) for s in session_ids))

    def watch_places(self, reads: ReadCache) -> None:
        """Kept session and slot lists drop what a place given back made wrong: here at
        once, and with Redis in every process a moment later; when signals may have been
        lost, everything. A place taken shows within the cache's one-second bound instead:
        at the release peak places are taken many times a second, and dropping the lists
        each time would rebuild them for nearly every read (a booking attempt meanwhile
        learns `sold_out` from the booking path's own memory)."""

        def on_change(change: PlacesChanged) -> None:
            if change.change is PlaceChange.RETURNED:
                reads.changed(change.session_id)

        self.places.subscribe(on_change, on_reset=lambda: reads.changed(None))

    async def start(self) -> None:
        """Serving starts: the known idempotency keys, and the link to the other
        processes (which loads what they learned)."""
        await self.known_keys.start(self._recent_keys)
        await self.sold_out.start()
        if self.redis is not None:
            await self.redis.start()
        await self._warm_booking_path()

    async def _warm_booking_path(self) -> None:
        """The release peak meets a process at its first second: its booking connections
        are opened and the coming sessions' facts read now, not by the first thousand
        requests at once. A failure here only leaves the caches cold."""
        try:
            if self.db.hot_lane is not None:
                await self.db.hot_lane.warm(booking_store.LANE_STATEMENTS)
            async with self.db.read() as session:
                await warm_session_infos(
                    session, cache=self.session_infos, around=self.clock.now().date()
                )
                for digest, actor in await staff_service.channel_actors(session):
                    self.actors.put(digest, actor)
        except Exception:
            log.warning("could not warm the booking path", exc_info=True)

    async def stop(self) -> None:
        await self.reads.close()
        await self.sold_out.close()
        await self.known_keys.close()
        if self.redis is not None:
            await self.redis.close()
        close = getattr(self.insurance, "aclose", None)
        if close is not None:
            await close()

    async def _recent_keys(self) -> list[tuple[str, str]]:
        async with self.db.read() as session:
            return await recent_idempotency_keys(
                session, since=self.clock.now() - timedelta(days=1)
            )

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, db: Database | None = None
    ) -> AppContext:
        keys = settings.master_secrets()
        link = RedisLink(settings.redis_url) if settings.redis_url else None
        sold_out: SoldOutCache
        known_keys: KnownKeys
        places: PlaceSignals
        if link is not None:
            sold_out = SharedSoldOut(settings.sold_out_cache_seconds, link=link)
            known_keys = SharedKnownKeys(link=link)
            places = RedisPlaceSignals(link)
        else:
            sold_out = SoldOutCache(settings.sold_out_cache_seconds)
            # Another process's keys are unknown here: with several, ask the database.
            known_keys = KnownKeys(authoritative=settings.serving_processes == 1)
            places = InProcessPlaceSignals()
        clock = clock or SystemClock()
        ctx = cls(
            settings=settings,
            db=db
            or Database(
                settings.async_database_url, echo=settings.sql_echo, pool_size=settings.db_pool_size
            ),
            clock=clock,
            keys=keys,
            cipher=keys.cipher(),
            staff_signer=keys.signer("staff"),
            voucher_signer=keys.signer("voucher"),
            portal_signer=keys.signer("portal-session"),
            sold_out=sold_out,
            known_keys=known_keys,
            live=make_live_bus(settings.redis_url),
            places=places,
            redis=link,
            reads=ReadCache(settings.availability_cache_seconds),
            gateways=gateways_from_settings(settings),
            insurance=insurance_gateway_from_settings(settings),
            demand=DemandCounter(epoch_seconds(clock)),
        )
        database = ctx.db
        ctx.booking_group = GroupCommit(
            # Looked up at each use, so that whatever wraps the database's methods (a test
            # making it saturated, say) is honoured.
            transaction=lambda: database.driver_transaction(),
            alone=lambda work: database.transact_driver(work),
            refusals=(YuyueError, NeedsTransaction),
            reads=booking_store.LANE_READS,
            takes={booking_store.FACTS_AND_CLAIM: booking_store.places_taken},
            gives_back=booking_store.RETURN_PLACE,
            # PostgreSQL: a few groups in flight (at most one per lane connection), each of
            # a few bookings; one group's statements go one after another, so several small
            # groups keep the database busier than one large one (docs/performance.md).
            # SQLite: one writer, so one group at a time, and larger.
            width=min(database.hot_lane.size, settings.booking_groups_in_flight)
            if database.hot_lane is not None
            else 1,
            most=settings.booking_group_size if database.hot_lane is not None else 16,
        )
        ctx.places.subscribe(ctx.sold_out.on_places_changed)
        ctx.watch_places(ctx.reads)
        # Committed queue changes reach the screens and phones of every process.
        ctx.queue_events.subscribe(visits_live.forward_to(ctx.live))
        return ctx


def settle_garbage_collector() -> None:
    """Once serving starts, what was built at start-up (routes, templates, caches) lives as
    long as the process: it is moved out of the collector's sight, and the youngest
    generation is collected less often. Under the release peak's bookings the collector
    otherwise spent about a seventh of the server's CPU walking those same objects; a
    request's own garbage is freed by reference counting, not by the collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
