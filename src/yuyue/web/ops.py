"""Liveness, readiness and metrics for the operator.

`/healthz` says the process serves (a load balancer's liveness check: it touches nothing).
`/readyz` says it can do its work: the database answers (and Redis, when configured, is up
or degrading as designed); a node that is not ready is taken out of rotation, not killed.
`/metrics` is the Prometheus exposition; keep it on the internal network (see
docs/operations.md)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from yuyue.booking import service as booking_service
from yuyue.kit import observability as obs
from yuyue.notifications import service as notifications_service
from yuyue.web.context import AppContext

router = APIRouter(tags=["ops"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", response_class=PlainTextResponse, summary="Liveness")
async def healthz() -> str:
    return "ok"


async def _database_answers(ctx: AppContext) -> bool:
    async with ctx.db.read() as session:
        answer: object = await session.scalar(text("SELECT 1"))
        return answer == 1


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    checks: dict[str, Any] = {}
    try:
        checks["database"] = await asyncio.wait_for(
            _database_answers(ctx), timeout=READY_TIMEOUT_SECONDS
        )
    except Exception:
        obs.log_not_ready("database")
        checks["database"] = False
    if ctx.redis is not None:
        # Redis down degrades (slower, still correct): reported, not a reason to stop serving.
        checks["redis"] = "up" if ctx.redis.up else "degraded"
    ready = checks["database"] is True
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _pool_use(ctx: AppContext) -> tuple[int, int]:
    in_use = size = 0
    for engine in {id(e): e for e in (ctx.db.write_engine, ctx.db.read_engine)}.values():
        pool: Any = engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if callable(checked_out):
            in_use += int(checked_out())
        pool_size = getattr(pool, "size", None)
        if callable(pool_size):
            size += int(pool_size()) + int(getattr(pool, "_max_overflow", 0) or 0)
    return in_use, size


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    in_use, size = _pool_use(ctx)
    obs.POOL_IN_USE.set(in_use)
    obs.POOL_SIZE.set(size)
    try:
        async with asyncio.timeout(1.0), ctx.db.read() as session:
            obs.OUTBOX_BACKLOG.set(await notifications_service.backlog(session))
            held, overdue = await booking_service.hold_counts(session, now=ctx.clock.now())
        obs.HOLDS_OPEN.set(held)
        obs.HOLDS_OVERDUE.set(overdue)
    except Exception:
        # A scrape answers even when the database does not; readiness reports that.
        obs.log_not_ready("database figures")
    queued = obs.job_queue_length()
    if queued is not None:
        obs.QUEUE_LENGTH.set(queued)
    body, content_type = obs.metrics_answer()
    return Response(body, media_type=content_type)
