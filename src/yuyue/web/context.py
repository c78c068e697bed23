"""Everything a request needs that outlives it: settings, database, clock, keys, caches."""

from __future__ import annotations

from dataclasses import dataclass, field

from yuyue.booking.availability import ActorCache, KnownKeys, SoldOutCache
from yuyue.booking.facts import PolicyCache, SessionInfoCache
from yuyue.booking.readpath import ReadCache
from yuyue.booking.service import Caches
from yuyue.config import Settings
from yuyue.kit.clock import Clock, SystemClock
from yuyue.kit.crypto import FieldCipher, TokenSigner, load_master_secret
from yuyue.kit.db import Database
from yuyue.kit.live import InProcessLiveBus, LiveBus, make_live_bus
from yuyue.visits import live as visits_live
from yuyue.visits.events import QueueEvents


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    cipher: FieldCipher
    staff_signer: TokenSigner
    voucher_signer: TokenSigner
    portal_signer: TokenSigner
    sold_out: SoldOutCache
    known_keys: KnownKeys
    actors: ActorCache = field(default_factory=ActorCache)
    session_infos: SessionInfoCache = field(default_factory=lambda: SessionInfoCache(5.0))
    policies: PolicyCache = field(default_factory=lambda: PolicyCache(5.0))
    # Finished session and slot lists (booking/readpath.py), dropped when a place changes.
    reads: ReadCache = field(default_factory=ReadCache)
    # Live events for screens and phones: Redis pub/sub when configured, else in-process.
    live: LiveBus = field(default_factory=InProcessLiveBus)
    # Subscribers to committed queue changes (`visits.events.publish`); `build` adds the
    # one that forwards them to `live`.
    queue_events: QueueEvents = field(default_factory=QueueEvents)

    @property
    def caches(self) -> Caches:
        return Caches(sessions=self.session_infos, policies=self.policies)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, db: Database | None = None
    ) -> AppContext:
        secret = load_master_secret(settings.master_secret)
        ctx = cls(
            settings=settings,
            db=db
            or Database(
                settings.async_database_url, echo=settings.sql_echo, pool_size=settings.db_pool_size
            ),
            clock=clock or SystemClock(),
            cipher=FieldCipher(secret),
            staff_signer=TokenSigner(secret, "staff"),
            voucher_signer=TokenSigner(secret, "voucher"),
            portal_signer=TokenSigner(secret, "portal-session"),
            sold_out=SoldOutCache(settings.sold_out_cache_seconds),
            known_keys=KnownKeys(
                authoritative=settings.serving_processes == 1 and not settings.redis_url
            ),
            live=make_live_bus(settings.redis_url),
            reads=ReadCache(settings.availability_cache_seconds),
        )
        # Every path that takes or returns a place tells the sold-out memory; the kept
        # availability answers hear it from there.
        ctx.sold_out.on_change(ctx.reads.changed)
        # Committed queue changes reach the screens and phones of every process.
        ctx.queue_events.subscribe(visits_live.forward_to(ctx.live))
        return ctx
