"""Background jobs on huey: outbox delivery, the sweeps, refunds and the daily T+1
reconciliation of each payment provider's statement.

Storage is a SQLite file (`YUYUE_JOB_STORAGE`) by default and Redis when `YUYUE_REDIS_URL`
is set (workers on several machines). Both jobs run every minute as periodic tasks; after a
request commits a change that wrote outbox rows, `request_delivery(ctx)` rings a doorbell
and a "deliver now" task is queued, so patients do not wait for the minute.

Our services are async and huey's workers are threads: each worker thread gets its own
event loop and its own `AppContext` (its own database engines; on SQLite writers in other
threads wait on the busy timeout). Every job is safe to run in several workers at once:
the database claims decide who does what, huey only decides when.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.attendance import service as attendance_service
from yuyue.booking import service as booking_service
from yuyue.booking.waitlist import service as waitlist_service
from yuyue.config import Settings
from yuyue.kit import observability
from yuyue.kit.db import Database
from yuyue.kit.live import InProcessLiveBus
from yuyue.kit.signals import InProcessPlaceSignals, PlacesChanged, RedisPlaceSignals
from yuyue.notifications.delivery import (
    DeliveryReport,
    Senders,
    deliver_due,
    senders_from_settings,
)
from yuyue.payments import insurance_service, reconciliation
from yuyue.payments import service as payments_service
from yuyue.payments.gateway import Provider
from yuyue.reports import refresh as reports_refresh
from yuyue.reports import service as reports_service
from yuyue.scheduling import release
from yuyue.scheduling.models import Hospital
from yuyue.staff.rules import Actor, system_actor
from yuyue.web.context import AppContext

log = logging.getLogger(__name__)
T = TypeVar("T")
# The providers whose statements are reconciled (the window and insurance have their own).
RECONCILED_PROVIDERS = (Provider.WECHATPAY, Provider.ALIPAY)


async def _each_hospital(
    ctx: AppContext, job: str, sweep: Callable[[AsyncSession, Actor], Awaitable[T]]
) -> list[T]:
    """Runs one sweep per hospital, each in its own transaction, as the system actor `job`."""
    return [result for _, result in await _per_hospital(ctx, job, sweep)]


async def _per_hospital(
    ctx: AppContext, job: str, sweep: Callable[[AsyncSession, Actor], Awaitable[T]]
) -> list[tuple[uuid.UUID, T]]:
    async with ctx.db.read() as session:
        hospitals = list((await session.scalars(select(Hospital.id))).all())
    results: list[tuple[uuid.UUID, T]] = []
    for hospital_id in hospitals:
        actor = system_actor(hospital_id, job)

        async def work(session: AsyncSession, actor: Actor = actor) -> T:
            return await sweep(session, actor)

        results.append((hospital_id, await ctx.db.transact(work)))
    return results


async def _places_returned(
    ctx: AppContext, per_hospital: list[tuple[uuid.UUID, list[uuid.UUID]]]
) -> list[uuid.UUID]:
    for hospital_id, sessions in per_hospital:
        if sessions:
            await ctx.places_returned(hospital_id, *sessions)
    return [session_id for _, sessions in per_hospital for session_id in sessions]


async def expire_holds_once(ctx: AppContext) -> list[uuid.UUID]:
    """Expires unpaid holds in every hospital; returns the sessions that got places back."""
    return await _places_returned(
        ctx,
        await _per_hospital(
            ctx,
            "hold-expiry",
            lambda session, actor: booking_service.expire_holds(
                session, actor=actor, now=ctx.clock.now()
            ),
        ),
    )


async def close_waitlists_once(ctx: AppContext) -> int:
    """Closes the waitlists whose closing time has passed, in every hospital."""
    closed = await _each_hospital(
        ctx,
        "waitlist-close",
        lambda session, actor: waitlist_service.close_waitlists(
            session, actor=actor, now=ctx.clock.now()
        ),
    )
    return sum(closed)


async def release_reserved_once(ctx: AppContext) -> list[uuid.UUID]:
    """Hands the day's unused reserved places to on-site registration where it is time."""
    return await _places_returned(
        ctx,
        await _per_hospital(
            ctx,
            "reserved-release",
            lambda session, actor: release.release_reserved_places(
                session, actor=actor, now=ctx.clock.now()
            ),
        ),
    )


