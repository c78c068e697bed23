"""Session routes that belong to booking: the availability listing (booking's read side),
and the scheduler's operations that change who holds a place — extra places go to the
waitlist first, stop-clinic cancels every booking. Paths and tags are the scheduling API's,
as published."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import listing, service
from yuyue.kit.errors import ValidationFailed
from yuyue.kit.localtime import local_today
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.schemas import (
    DoctorBrief,
    ExtraPlacesCreate,
    Named,
    SessionRead,
    StopClinicRequest,
    StopClinicResult,
    level_read,
    pick,
)
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep

router = APIRouter(prefix="/api/v1", tags=["scheduling"])
MAX_RANGE_DAYS = 31


@router.get("/sessions", response_model=list[SessionRead])
async def list_sessions(
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    date_from: Annotated[date | None, Query(description="defaults to today")] = None,
    date_to: Annotated[
        date | None, Query(description="defaults to the end of the release window")
    ] = None,
) -> list[SessionRead]:
    async with ctx.db.read() as session:
        timezone = await scheduling_service.hospital_timezone(session, actor.hospital_id)
        default_policy, _ = await listing.policies(session, actor.hospital_id)
        today = local_today(ctx.clock.now(), timezone)
        start = date_from or today
        end = date_to or today + timedelta(days=default_policy.release_days_ahead)
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
        sessions = await listing.list_sessions(
            session,
            hospital_id=actor.hospital_id,
            channel=actor.channel,
            start=start,
            end=end,
            department_id=department_id,
            doctor_id=doctor_id,
        )
    return [
        SessionRead(
            id=s.clinic.id,
            date=s.clinic.date,
            period=s.clinic.period,
            start=s.clinic.start_time,
            end=s.clinic.end_time,
            department=Named(
                id=s.department.id, name=pick(s.department.name, s.department.name_en, locale)
            ),
            doctor=DoctorBrief(
                id=s.doctor.id,
                name=s.doctor.name,
                title=pick(s.doctor.title, s.doctor.title_en, locale),
            )
            if s.doctor
            else None,
            level=level_read(s.level, locale),
            fee=s.clinic.fee_fen,
            status=s.clinic.status,
            is_extra=s.clinic.is_extra,
            capacity=s.clinic.capacity,
            remaining=s.remaining,
            booking_opens_at=s.window.opens_at,
            booking_closes_at=s.window.closes_at,
            stop_reason=s.clinic.stop_reason,
        )
        for s in sessions
    ]


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
    return result
