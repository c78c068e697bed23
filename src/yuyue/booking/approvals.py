"""Approvals (审批): a staff change to a confirmed booking — cancelling it after the patients'
deadline, moving it, giving it to another patient — is a request that a supervisor approves
or rejects with a note. It takes effect only on approval, in the approving transaction,
through booking's own cancel, reschedule and change-of-patient, so every rule, message,
refund and audit row of those applies; if the change can no longer be made (the new place
is gone), the approval is refused and nothing changes. Who asked never decides (four eyes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules, service
from yuyue.booking.facts import SessionInfo, session_info
from yuyue.booking.models import Appointment, ChangeRequest
from yuyue.booking.rules import ChangeKind, RequestState
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.errors import NotFound, ValidationFailed
from yuyue.patients import service as patients
from yuyue.scheduling.models import SlotPool
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

# Who asks (the window, the desk) and who decides.
REQUESTERS = (Role.REGISTRAR, Role.NURSE)
DECIDERS = (Role.SUPERVISOR,)


def _snapshot(request: ChangeRequest) -> dict[str, Any]:
    return {
        "appointment_id": str(request.appointment_id),
        "kind": request.kind,
        "state": request.state,
        "reason": request.reason,
        "details": request.details,
        "decision_note": request.decision_note,
        "outcome": request.outcome,
    }


def _missing(field: str) -> ValidationFailed:
    return ValidationFailed(
        errors=[{"field": field, "message": "required for this kind of change"}], summary=field
    )


async def request_change(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    kind: ChangeKind,
    reason: str,
    now: datetime,
    session_id: uuid.UUID | None = None,
    slot_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> ChangeRequest:
    """Files the request; nothing about the booking changes until a supervisor approves."""
    require_staff(actor, *REQUESTERS)
    text = rules.check_request_reason(reason)
    appointment = await service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    status = AppointmentStatus(appointment.status)
    if status is not AppointmentStatus.BOOKED:
        raise rules.InvalidTransition(state=status.value, action=f"request_{kind.value}")
    details: dict[str, Any] = {}
    if kind is ChangeKind.MOVE:
        if session_id is None:
            raise _missing("session_id")
        # The target must exist in this hospital; whether it has room is decided on approval.
        await session_info(session, hospital_id=actor.hospital_id, session_id=session_id)
        details = {"session_id": str(session_id), "slot_id": str(slot_id) if slot_id else None}
    elif kind is ChangeKind.CHANGE_PATIENT:
        if patient_id is None:
            raise _missing("patient_id")
        await patients.get_patient(session, hospital_id=actor.hospital_id, patient_id=patient_id)
        if patient_id == appointment.patient_id:
            raise rules.AlreadyBooked()
        details = {"patient_id": str(patient_id)}
    # The appointment's row lock serialises requests for it: a second one sees the first.
    pending = await session.scalar(
        select(ChangeRequest.id).where(
            ChangeRequest.appointment_id == appointment.id,
            ChangeRequest.state == RequestState.PENDING.value,
        )
    )
    if pending is not None:
        raise rules.RequestPending()
    request = ChangeRequest(
        hospital_id=actor.hospital_id,
        appointment_id=appointment.id,
        kind=kind.value,
        state=RequestState.PENDING.value,
        reason=text,
        details=details,
        requested_by=actor.audit_name,
        requested_by_id=actor.id,
        requested_at=now,
    )
    session.add(request)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="change_request.created",
        entity_type="change_request",
        entity_id=request.id,
        before=None,
        after=_snapshot(request),
        now=now,
    )
    return request


async def _lock_request(
    session: AsyncSession, *, actor: Actor, request_id: uuid.UUID
) -> ChangeRequest:
    request = await session.scalar(
        select(ChangeRequest)
        .where(ChangeRequest.id == request_id, ChangeRequest.hospital_id == actor.hospital_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise NotFound(what="change_request")
    return request


async def _carry_out(
    session: AsyncSession, *, actor: Actor, request: ChangeRequest, now: datetime
) -> dict[str, Any]:
    kind = ChangeKind(request.kind)
    if kind is ChangeKind.CANCEL_LATE:
        await service.cancel(
            session,
            actor=actor,
            appointment_id=request.appointment_id,
            note=request.reason,
            now=now,
            approved=True,
        )
        return {"cancelled": str(request.appointment_id)}
    if kind is ChangeKind.MOVE:
        slot = request.details.get("slot_id")
        booked = await service.reschedule(
            session,
            actor=actor,
            appointment_id=request.appointment_id,
            session_id=uuid.UUID(request.details["session_id"]),
            slot_id=uuid.UUID(slot) if slot else None,
            now=now,
            approved=True,
        )
        return {"appointment_id": str(booked.appointment.id)}
    await service.change_patient(
        session,
        actor=actor,
        appointment_id=request.appointment_id,
        patient_id=uuid.UUID(request.details["patient_id"]),
        note=request.reason,
        now=now,
    )
    return {"patient_id": request.details["patient_id"]}


async def decide(
    session: AsyncSession,
    *,
    actor: Actor,
    request_id: uuid.UUID,
    approve: bool,
    note: str | None,
    now: datetime,
) -> ChangeRequest:
    """Approves (the change is made now, or the approval is refused and nothing changes)
    or rejects (a note says why) a pending request; audited either way."""
    require_staff(actor, *DECIDERS)
    request = await _lock_request(session, actor=actor, request_id=request_id)
    rules.check_request_state(RequestState(request.state), "approve" if approve else "reject")
    rules.check_four_eyes(requested_by_id=request.requested_by_id, deciding_id=actor.id)
    text = " ".join((note or "").split())[:500] or None
    if not approve and text is None:
        raise _missing("note")
    before = _snapshot(request)
    if approve:
        request.outcome = await _carry_out(session, actor=actor, request=request, now=now)
    request.state = (RequestState.APPROVED if approve else RequestState.REJECTED).value
    request.decided_by = actor.audit_name
    request.decided_by_id = actor.id
    request.decided_at = now
    request.decision_note = text
    record_audit(
        session,
        actor=actor,
        action="change_request.approved" if approve else "change_request.rejected",
        entity_type="change_request",
        entity_id=request.id,
        before=before,
        after=_snapshot(request),
        now=now,
    )
    return request


async def withdraw(
    session: AsyncSession, *, actor: Actor, request_id: uuid.UUID, now: datetime
) -> ChangeRequest:
    """Who asked (or an administrator) takes a pending request back."""
    require_staff(actor, *REQUESTERS)
    request = await _lock_request(session, actor=actor, request_id=request_id)
    rules.check_request_state(RequestState(request.state), "withdraw")
    if request.requested_by_id != actor.id and not actor.has_role(Role.ADMIN):
        raise rules.InvalidTransition(state=request.state, action="withdraw")
    before = _snapshot(request)
    request.state = RequestState.WITHDRAWN.value
    request.decided_at = now
    request.decided_by = actor.audit_name
    request.decided_by_id = actor.id
    record_audit(
        session,
        actor=actor,
        action="change_request.withdrawn",
        entity_type="change_request",
        entity_id=request.id,
        before=before,
        after=_snapshot(request),
        now=now,
    )
    return request


async def sessions_touched(session: AsyncSession, request: ChangeRequest) -> list[uuid.UUID]:
    """The sessions whose places an approved request changed (for the caches)."""
    ids = [request.appointment_id]
    if request.outcome and "appointment_id" in request.outcome:
        ids.append(uuid.UUID(request.outcome["appointment_id"]))
    rows = await session.scalars(select(Appointment.session_id).where(Appointment.id.in_(ids)))
    return list(set(rows.all()))


@dataclass(frozen=True, slots=True)
class RequestView:
    """A request as the supervisor reads it: what, for whom (name partly hidden), why."""

    id: uuid.UUID
    appointment_id: uuid.UUID
    kind: str
    state: str
    reason: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    patient: str
    visit_date: date
    slot_start: time
    sequence_number: int
    department: str
    department_en: str
    doctor: str | None
    target: str | None  # a move's session, a new patient (name partly hidden)
    details: dict[str, Any]


async def requests(
    session: AsyncSession, *, actor: Actor, state: RequestState | None = None, limit: int = 200
) -> list[RequestView]:
    """The hospital's requests, newest first (pending ones first of all)."""
    require_staff(actor, *REQUESTERS, *DECIDERS)
    query = (
        select(ChangeRequest, Appointment, SlotPool.slot_start)
        .join(Appointment, Appointment.id == ChangeRequest.appointment_id)
        .join(SlotPool, SlotPool.id == Appointment.pool_id)
        .where(ChangeRequest.hospital_id == actor.hospital_id)
        .order_by(ChangeRequest.requested_at.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(ChangeRequest.state == state.value)
    rows = (await session.execute(query)).all()
    people = {a.patient_id for _, a, _ in rows} | {
        uuid.UUID(r.details["patient_id"]) for r, _, _ in rows if "patient_id" in r.details
    }
    names = await patients.masked_names(
        session, hospital_id=actor.hospital_id, patient_ids=list(people)
    )
    known: dict[uuid.UUID, SessionInfo] = {}

    async def info_of(session_id: uuid.UUID) -> SessionInfo:
        # A page of requests names the same few sessions again and again.
        if session_id not in known:
            known[session_id] = await session_info(
                session, hospital_id=actor.hospital_id, session_id=session_id
            )
        return known[session_id]

    found: list[RequestView] = []
    for request, appointment, slot_start in rows:
        info = await info_of(appointment.session_id)
        target: str | None = None
        if "session_id" in request.details:
            moved_to = await info_of(uuid.UUID(request.details["session_id"]))
            target = (
                f"{moved_to.date.isoformat()} {moved_to.start_time.strftime('%H:%M')} "
                f"{moved_to.department_name} {moved_to.doctor_name or ''}".strip()
            )
        elif "patient_id" in request.details:
            target = names.get(uuid.UUID(request.details["patient_id"]), "")
        found.append(
            RequestView(
                id=request.id,
                appointment_id=appointment.id,
                kind=request.kind,
                state=request.state,
                reason=request.reason,
                requested_by=request.requested_by,
                requested_at=request.requested_at,
                decided_by=request.decided_by,
                decided_at=request.decided_at,
                decision_note=request.decision_note,
                patient=names.get(appointment.patient_id, ""),
                visit_date=appointment.visit_date,
                slot_start=slot_start,
                sequence_number=appointment.sequence_number,
                department=info.department_name,
                department_en=info.department_name_en,
                doctor=info.doctor_name,
                target=target,
                details=request.details,
            )
        )
    found.sort(key=lambda v: v.state != RequestState.PENDING.value)
    return found
