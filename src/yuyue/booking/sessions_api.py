"""Session routes that belong to booking: the session and slot lists (booking's read side),
and the scheduler's operations that change who holds a place — extra places go to the
waitlist first, stop-clinic cancels every booking. Paths and tags are the scheduling API's,
as published."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import readpath, service
from yuyue.jobs import request_refunds
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.schemas import (
    ExtraPlacesCreate,
    SessionRead,
    SlotRead,
    StopClinicRequest,
    StopClinicResult,
)
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep

router = APIRouter(prefix="/api/v1", tags=["scheduling"])


@router.get(
    "/sessions",
    response_model=list[SessionRead],
    summary="Sessions with the places left for the caller's channel, and whether it can book now",
)
async def list_sessions(
    request: Request,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    date_from: Annotated[date | None, Query(description="defaults to today")] = None,
    date_to: Annotated[
        date | None, Query(description="defaults to the end of the release window")
    ] = None,
) -> Response:
    # Rendered once from plain values and kept for at most a second (booking/readpath.py).
    body = await readpath.sessions_answer(
        ctx,
        actor=actor,
        locale=locale,
        query_string=request.scope.get("query_string", b""),
        department_id=department_id,
        doctor_id=doctor_id,
        date_from=date_from,
        date_to=date_to,
    )
    return Response(body, media_type=readpath.JSON)


@router.get(
    "/sessions/{session_id}/slots",
    response_model=list[SlotRead],
    summary="Time slots with the places left for the caller's channel, and whether it can book now",
)
async def list_slots(session_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> Response:
    body = await readpath.slots_answer(ctx, actor=actor, session_id=session_id)
    return Response(body, media_type=readpath.JSON)


@router.post("/sessions/{session_id}/extra-places", tags=["scheduler"], summary="Add places (加号)")
async def add_extra_places(
    session_id: uuid.UUID, body: ExtraPlacesCreate, ctx: CtxDep, actor: ActorDep
) -> dict[str, Any]:
    async def work(session: AsyncSession) -> dict[str, Any]:
        added = await service.add_extra_places(
            session,
            actor=actor,
            session_id=session_id,
            count=body.count,
            pool=body.pool,
            slot_id=body.slot_id,
            now=ctx.clock.now(),
        )
        return {"id": str(added.clinic.id), "capacity": added.clinic.capacity}

    result = await ctx.db.transact(work)
    await ctx.places_returned(actor.hospital_id, session_id)
    return result


@router.post(
    "/sessions/{session_id}/stop",
    response_model=StopClinicResult,
    tags=["scheduler"],
    summary="Stop a clinic (停诊)",
)
async def stop_session(
    session_id: uuid.UUID, body: StopClinicRequest, ctx: CtxDep, actor: ActorDep
) -> StopClinicResult:
    async def work(session: AsyncSession) -> StopClinicResult:
        cancelled = await service.stop_clinic(
            session, actor=actor, session_id=session_id, reason=body.reason, now=ctx.clock.now()
        )
        return StopClinicResult(
            session_id=session_id,
            status=SessionStatus.STOPPED,
            cancelled_appointments=[a.id for a in cancelled],
        )

    result = await ctx.db.transact(work)
    ctx.session_infos.forget(session_id)
    # Its places come back with the cancellations, though no one can take them: the
    # next request learns `session_stopped` from the database instead of `sold_out`.
    await ctx.places_returned(actor.hospital_id, session_id)
    # Paid bookings of the session have refunds waiting: send them now, not in a minute.
    if result.cancelled_appointments:
        request_refunds(ctx)
    return result
