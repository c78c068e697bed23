"""A patient's ban on the patient pages: why and until when, an appeal form, and the
decision once staff have made it. On-site registration stays open throughout."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue import jobs
from yuyue.attendance import rules as attendance_rules
from yuyue.attendance import service as attendance
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.portal import appeal_texts as _appeal_texts  # noqa: F401  (registers sentences)
from yuyue.portal.web import Visitor, form_of, redirect, render, visitor

router = APIRouter(include_in_schema=False)
VisitorDep = Annotated[Visitor, Depends(visitor)]


def until_text(who: Visitor) -> Callable[[datetime], str]:
    """A ban's dates with the year (they can be months away), in the hospital's zone."""
    zone = ZoneInfo(who.hospital.timezone)
    return lambda instant: instant.astimezone(zone).strftime("%Y-%m-%d")


def reason_text(who: Visitor, ban: attendance.BanView) -> str:
    """The reason in the reader's language when the no-show policy made the ban."""
    if not ban.visit_dates or ban.window_days is None:
        return ban.reason
    joiner = ", " if who.locale == "en" else "、"
    return who.t(
        "no_show.reason",
        days=ban.window_days,
        count=len(ban.visit_dates),
        dates=joiner.join(ban.visit_dates),
    )


async def blocked_patients(
    session: AsyncSession, who: Visitor, patients: Sequence[Patient]
) -> dict[uuid.UUID, attendance.BanView]:
    """For each of these patients with a ban in force, the one that ends last."""
    found = await attendance.patient_bans(
        session,
        hospital_id=who.hospital.id,
        patient_ids=[p.id for p in patients],
        now=who.now,
    )
    blocked: dict[uuid.UUID, attendance.BanView] = {}
    for patient_id, bans in found.items():
        current = [b for b in bans if b.in_force(who.now)]
        if current:
            blocked[patient_id] = max(current, key=lambda b: b.ends_at)
    return blocked


async def _own_patient(session: AsyncSession, who: Visitor, patient_id: uuid.UUID) -> Patient:
    assert who.account is not None
    patients = await patient_service.account_patients(
        session, hospital_id=who.hospital.id, account_id=who.account.id
    )
    for patient in patients:
        if patient.id == patient_id:
            return patient
    raise NotFound(what="patient")


async def _render_ban(
    request: Request,
    who: Visitor,
    patient_id: uuid.UUID,
    *,
    status: int = 200,
    error: str | None = None,
    text: str = "",
) -> Response:
    async with who.ctx.db.read() as session:
        patient = await _own_patient(session, who, patient_id)
        found = await attendance.patient_bans(
            session, hospital_id=who.hospital.id, patient_ids=[patient.id], now=who.now
        )
    bans = found.get(patient.id, [])
    return render(
        request,
        who,
        "ban.html",
        status=status,
        patient=patient,
        bans=bans,
        reasons={b.id: reason_text(who, b) for b in bans},
        until=until_text(who),
        error=error,
        text=text,
        sent=request.query_params.get("sent") == "1",
        minimum=attendance_rules.APPEAL_MIN,
        maximum=attendance_rules.APPEAL_MAX,
    )


@router.get("/patients/{patient_id}/ban", response_class=HTMLResponse)
async def ban_page(request: Request, who: VisitorDep, patient_id: uuid.UUID) -> Response:
    who.require_account(request)
    return await _render_ban(request, who, patient_id)


@router.post("/patients/{patient_id}/ban/{entry_id}/appeal", response_class=HTMLResponse)
async def appeal(
    request: Request, who: VisitorDep, patient_id: uuid.UUID, entry_id: uuid.UUID
) -> Response:
    account = who.require_account(request)
    form = await form_of(request, who)
    text = form.get("text", "")
    actor = who.actor

    async def work(session: AsyncSession) -> None:
        patient = await _own_patient(session, who, patient_id)
        found = await attendance.patient_bans(
            session, hospital_id=who.hospital.id, patient_ids=[patient.id], now=who.now
        )
        if not any(b.id == entry_id for b in found.get(patient.id, [])):
            raise NotFound(what="blacklist_entry")
        await attendance.submit_appeal(
            session,
            actor=actor,
            account_id=account.id,
            entry_id=entry_id,
            text=text,
            now=who.ctx.clock.now(),
        )

    try:
        await who.ctx.db.transact(work)
    except NotFound:
        raise
    except YuyueError as error:
        return await _render_ban(
            request,
            who,
            patient_id,
            status=error.status,
            error=error.detail(who.locale),
            text=text,
        )
    jobs.request_delivery(who.ctx)
    return redirect(f"/patients/{patient_id}/ban?sent=1")