async def mark_no_shows_once(ctx: AppContext) -> attendance_service.SweepResult:
    """Marks bookings never checked in as no-shows, and bans where the policy says so, in
    every hospital (one transaction per hospital)."""
    results = await _each_hospital(
        ctx,
        "no-show-sweep",
        lambda session, actor: attendance_service.mark_no_shows(
            session, actor=actor, now=ctx.clock.now()
        ),
    )
    return attendance_service.SweepResult(
        [m for r in results for m in r.marked], [b for r in results for b in r.bans]
    )


def payment_notify_urls(ctx: AppContext) -> dict[Provider, str]:
    """Where each provider sends its notifications for us (refunds included)."""
    base = ctx.settings.public_base_url.rstrip("/")
    return {p: f"{base}/api/v1/payments/{p.value}/notify" for p in Provider}


async def send_refunds_once(ctx: AppContext) -> payments_service.RefundPass:
    """Sends every due refund to its provider (outside any transaction) and records the
    outcome; first the safety net refunds any paid order left on a cancelled or expired
    appointment."""
    await _each_hospital(
        ctx,
        "refund-sweep",
        lambda session, actor: payments_service.refund_unclaimed(
            session, hospital_id=actor.hospital_id, now=ctx.clock.now()
        ),
    )
    return await payments_service.send_refunds(
        db=ctx.db,
        gateways=ctx.gateways,
        clock=ctx.clock,
        notify_url_for=payment_notify_urls(ctx),
    )


async def close_expired_orders_once(ctx: AppContext) -> int:
    """Closes unpaid orders past their hold, then tells the providers (after commit)."""
    await _each_hospital(
        ctx,
        "order-close",
        lambda session, actor: payments_service.close_expired(
            session, hospital_id=actor.hospital_id, now=ctx.clock.now()
        ),
    )
    return await payments_service.close_orders(db=ctx.db, gateways=ctx.gateways, clock=ctx.clock)


async def insurance_once(ctx: AppContext) -> insurance_service.InsurancePass | None:
    """Settles, releases and refunds at the medical-insurance platform what is due (after
    the commits that decided it), when the platform is configured."""
    if ctx.insurance is None:
        return None
    return await insurance_service.run_insurance_pass(
        db=ctx.db, insurance=ctx.insurance, cipher=ctx.cipher, clock=ctx.clock
    )


async def _settings_hospital(ctx: AppContext) -> uuid.UUID | None:
    """The hospital whose merchant accounts this process's gateways are (its settings)."""
    async with ctx.db.read() as session:
        return await session.scalar(
            select(Hospital.id).where(Hospital.code == ctx.settings.hospital_code)
        )


async def reconcile_once(
    ctx: AppContext,
    *,
    provider: Provider | None = None,
    business_day: date | None = None,
) -> list[reconciliation.RunReport]:
    """The T+1 reconciliation of one business day (yesterday by default) for one provider
    or every configured one; refunds it started are sent at once."""
    hospital_id = await _settings_hospital(ctx)
    if hospital_id is None:
        log.warning("reconciliation: no hospital %r", ctx.settings.hospital_code)
        return []
    day = business_day or reconciliation.default_day(ctx.clock.now())
    providers = [provider] if provider is not None else list(ctx.gateways)
    reports = [
        await reconciliation.reconcile_day(
            db=ctx.db,
            gateways=ctx.gateways,
            hospital_id=hospital_id,
            provider=each,
            business_day=day,
            clock=ctx.clock,
        )
        for each in providers
        if each in RECONCILED_PROVIDERS
    ]
    if any(report.refunds_started for report in reports):
        await send_refunds_once(ctx)
    return reports


async def retry_reconciliations_once(ctx: AppContext) -> list[reconciliation.RunReport]:
    """Runs again the days whose statement was not ready (or whose provider failed)."""
    hospital_id = await _settings_hospital(ctx)
    if hospital_id is None:
        return []
    async with ctx.db.read() as session:
        due = await reconciliation.due_runs(session, hospital_id=hospital_id, now=ctx.clock.now())
    reports: list[reconciliation.RunReport] = []
    for provider, day in due:
        if provider in ctx.gateways:
            reports.extend(await reconcile_once(ctx, provider=provider, business_day=day))
    return reports


async def refresh_reports_once(ctx: AppContext, *, settled: bool = False) -> int:
    """Rebuilds the reports' summary rows of the days that still change (a few days back to
    a month ahead), or with `settled` the older days that late refunds and lifted no-shows
    may still touch. Returns the rows written."""
    days = reports_service.settled_days if settled else reports_service.recent_days
    done = await reports_refresh.refresh(ctx.db, now=ctx.clock.now(), days=days)
    return sum(item.rows for item in done)


