"""The application factory: API routes, problem+json errors, and the in-process worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from yuyue import __version__
from yuyue.attendance import api as attendance_api
from yuyue.booking import api as booking_api
from yuyue.booking import sessions_api as booking_sessions_api
from yuyue.booking.fastpath import SoldOutFastPath
from yuyue.booking.readpath import AvailabilityFastPath
from yuyue.booking.waitlist import api as waitlist_api
from yuyue.config import Settings
from yuyue.guidance import api as guidance_api
from yuyue.jobs import Jobs, attach, detach, worker_context
from yuyue.kit.clock import Clock
from yuyue.kit.db import Database
from yuyue.kit.observability import RequestObservation
from yuyue.notifications import api as notifications_api
from yuyue.operations import api as operations_api
from yuyue.operations.announcements import api as announcements_api
from yuyue.patients import api as patients_api
from yuyue.payments import api as payments_api
from yuyue.reports import api as reports_api
from yuyue.scheduling import api as scheduling_api
from yuyue.staff import api as staff_api
from yuyue.visits import api as visits_api
from yuyue.web import ops, problems
from yuyue.web.context import AppContext, settle_garbage_collector
from yuyue.web.deps import authorize
from yuyue.web.security import SecurityHeaders

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
yuyue (预约) — outpatient appointment and registration.

**Channels** (app, WeChat and Alipay mini programs, web, kiosk, phone, community, window)
call with `Authorization: Bearer <API key>`; the key decides the channel and therefore the
pool its places come from. Staff sign in at `POST /api/v1/auth/token`.

**Errors** are `application/problem+json` with a stable `code` and a `detail` sentence in
the language of `Accept-Language` (zh-CN by default, `en` available).

**Money** is integer fen (分). **Instants** are UTC ISO 8601; session dates and times are the
hospital's local ones.
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    settings = settings or Settings()
    simulated = None
    if settings.payments_simulated:
        from yuyue.payments import simulated as simulated_providers

        simulated = simulated_providers.prepare(settings)
    ctx = AppContext.build(settings, clock=clock, db=database)
    worker_enabled = settings.worker_in_process if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        # run_worker=False (tests, scripts): no background machinery at all. Otherwise the
        # doorbell queues deliveries for whichever consumer runs: this process's
        # (worker_in_process) or a separate `yuyue worker`.
        jobs: Jobs | None = None
        if run_worker is not False:
            host = asyncio.get_running_loop()
            jobs = Jobs(
                settings, make_context=lambda: worker_context(settings, base=ctx, host=host)
            )
            attach(ctx, jobs)
            jobs.start_doorbell()
            # This process's booking attempts, added to the database now and then.
            ctx.demand.start(ctx.db, every=settings.demand_flush_seconds)
            if worker_enabled:
                jobs.start_consumer()
            settle_garbage_collector()
        try:
            yield
        finally:
            # What is still counted is written before the database goes (also without
            # the periodic flush: tests and scripts serve too).
            await ctx.demand.stop(ctx.db)
            if jobs is not None:
                detach(ctx)
                await asyncio.to_thread(jobs.close)
            await ctx.stop()
            await ctx.live.close()
            if database is None:
                await ctx.db.dispose()

    app = FastAPI(
        title="yuyue",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # yuyue keeps its own metrics (/metrics) and JSON logs with request ids; FastAPI's
        # OpenTelemetry bridge, unconfigured, would still ask on every request whether a
        # provider has appeared since.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[
            {
                "name": "scheduling",
                "description": "Departments, doctors, sessions and remaining places",
            },
            {"name": "appointments", "description": "Book, read, cancel, reschedule"},
            {"name": "patients", "description": "Real-name patients"},
            {
                "name": "scheduler",
                "description": "Templates, generation, extra sessions and places, stop-clinic",
            },
            {"name": "staff", "description": "Staff sign-in and channel API keys"},
            {"name": "waitlist", "description": "Wait for a full session; take or decline offers"},
            {
                "name": "visits",
                "description": "The visit day: check-in, triage, the queue, calling",
            },
            {
                "name": "no-shows",
                "description": "The no-show policy, and appeals against bans (申诉)",
            },
            {
                "name": "notifications",
                "description": "Message wording, reminder offsets and quiet hours",
            },
        ],
    )
    app.state.ctx = ctx
    problems.install(app)
    app.add_middleware(SoldOutFastPath, ctx=ctx, handlers=app.exception_handlers)
    app.add_middleware(AvailabilityFastPath, ctx=ctx)
    # Outside the fast paths, so their answers are counted and carry the request id.
    app.add_middleware(RequestObservation)
    # Outermost: every answer, the fast paths' included, carries the security headers.
    app.add_middleware(SecurityHeaders)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    for router in (
        ops.router,
        scheduling_api.router,
        booking_sessions_api.router,
        patients_api.router,
        booking_api.router,
        staff_api.router,
        waitlist_api.router,
        notifications_api.router,
        attendance_api.router,
        visits_api.router,
        payments_api.router,
        guidance_api.router,
        operations_api.router,
        announcements_api.router,
        reports_api.router,
    ):
        # Every API route passes the declared table's door first (web.access).
        app.include_router(router, dependencies=[Depends(authorize)])
    _install_pages(app)
    if simulated is not None:
        simulated.mount(app)
    return app


def _install_pages(app: FastAPI) -> None:
    """The patient pages, their static files, and errors answered as pages."""
    from yuyue.guidance import pages as guidance_pages
    from yuyue.portal import bans, inbox, live, pages, paying, waitlist
    from yuyue.portal.web import SignInRequired, page_error, sign_in_redirect
    from yuyue.web.pagekit import is_page

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (
        pages.router,
        paying.router,
        inbox.router,
        waitlist.router,
        bans.router,
        live.router,
    ):
        app.include_router(router)
    app.include_router(guidance_pages.router)
    problems.register_page_renderer(app, is_page, page_error)

    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return sign_in_redirect(request.url.path)

    app.add_exception_handler(SignInRequired, on_sign_in_required)
    # The visit-day pages: kiosk, triage desk, doctor's workstation, waiting-room screens.
    from yuyue.frontdesk import pages as frontdesk

    frontdesk.install(app)
    # The staff's report pages sign in and refuse like the floor pages.
    from yuyue.reports import pages as report_pages

    app.include_router(report_pages.router)
