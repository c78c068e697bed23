"""The waitlist on the patient pages: join a full session, see your place in line, take
or give up an offered place."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.waitlist import service as waitlist
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.operations import service as operations_service
from yuyue.portal.pages import VisitorDep, account_patients, choice, request_delivery
from yuyue.portal.web import Visitor, form_of, redirect, render

router = APIRouter(include_in_schema=False)


async def _entries(session: AsyncSession, who: Visitor) -> list[waitlist.WaitlistView]:
    patients = await account_patients(session, who)
    if not patients:
        return []
    return await waitlist.entries_for_patients(
        session, hospital_id=who.hospital.id, patient_ids=[p.id for p in patients]
    )


@router.get("/waitlist", response_class=HTMLResponse)
async def waitlist_page(request: Request, who: VisitorDep) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        entries = await _entries(session, who)
        names = {p.id: p.name for p in await account_patients(session, who)}
    return render(
        request,
        who,
        "waitlist.html",
        entries=entries,
        names=names,
        notice_key=request.query_params.get("done"),
    )


@router.post("/sessions/{session_id}/waitlist", response_class=HTMLResponse)
async def join(request: Request, who: VisitorDep, session_id: uuid.UUID) -> Response:
    who.require_account(request)
    form = await form_of(request, who)
    actor = who.actor

    async def work(session: AsyncSession) -> None:
        _, patient = await choice(session, who, form)
        await waitlist.join(
            session,
            actor=actor,
            patient_id=patient.id,
            session_id=session_id,
            now=who.ctx.clock.now(),
            caches=who.ctx.caches,
        )

    try:
        await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _waitlist_refused(request, who, error)
    return redirect("/waitlist?done=joined")


async def _own_entry(session: AsyncSession, who: Visitor, entry_id: uuid.UUID) -> None:
    if not any(entry.id == entry_id for entry in await _entries(session, who)):
        raise NotFound(what="waitlist_entry")


async def _waitlist_refused(request: Request, who: Visitor, error: YuyueError) -> Response:
    async with who.ctx.db.read() as session:
        entries = await _entries(session, who)
        names = {p.id: p.name for p in await account_patients(session, who)}
    return render(
        request,
        who,
        "waitlist.html",
        status=error.status,
        entries=entries,
        names=names,
        error=error.detail(who.locale),
        notice_key=None,
    )


@router.post("/waitlist/{entry_id}/{action}", response_class=HTMLResponse)
async def act(request: Request, who: VisitorDep, entry_id: uuid.UUID, action: str) -> Response:
    who.require_account(request)
    await form_of(request, who)
    if action not in ("accept", "decline", "leave"):
        raise NotFound(what="resource")
    actor = who.actor
    if action == "accept":
        await operations_service.ensure_bookable(who.ctx.db.read, hospital_id=who.actor.hospital_id)

    async def work(session: AsyncSession) -> uuid.UUID | None:
        await _own_entry(session, who, entry_id)
        now = who.ctx.clock.now()
        if action == "accept":
            accepted = await waitlist.accept_offer(
                session, actor=actor, entry_id=entry_id, now=now, caches=who.ctx.caches
            )
            return accepted.appointment.id
        if action == "decline":
            await waitlist.decline_offer(session, actor=actor, entry_id=entry_id, now=now)
        else:
            await waitlist.leave(session, actor=actor, entry_id=entry_id, now=now)
        return None

    try:
        appointment_id = await who.ctx.db.transact(work)
    except YuyueError as error:
        return await _waitlist_refused(request, who, error)
    request_delivery(who)
    if appointment_id is not None:
        return redirect(f"/appointments/{appointment_id}?booked=1")
    return redirect(f"/waitlist?done={action}")