def build_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    if settings.redis_url:
        return RedisHuey("yuyue", url=settings.redis_url, results=False, immediate=immediate)
    if not immediate:
        settings.job_storage.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        "yuyue", filename=str(settings.job_storage), results=False, immediate=immediate
    )


@dataclass
class _ThreadState:
    loop: asyncio.AbstractEventLoop
    ctx: AppContext
    senders: Senders


class _HostedConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves signals to its host (uvicorn, or `run_standalone`)."""

    def _set_signal_handlers(self) -> None:
        return None


DOORBELL_INTERVAL_SECONDS = 0.25


class Jobs:
    """The huey instance with yuyue's tasks, the per-thread contexts they run in, and the
    doorbell that queues a delivery after a commit."""

    def __init__(
        self,
        settings: Settings,
        *,
        make_context: Callable[[], AppContext] | None = None,
        make_senders: Callable[[Settings], Senders] = senders_from_settings,
        immediate: bool = False,
    ) -> None:
        self.settings = settings
        self.huey = build_huey(settings, immediate=immediate)
        self._make_context = make_context or (lambda: worker_context(settings))
        self._make_senders = make_senders
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._lock = threading.Lock()
        self._doorbell = threading.Event()
        self._closing = threading.Event()
        self._bell_thread: threading.Thread | None = None
        self._consumer: Any = None
        self.last_report: DeliveryReport | None = None

        huey = self.huey
        self.deliver_now = huey.task(name="deliver_now")(self._deliver)
        self.deliver_periodic = huey.periodic_task(crontab(), name="deliver_due")(self._deliver)
        self.expire_holds = huey.periodic_task(crontab(), name="expire_holds")(self._expire)
        self.close_waitlists = huey.periodic_task(crontab(), name="close_waitlists")(
            self._close_waitlists
        )
        self.release_reserved = huey.periodic_task(crontab(), name="release_reserved")(
            self._release_reserved
        )
        self.mark_no_shows = huey.periodic_task(crontab(minute="*/5"), name="mark_no_shows")(
            self._mark_no_shows
        )
        self.send_refunds_now = huey.task(name="send_refunds_now")(self._send_refunds)
        self.send_refunds = huey.periodic_task(crontab(), name="send_refunds")(self._send_refunds)
        self.close_orders = huey.periodic_task(crontab(), name="close_expired_orders")(
            self._close_orders
        )
        self.insurance = huey.periodic_task(crontab(), name="insurance_pass")(self._insurance)
        # The providers publish a day's statement in the morning after (WeChat Pay from
        # 10:00, Alipay earlier): 10:05 Asia/Shanghai, i.e. 02:05 UTC (huey's clock is UTC).
        self.reconcile = huey.periodic_task(crontab(hour="2", minute="5"), name="reconcile")(
            self._reconcile
        )
        self.retry_reconciliations = huey.periodic_task(
            crontab(minute="*/15"), name="retry_reconciliations"
        )(self._retry_reconciliations)
        # Reports read summary rows: the recent days every ten minutes, the settled ones
        # nightly at 03:30 Asia/Shanghai (19:30 UTC), after the no-show sweep's last pass.
        self.refresh_reports = huey.periodic_task(crontab(minute="*/10"), name="refresh_reports")(
            self._refresh_reports
        )
        self.refresh_settled_reports = huey.periodic_task(
            crontab(hour="19", minute="30"), name="refresh_settled_reports"
        )(self._refresh_settled_reports)
        huey.on_shutdown(name="dispose_context")(self._dispose_thread_state)

    # --- running async work in a worker thread ---------------------------------------------

    def _state(self) -> _ThreadState:
        state: _ThreadState | None = getattr(self._local, "state", None)
        if state is None:
            loop = asyncio.new_event_loop()
            state = _ThreadState(loop, self._make_context(), self._make_senders(self.settings))
            self._local.state = state
            with self._lock:
                self._states.append(state)
        return state

    def _run(self, work: Callable[[_ThreadState], Awaitable[Any]]) -> Any:
        state = self._state()
        return state.loop.run_until_complete(work(state))

    def _deliver(self) -> None:
        async def work(state: _ThreadState) -> DeliveryReport:
            return await deliver_due(state.ctx, senders=state.senders)

        report: DeliveryReport = self._run(work)
        self.last_report = report
        observability.OUTBOX_SENT.inc(report.sent)
        observability.OUTBOX_FAILURES.inc(report.failed + report.retried)
        if report.busy:
            log.info("delivery pass: %s", report)

    def _expire(self) -> None:
        async def work(state: _ThreadState) -> list[uuid.UUID]:
            return await expire_holds_once(state.ctx)

        touched: list[uuid.UUID] = self._run(work)
        if touched:
            log.info("expired holds returned places in %d sessions", len(touched))

    def _close_waitlists(self) -> None:
        async def work(state: _ThreadState) -> int:
            return await close_waitlists_once(state.ctx)

        closed: int = self._run(work)
        if closed:
            log.info("closed %d waitlist entries past their closing time", closed)

    def _release_reserved(self) -> None:
        async def work(state: _ThreadState) -> list[uuid.UUID]:
            return await release_reserved_once(state.ctx)

        released: list[uuid.UUID] = self._run(work)
        if released:
            log.info("reserved places went to on-site registration in %d sessions", len(released))

    def _mark_no_shows(self) -> None:
        async def work(state: _ThreadState) -> attendance_service.SweepResult:
            return await mark_no_shows_once(state.ctx)

        result: attendance_service.SweepResult = self._run(work)
        if result.marked:
            log.info("marked %d no-shows, %d new bans", len(result.marked), len(result.bans))
            self.request_delivery()

    def _send_refunds(self) -> None:
        async def work(state: _ThreadState) -> payments_service.RefundPass:
            return await send_refunds_once(state.ctx)

        report: payments_service.RefundPass = self._run(work)
        if report.sent:
            log.info("refunds: %s", report)
        if report.finished:
            self.request_delivery()
        self._insurance()  # insurance refunds go to the platform with the same ring

    def _insurance(self) -> None:
        async def work(state: _ThreadState) -> insurance_service.InsurancePass | None:
            return await insurance_once(state.ctx)

        report: insurance_service.InsurancePass | None = self._run(work)
        if report is not None and (report.worked or report.refunds_sent):
            log.info("insurance pass: %s", report)
            self.request_delivery()

    def _close_orders(self) -> None:
        async def work(state: _ThreadState) -> int:
            return await close_expired_orders_once(state.ctx)

        self._run(work)

    def _reconcile(self) -> None:
        async def work(state: _ThreadState) -> list[reconciliation.RunReport]:
            return await reconcile_once(state.ctx)

        for report in self._run(work):
            log.info("reconciliation: %s", report)
        self.request_delivery()

    def _retry_reconciliations(self) -> None:
        async def work(state: _ThreadState) -> list[reconciliation.RunReport]:
            return await retry_reconciliations_once(state.ctx)

        reports: list[reconciliation.RunReport] = self._run(work)
        for report in reports:
            log.info("reconciliation retried: %s", report)
        if reports:
            self.request_delivery()

    def _refresh_reports(self) -> None:
        async def work(state: _ThreadState) -> int:
            return await refresh_reports_once(state.ctx)

        self._run(work)

    def _refresh_settled_reports(self) -> None:
        async def work(state: _ThreadState) -> int:
            return await refresh_reports_once(state.ctx, settled=True)

        rows: int = self._run(work)
        log.info("reports: settled days rebuilt, %d summary rows", rows)

    def request_refunds(self) -> None:
        """Queues a refund pass now (after a commit that created refunds), so the patient
        sees the money come back within seconds rather than at the next minute."""
        try:
            self.send_refunds_now()
        except Exception:
            log.exception("could not queue a refund pass; the periodic pass sends it")

    def _dispose_thread_state(self) -> None:
        state: _ThreadState | None = getattr(self._local, "state", None)
        if state is not None:
            self._local.state = None
            with self._lock:
                self._states.remove(state)
            _dispose(state)

    # --- the doorbell -------------------------------------------------------------------------

    def request_delivery(self) -> None:
        """Cheap and never raises: any number of rings before the doorbell thread wakes
        queue one delivery task."""
        if not self._doorbell.is_set():
            self._doorbell.set()

    def start_doorbell(self) -> None:
        if self._bell_thread is None:
            self._bell_thread = threading.Thread(
                target=self._ring, name="yuyue-delivery-doorbell", daemon=True
            )
            self._bell_thread.start()

    def _ring(self) -> None:
        failing = False
        while not self._closing.is_set():
            if not self._doorbell.wait(0.5):
                continue
            self._doorbell.clear()
            try:
                self.deliver_now()
            except Exception:
                # The periodic pass delivers within a minute anyway. Logged once while the
                # job storage (Redis, say) stays away, not on every booking.
                if not failing:
                    log.exception("could not queue a delivery; retrying with each ring")
                failing = True
            else:
                if failing:
                    log.warning("deliveries are queued again")
                failing = False
            # At the release peak every booking rings; queueing a task per ring would write
            # the job store hundreds of times a second. One task per interval delivers every
            # message written before it, so messages wait at most this long for a worker.
            self._closing.wait(DOORBELL_INTERVAL_SECONDS)

    # --- the consumer ---------------------------------------------------------------------

    def start_consumer(self) -> None:
        """Runs huey's scheduler and `job_threads` workers in this process, in threads."""
        self._consumer = _HostedConsumer(
            self.huey,
            workers=max(1, self.settings.job_threads),
            worker_type="thread",
            periodic=True,
            shutdown_timeout=30.0,
        )
        self._consumer.start()
        observability.job_queue_probe = self.huey.pending_count

    def check_health(self) -> None:
        if self._consumer is not None:
            self._consumer.check_worker_health()

    def close(self) -> None:
        """Stops the doorbell and the consumer (waiting for running tasks), then disposes
        of any thread's context still open."""
        self._closing.set()
        self._doorbell.set()
        if self._bell_thread is not None:
            self._bell_thread.join(timeout=5)
            self._bell_thread = None
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        with self._lock:
            remaining, self._states = self._states, []
        for state in remaining:
            # Another thread's loop is not running now; a fresh thread may drive it.
            disposer = threading.Thread(target=_dispose, args=(state,))
            disposer.start()
            disposer.join(timeout=10)
        self.huey.storage.close()


