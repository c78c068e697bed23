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
    MovedBooking,
    SessionRead,
    SlotRead,
    StopClinicRequest,
    StopClinicResult,
    SubstituteRead,
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


def _stop_result(
    session_id: uuid.UUID,
    substitute_session_id: uuid.UUID | None,
    outcome: service.StopOutcome,
    *,
    preview: bool,
) -> StopClinicResult:
    return StopClinicResult(
        session_id=session_id,
        status=SessionStatus.STOPPED,
        cancelled_appointments=[a.id for a in outcome.cancelled],
        moved_appointments=[
            MovedBooking(
                from_appointment_id=m.from_appointment_id,
                appointment_id=None if preview else m.appointment_id,
                sequence_number=m.sequence_number,
                slot_start=m.slot_start,
                number_kept=m.number_kept,
                time_kept=m.time_kept,
            )
            for m in outcome.moved
        ],
        substitute_session_id=substitute_session_id,
        preview=preview,
    )


@router.post(
    "/sessions/{session_id}/stop",
    response_model=StopClinicResult,
    tags=["scheduler"],
    summary="Stop a clinic (停诊), its bookings moved to a substitute (替诊) or cancelled",
)
async def stop_session(
    session_id: uuid.UUID, body: StopClinicRequest, ctx: CtxDep, actor: ActorDep
) -> StopClinicResult:
    async def work(session: AsyncSession) -> StopClinicResult:
        outcome = await service.stop_clinic(
            session,
            actor=actor,
            session_id=session_id,
            reason=body.reason,
            now=ctx.clock.now(),
            substitute_session_id=body.substitute_session_id,
        )
        return _stop_result(session_id, body.substitute_session_id, outcome, preview=False)

    result = await ctx.db.transact(work)
    ctx.session_infos.forget(session_id)
    # Its places come back with the cancellations, though no one can take them: the
    # next request learns `session_stopped` from the database instead of `sold_out`.
    await ctx.places_returned(actor.hospital_id, session_id)
    if body.substitute_session_id is not None:
        # The substitute's places were taken: its cached counts must be read afresh.
        await ctx.places_returned(actor.hospital_id, body.substitute_session_id)
    # Paid bookings of the session have refunds waiting: send them now, not in a minute.
    if result.cancelled_appointments:
        request_refunds(ctx)
    return result


class _Preview(Exception):
    def __init__(self, result: StopClinicResult) -> None:
        self.result = result


@router.post(
    "/sessions/{session_id}/stop/preview",
    response_model=StopClinicResult,
    tags=["scheduler"],
    summary="What stopping the clinic would do now, with or without a substitute; changes nothing",
)
async def preview_stop_session(
    session_id: uuid.UUID, body: StopClinicRequest, ctx: CtxDep, actor: ActorDep
) -> StopClinicResult:
    # The stop itself, run in a transaction that is always rolled back: the plan shown is
    # exactly what the same request would do at this moment.
    async def work(session: AsyncSession) -> None:
        outcome = await service.stop_clinic(
            session,
            actor=actor,
            session_id=session_id,
            reason=body.reason,
            now=ctx.clock.now(),
            substitute_session_id=body.substitute_session_id,
        )
        raise _Preview(_stop_result(session_id, body.substitute_session_id, outcome, preview=True))

    try:
        await ctx.db.transact(work)
    except _Preview as planned:
        return planned.result
    raise AssertionError("a preview always rolls back")


@router.get(
    "/sessions/{session_id}/substitutes",
    response_model=list[SubstituteRead],
    tags=["scheduler"],
    summary="Sessions that could take over this clinic's bookings (替诊): same day, "
    "department, level and fee, with their free places",
)
async def list_substitutes(
    session_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> list[SubstituteRead]:
    async with ctx.db.read() as session:
        found = await service.substitutes(session, actor=actor, session_id=session_id)
    return [
        SubstituteRead(
            session_id=c.session_id,
            date=c.date,
            period=c.period,
            start_time=c.start_time,
            end_time=c.end_time,
            doctor_id=c.doctor_id,
            doctor_name=c.doctor_name,
            free_places=c.free_places,
        )
        for c in found
    ]
