"""The patient's place in the line on the voucher page, kept live over Server-Sent Events.

Checked in: queue number, people ahead, the estimated wait, and a notice when few are left
ahead ("come back to room 3") or when they are called. Booked but not yet checked in on the
day: when to leave home, from the slot and how far the doctor runs behind (if the hospital
turned that notice on).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.localtime import local_instant, local_today
from yuyue.portal.pages import VisitorDep, own_appointment
from yuyue.portal.web import Visitor, render_fragment
from yuyue.scheduling.models import TimeSlot
from yuyue.visits import rules as visit_rules
from yuyue.visits import service as visits
from yuyue.visits.live import queue_channel, visit_channel
from yuyue.visits.models import Visit
from yuyue.web.sse import event_stream

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class LivePanel:
    ticket: visits.QueueTicket | None
    notice: visit_rules.PatientNotice | None
    leave_by: datetime | None
    visit_id: uuid.UUID | None


async def live_panel(session: AsyncSession, who: Visitor, appointment: Appointment) -> LivePanel:
    policy = await visits.load_policy(session, hospital_id=who.hospital.id)
    status = AppointmentStatus(appointment.status)
    if status in (AppointmentStatus.CHECKED_IN, AppointmentStatus.COMPLETED):
        visit = await session.scalar(select(Visit).where(Visit.appointment_id == appointment.id))
        if visit is None:
            return LivePanel(None, None, None, None)
        ticket = await visits.ticket(session, visit=visit, policy=policy)
        notice = visit_rules.patient_notice(
            policy, status=ticket.status, people_ahead=ticket.people_ahead, room=ticket.room
        )
        return LivePanel(ticket, notice, None, visit.id)
    tz = who.hospital.timezone
    if status is not AppointmentStatus.BOOKED or appointment.visit_date != local_today(who.now, tz):
        return LivePanel(None, None, None, None)
    slot_start = await session.scalar(
        select(Visit.slot_start)
        .where(Visit.session_id == appointment.session_id, Visit.called_at.is_not(None))
        .order_by(Visit.called_at.desc())
        .limit(1)
    )
    behind = visit_rules.running_behind(
        called_slot_start=local_instant(appointment.visit_date, slot_start, tz)
        if slot_start
        else None,
        now=who.now,
    )
    start = await session.scalar(
        select(TimeSlot.start_time).where(TimeSlot.id == appointment.slot_id)
    )
    if start is None:
        return LivePanel(None, None, None, None)
    leave_by = visit_rules.leave_home_by(
        policy, slot_start=local_instant(appointment.visit_date, start, tz), behind=behind
    )
    return LivePanel(None, None, leave_by, None)


def panel_html(request: Request, who: Visitor, appointment_id: uuid.UUID, panel: LivePanel) -> str:
    return render_fragment(request, who, "_live.html", live=panel, appointment_id=appointment_id)


@router.get("/appointments/{appointment_id}/live")
async def live(request: Request, who: VisitorDep, appointment_id: uuid.UUID) -> Response:
    who.require_account(request)
    async with who.ctx.db.read() as session:
        appointment, _ = await own_appointment(session, who, appointment_id)
        panel = await live_panel(session, who, appointment)
    channels = [queue_channel(appointment.session_id)]
    if panel.visit_id is not None:
        channels.append(visit_channel(panel.visit_id))

    async def snapshot() -> dict[str, Any]:
        who.now = who.ctx.clock.now()
        async with who.ctx.db.read() as session:
            current = await session.get(Appointment, appointment_id)
            assert current is not None
            fresh = await live_panel(session, who, current)
        return {"html": panel_html(request, who, appointment_id, fresh)}

    return event_stream(request, bus=who.ctx.live, channels=tuple(channels), snapshot=snapshot)