def _dispose(state: _ThreadState) -> None:
    try:
        state.loop.run_until_complete(state.ctx.stop())
        state.loop.run_until_complete(state.ctx.db.dispose())
    except Exception:
        log.exception("could not close a worker's database connections")
    finally:
        state.loop.close()


def worker_context(
    settings: Settings,
    *,
    base: AppContext | None = None,
    host: asyncio.AbstractEventLoop | None = None,
) -> AppContext:
    """A worker thread's own context: its own database engines, a small pool. Hosted in a
    serving process (`base`), it shares the clock and tells the host's caches when places
    come back (with Redis, its own link tells every process)."""
    db = Database(settings.async_database_url, echo=settings.sql_echo, pool_size=2)
    ctx = AppContext.build(settings, clock=base.clock if base else None, db=db)
    if base is not None and host is not None:
        if isinstance(base.places, InProcessPlaceSignals) and not isinstance(
            base.places, RedisPlaceSignals
        ):
            ctx.places = _HostPlaces(base.places, host)
        if isinstance(base.live, InProcessLiveBus):
            # Without Redis a job's live events reach the screens through the host's bus
            # (thread-safe); with Redis the worker has a connection of its own.
            ctx.live = base.live
    return ctx


class _HostPlaces(InProcessPlaceSignals):
    """Forwards "places changed" to the serving process's listeners, on its own loop
    (the caches there are not thread-safe)."""

    def __init__(self, host_signals: InProcessPlaceSignals, host: asyncio.AbstractEventLoop):
        super().__init__()
        self._host_signals = host_signals
        self._host = host

    def deliver(self, changes: Iterable[PlacesChanged]) -> None:
        if not self._host.is_closed():
            self._host.call_soon_threadsafe(self._host_signals.deliver, list(changes))


