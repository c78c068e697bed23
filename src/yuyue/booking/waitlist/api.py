"""Waitlist routes (候补) for channel API keys and staff: join, list, leave, accept, decline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.waitlist import rules, service
from yuyue.booking.waitlist.schemas import (
    WaitlistEntryRead,
    WaitlistJoin,
    WaitlistOffer,
    WaitlistSession,
)
from yuyue.kit import i18n
from yuyue.operations import service as operations_service
from yuyue.patients import service as patient_service
from yuyue.staff.rules import Actor, reads_logged
from yuyue.web.context import AppContext
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep, ReadSourceDep
from yuyue.web.problems import register_constraint

router = APIRouter(prefix="/api/v1", tags=["waitlist"])

register_constraint("uq_waitlist_entry_active_patient_session", rules.AlreadyWaiting)

_JOIN_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    403: {"description": "`blacklisted` (self-service booking suspended)"},
    404: {"description": "unknown patient or session (`not_found`)"},
    409: {
        "description": "refused by a rule: `waitlist_not_needed` (places remain for this "
        "channel, with `remaining`), `waitlist_closed` (with `closed_at`), `waitlist_disabled`, "
        "`already_waiting`, `waitlist_full` (with `maximum`), `already_booked`, "
        "`limit_exceeded`, `outside_release_window`, `booking_closed`, `session_stopped`, "
        "`age_not_allowed`, `sex_not_allowed`"
    },
    422: {"description": "`validation_error`"},
}
_ENTRY_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key / token (`unauthorized`)"},
    404: {"description": "unknown waitlist entry, or one of another hospital (`not_found`)"},
    409: {
        "description": "`invalid_state` (the entry is not waiting / has no open offer), "
        "`offer_expired` (accepting after the deadline)"
    },
    422: {"description": "`validation_error`"},
}


def render(view: service.WaitlistView, locale: str) -> WaitlistEntryRead:
    english = locale == "en"
    return WaitlistEntryRead(
        id=view.id,
        patient_id=view.patient_id,
        status=view.status,
        status_text=i18n.translate(f"waitlist_status.{view.status.value}", locale),
        reason=view.reason,
        channel=view.channel,
        session=WaitlistSession(
            id=view.session_id,
            date=view.date,
            period=view.period,
            start=view.start_time,
            end=view.end_time,
            department=(view.department_name_en or view.department_name)
            if english
            else view.department_name,
            doctor=view.doctor_name,
        ),
        position=view.position,
        offer=WaitlistOffer(
            appointment_id=view.offer_appointment_id, expires_at=view.offer_expires_at
        )
        if view.offer_appointment_id is not None
        else None,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


@router.post(
    "/sessions/{session_id}/waitlist",
    status_code=201,
    response_model=WaitlistEntryRead,
    responses=_JOIN_REFUSALS,
    summary="Join the waitlist of a full session (not a booking)",
)
async def join_waitlist(
    session_id: uuid.UUID, body: WaitlistJoin, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> WaitlistEntryRead:
    async def work(session: AsyncSession) -> WaitlistEntryRead:
        entry = await service.join(
            session,
            actor=actor,
            patient_id=body.patient_id,
            session_id=session_id,
            now=ctx.clock.now(),
            caches=ctx.caches,
        )
        view = await service.entry_view(session, hospital_id=actor.hospital_id, entry_id=entry.id)
        return render(view, locale)

    return await ctx.db.transact(work)


@router.get(
    "/waitlist",
    response_model=list[WaitlistEntryRead],
    responses=_ENTRY_REFUSALS,
    summary="A patient's waitlist entries, newest first",
)
async def list_waitlist(
    patient_id: uuid.UUID,
    ctx: CtxDep,
    actor: ActorDep,
    locale: LocaleDep,
    source: ReadSourceDep,
) -> list[WaitlistEntryRead]:
    """Who may read the patient decides (`patients.rules.may_read`); a staff read is logged."""

    async def listed(session: AsyncSession) -> list[WaitlistEntryRead]:
        if reads_logged(actor):
            await patient_service.read_patient(
                session,
                actor=actor,
                patient_id=patient_id,
                read="waitlist",
                source=source,
                now=ctx.clock.now(),
            )
        else:
            await patient_service.readable_patient(session, actor=actor, patient_id=patient_id)
        views = await service.entries_for_patients(
            session, hospital_id=actor.hospital_id, patient_ids=[patient_id]
        )
        return [render(v, locale) for v in views]

    if reads_logged(actor):
        return await ctx.db.transact(listed)
    async with ctx.db.read() as session:
        return await listed(session)


class _EntryChange(Protocol):
    async def __call__(
        self, session: AsyncSession, *, actor: Actor, entry_id: uuid.UUID, now: datetime
    ) -> object: ...


async def _change(
    ctx: AppContext, actor: Actor, locale: str, entry_id: uuid.UUID, use_case: _EntryChange
) -> WaitlistEntryRead:
    async def work(session: AsyncSession) -> WaitlistEntryRead:
        await use_case(session, actor=actor, entry_id=entry_id, now=ctx.clock.now())
        view = await service.entry_view(session, hospital_id=actor.hospital_id, entry_id=entry_id)
        return render(view, locale)

    result = await ctx.db.transact(work)
    # A declined offer with nobody left in line returned its place to the pool.
    await ctx.places_returned(actor.hospital_id, result.session.id)
    return result


@router.delete(
    "/waitlist/{entry_id}",
    response_model=WaitlistEntryRead,
    responses=_ENTRY_REFUSALS,
    summary="Leave the waitlist (an open offer is declined)",
)
async def leave_waitlist(
    entry_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> WaitlistEntryRead:
    return await _change(ctx, actor, locale, entry_id, service.leave)


@router.post(
    "/waitlist/{entry_id}/accept",
    response_model=WaitlistEntryRead,
    responses=_ENTRY_REFUSALS,
    summary="Take the offered place: booked at once if free, held until payment otherwise",
)
async def accept_offer(
    entry_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> WaitlistEntryRead:
    await operations_service.ensure_bookable(ctx.db.read, hospital_id=actor.hospital_id)

    async def work(session: AsyncSession) -> WaitlistEntryRead:
        await service.accept_offer(
            session, actor=actor, entry_id=entry_id, now=ctx.clock.now(), caches=ctx.caches
        )
        view = await service.entry_view(session, hospital_id=actor.hospital_id, entry_id=entry_id)
        return render(view, locale)

    return await ctx.db.transact(work)


@router.post(
    "/waitlist/{entry_id}/decline",
    response_model=WaitlistEntryRead,
    responses=_ENTRY_REFUSALS,
    summary="Give the offered place up; it goes to the next waiter",
)
async def decline_offer(
    entry_id: uuid.UUID, ctx: CtxDep, actor: ActorDep, locale: LocaleDep
) -> WaitlistEntryRead:
    return await _change(ctx, actor, locale, entry_id, service.decline_offer)