# --- the entry points' side ------------------------------------------------------------------

_ATTACHED: dict[int, Jobs] = {}


def attach(ctx: AppContext, jobs: Jobs) -> None:
    """Lets `request_delivery(ctx)` reach this process's doorbell."""
    _ATTACHED[id(ctx)] = jobs


def detach(ctx: AppContext) -> None:
    _ATTACHED.pop(id(ctx), None)


def request_delivery(ctx: AppContext) -> None:
    """Call after committing a change that wrote outbox rows. Cheap, never raises; without
    attached jobs (tests, scripts) it does nothing and the periodic pass delivers."""
    jobs = _ATTACHED.get(id(ctx))
    if jobs is not None:
        jobs.request_delivery()


def request_refunds(ctx: AppContext) -> None:
    """Call after committing a change that created refunds (a cancellation of a paid
    booking, a late payment). Cheap; without attached jobs the periodic pass sends them."""
    jobs = _ATTACHED.get(id(ctx))
    if jobs is not None:
        jobs.request_refunds()
        jobs.request_delivery()


def run_standalone(settings: Settings) -> None:
    """`yuyue worker`: the consumer in the foreground until SIGINT or SIGTERM, then a
    graceful stop (running tasks finish; a send cut short is recovered by its lease)."""
    jobs = Jobs(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        jobs.start_consumer()
        log.info("yuyue worker running (%d threads)", settings.job_threads)
        while not stop.wait(10.0):
            jobs.check_health()
    finally:
        jobs.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
