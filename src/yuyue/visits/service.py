"""Visit-day use cases: check-in, the desk, the queue and calling.

Each runs inside the caller's transaction and never commits; every change writes an audit
row. Every change to a queue first locks its clinic session row (``FOR NO KEY UPDATE`` on
PostgreSQL, which bookings' foreign-key checks do not wait for; the write lock on SQLite),
so check-ins, calls and two nurses moving the same patient are applied one after another
and the line's positions stay 1..n. Lock order: clinic_session → appointment → visit,
the same as stop-clinic's.

The entry point publishes a :mod:`yuyue.visits.events` event after it commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.kit import i18n
from yuyue.kit.crypto import FieldCipher, InvalidToken, TokenSigner
from yuyue.kit.errors import Forbidden, NotFound, ValidationFailed, YuyueError
from yuyue.kit.localtime import local_instant, local_today
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType, mask_name
from yuyue.scheduling.enums import Channel
from yuyue.scheduling.models import ClinicSession, Department, Doctor, Hospital, TimeSlot
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, ActorKind, ReadKind, require_staff
from yuyue.staff.service import ReadSource, record_audit, record_read
from yuyue.visits import rules
from yuyue.visits.events import QueueEvent, QueueEventKind
from yuyue.visits.models import CheckInFailure, Visit, VisitPolicy
from yuyue.visits.states import IN_LINE, PriorityClass, VisitStatus

V = VisitStatus

# Who may do what on the visit day.
DESK_ROLES = (Role.NURSE, Role.REGISTRAR)
CALLING_ROLES = (Role.DOCTOR, Role.NURSE)
TRIAGE_ROLES = (Role.NURSE,)
VIEW_ROLES = (Role.NURSE, Role.DOCTOR, Role.REGISTRAR)
# Who sets the visit-day rules: the outpatient office's schedulers, who set the booking and
# no-show rules too (and admins).
POLICY_ROLES = (Role.SCHEDULER,)


def require_check_in(actor: Actor) -> None:
    """A kiosk (a channel key of channel kiosk) or desk staff."""
    if actor.kind is ActorKind.CHANNEL and actor.channel is Channel.KIOSK:
        return
    require_staff(actor, *DESK_ROLES)


def require_viewer(actor: Actor) -> None:
    """Screens and kiosks read queues with a kiosk key; staff with their token."""
    if actor.kind is ActorKind.CHANNEL and actor.channel is Channel.KIOSK:
        return
    require_staff(actor, *VIEW_ROLES)


# --- loading ------------------------------------------------------------------------------


async def load_policy(session: AsyncSession, *, hospital_id: uuid.UUID) -> rules.Policy:
    row = await session.scalar(select(VisitPolicy).where(VisitPolicy.hospital_id == hospital_id))
    if row is None:
        return rules.Policy()
    return rules.Policy(
        check_in_minutes_before=row.check_in_minutes_before,
        late_grace_minutes=row.late_grace_minutes,
        batch_slots=row.batch_slots,
        elderly_age=row.elderly_age,
        priority_classes=tuple(
            PriorityClass(p) for p in row.priority_classes if p in set(PriorityClass)
        ),
        estimate_min_samples=row.estimate_min_samples,
        code_attempts_max=row.code_attempts_max,
        code_lockout_minutes=row.code_lockout_minutes,
        come_back_ahead=row.come_back_ahead,
        travel_minutes=row.travel_minutes,
    )


POLICY_FIELDS = (
    "check_in_minutes_before",
    "late_grace_minutes",
    "batch_slots",
    "elderly_age",
    "priority_classes",
    "estimate_min_samples",
    "code_attempts_max",
    "code_lockout_minutes",
    "come_back_ahead",
    "travel_minutes",
)


async def update_policy(
    session: AsyncSession, *, actor: Actor, changes: dict[str, Any], now: datetime
) -> rules.Policy:
    """Sets the hospital's visit-day rules (scheduler or admin); fields left out keep their
    value."""
    require_staff(actor, *POLICY_ROLES)
    row = await session.scalar(
        select(VisitPolicy).where(VisitPolicy.hospital_id == actor.hospital_id).with_for_update()
    )
    if row is None:
        defaults = rules.Policy()
        row = VisitPolicy(
            hospital_id=actor.hospital_id,
            **{
                field: list(getattr(defaults, field))
                if field == "priority_classes"
                else getattr(defaults, field)
                for field in POLICY_FIELDS
            },
        )
        session.add(row)
        await session.flush()
    before = {field: getattr(row, field) for field in POLICY_FIELDS}
    for field, value in changes.items():
        if field in POLICY_FIELDS and value is not None:
            setattr(row, field, [str(v) for v in value] if field == "priority_classes" else value)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="update_visit_policy",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before=before,
        after={field: getattr(row, field) for field in POLICY_FIELDS},
        now=now,
    )
    return await load_policy(session, hospital_id=actor.hospital_id)


async def hospital_timezone(session: AsyncSession, *, hospital_id: uuid.UUID) -> str:
    tz = await session.scalar(select(Hospital.timezone).where(Hospital.id == hospital_id))
    if tz is None:
        raise NotFound(what="hospital")
    return tz


async def _lock_queue(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_id: uuid.UUID
) -> ClinicSession:
    clinic = await session.scalar(
        select(ClinicSession)
        .where(ClinicSession.id == session_id, ClinicSession.hospital_id == hospital_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if clinic is None:
        raise NotFound(what="session")
    return clinic


async def _check_own_session(session: AsyncSession, *, actor: Actor, clinic: ClinicSession) -> None:
    """A doctor calls only their own sessions (or their department's, when it has no named
    doctor); nurses and admins act on any queue of the hospital."""
    if not actor.is_staff or actor.has_role(Role.NURSE):
        return
    doctor = await session.get(Doctor, actor.doctor_id) if actor.doctor_id else None
    if doctor is None or doctor.hospital_id != actor.hospital_id:
        raise Forbidden()
    own = (
        clinic.doctor_id == doctor.id
        if clinic.doctor_id is not None
        else clinic.department_id == doctor.department_id
    )
    if not own:
        raise Forbidden()


async def _visits(session: AsyncSession, *, session_id: uuid.UUID) -> list[Visit]:
    """All visits of a queue, fresh from the database (after the queue lock)."""
    return list(
        (
            await session.scalars(
                select(Visit)
                .where(Visit.session_id == session_id)
                .order_by(Visit.position, Visit.checked_in_at)
                .execution_options(populate_existing=True)
            )
        ).all()
    )


def _entry(visit: Visit) -> rules.QueueEntry:
    return rules.QueueEntry(
        visit_id=visit.id,
        batch=visit.batch,
        queued_at=visit.queued_at,
        queue_number=visit.queue_number,
        priority=PriorityClass(visit.priority) if visit.priority else None,
        walk_in=visit.walk_in,
    )


def _line(visits: Sequence[Visit]) -> list[rules.QueueEntry]:
    waiting = [v for v in visits if v.status in IN_LINE and v.position is not None]
    return [_entry(v) for v in sorted(waiting, key=lambda v: v.position or 0)]


def _write_line(visits: Sequence[Visit], line: Sequence[rules.QueueEntry]) -> None:
    positions = {entry.visit_id: index for index, entry in enumerate(line, start=1)}
    for visit in visits:
        position = positions.get(visit.id)
        if visit.position != position:
            visit.position = position


def _being_called(visits: Sequence[Visit]) -> int | None:
    return rules.current_batch(
        (v.batch, PriorityClass(v.priority) if v.priority else None)
        for v in visits
        if v.called_at is not None and v.status != V.SKIPPED
    )


def visit_snapshot(visit: Visit) -> dict[str, Any]:
    return {
        "status": str(visit.status),
        "position": visit.position,
        "batch": visit.batch,
        "late": visit.late,
        "priority": visit.priority,
        "priority_reason": visit.priority_reason,
        "call_count": visit.call_count,
        "return_visit_needed": visit.return_visit_needed,
    }


def _audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    visit: Visit,
    before: dict[str, Any] | None,
    now: datetime,
    **extra: Any,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="visit",
        entity_id=visit.id,
        before=before,
        after={**visit_snapshot(visit), **extra},
        now=now,
    )


def event_of(visit: Visit, kind: QueueEventKind, *, at: datetime) -> QueueEvent:
    """The event an entry point publishes after committing a change to `visit`."""
    return QueueEvent(
        kind=kind,
        hospital_id=visit.hospital_id,
        session_id=visit.session_id,
        department_id=visit.department_id,
        visit_id=visit.id,
        queue_number=visit.queue_number,
        at=at,
    )


# --- the number a patient is shown ---------------------------------------------------------


async def walk_in_numbers(
    session: AsyncSession, *, appointment_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """The walk-in queue numbers (现1, 现2…) of those appointments that are walk-ins, by
    appointment. A walk-in's appointment keeps the sequence number its place was given, but
    the patient is called, and must be told, by the walk-in series; pages, slips and
    messages show `number_label` of what this returns."""
    if not appointment_ids:
        return {}
    rows = await session.execute(
        select(Visit.appointment_id, Visit.queue_number).where(
            Visit.appointment_id.in_(list(appointment_ids)), Visit.walk_in.is_(True)
        )
    )
    return {row.appointment_id: row.queue_number for row in rows}


def number_label(
    sequence_number: int,
    walk_in_number: int | None,
    *,
    locale: str = i18n.DEFAULT_LOCALE,
) -> str:
    """What the patient is shown as their number: the booked sequence number, or a walk-in's
    own number marked as such (`rules.queue_label`)."""
    if walk_in_number is None:
        return str(sequence_number)
    return rules.queue_label(walk_in_number, walk_in=True, locale=locale)


async def patient_number(
    session: AsyncSession, *, appointment_id: uuid.UUID, sequence_number: int, locale: str
) -> str:
    """`number_label` of one appointment."""
    walk_ins = await walk_in_numbers(session, appointment_ids=[appointment_id])
    return number_label(sequence_number, walk_ins.get(appointment_id), locale=locale)


# --- the ticket ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueTicket:
    """What the kiosk prints and the patient's phone shows."""

    visit_id: uuid.UUID
    appointment_id: uuid.UUID
    session_id: uuid.UUID
    queue_number: int
    status: VisitStatus
    room: str
    department: str
    doctor: str | None
    slot_start: time
    position: int | None
    people_ahead: int | None
    estimated_wait_minutes: int | None
    priority: PriorityClass | None
    late: bool
    checked_in_at: datetime
    walk_in: bool = False

    def label(self, locale: str) -> str:
        return rules.queue_label(self.queue_number, walk_in=self.walk_in, locale=locale)


@dataclass(frozen=True, slots=True)
class _SessionFacts:
    room: str
    department: str
    doctor: str | None
    slot_minutes: int
    places_per_slot: int


async def _session_facts(session: AsyncSession, *, session_id: uuid.UUID) -> _SessionFacts:
    row = (
        await session.execute(
            select(
                ClinicSession.room,
                Department.location,
                Department.name,
                Doctor.name,
                ClinicSession.slot_minutes,
                ClinicSession.capacity,
            )
            .join(Department, Department.id == ClinicSession.department_id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .where(ClinicSession.id == session_id)
        )
    ).one()
    slots = await session.scalar(
        select(func.count()).select_from(TimeSlot).where(TimeSlot.session_id == session_id)
    )
    places = max(1, -(-int(row[5]) // max(1, int(slots or 1))))
    return _SessionFacts(row[0] or row[1] or "", row[2], row[3], int(row[4]), places)


async def _durations(session: AsyncSession, *, visit: Visit) -> list[timedelta]:
    """Today's finished consultations of this doctor (of this session when booked to the
    department)."""
    scope = (
        (Visit.doctor_id == visit.doctor_id)
        if visit.doctor_id is not None
        else (Visit.session_id == visit.session_id)
    )
    rows = await session.execute(
        select(Visit.started_at, Visit.finished_at).where(
            scope,
            Visit.visit_date == visit.visit_date,
            Visit.status == V.FINISHED,
            Visit.started_at.is_not(None),
        )
    )
    return [finished - started for started, finished in rows if started and finished]


async def ticket(session: AsyncSession, *, visit: Visit, policy: rules.Policy) -> QueueTicket:
    facts = await _session_facts(session, session_id=visit.session_id)
    ahead: int | None = None
    wait: int | None = None
    if visit.status in IN_LINE and visit.position is not None:
        ahead = visit.position - 1
        wait = rules.whole_minutes(
            rules.estimated_wait(
                policy,
                ahead=ahead,
                durations=await _durations(session, visit=visit),
                slot_minutes=facts.slot_minutes,
                places_per_slot=facts.places_per_slot,
            )
        )
    elif visit.status in (V.CALLED, V.IN_CONSULTATION):
        ahead, wait = 0, 0
    return QueueTicket(
        visit_id=visit.id,
        appointment_id=visit.appointment_id,
        session_id=visit.session_id,
        queue_number=visit.queue_number,
        status=VisitStatus(visit.status),
        room=facts.room,
        department=facts.department,
        doctor=facts.doctor,
        slot_start=visit.slot_start,
        position=visit.position,
        people_ahead=ahead,
        estimated_wait_minutes=wait,
        priority=PriorityClass(visit.priority) if visit.priority else None,
        late=visit.late,
        checked_in_at=visit.checked_in_at,
        walk_in=visit.walk_in,
    )


async def get_visit(session: AsyncSession, *, hospital_id: uuid.UUID, visit_id: uuid.UUID) -> Visit:
    visit = await session.get(Visit, visit_id)
    if visit is None or visit.hospital_id != hospital_id:
        raise NotFound(what="visit")
    return visit


async def visit_ticket(session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID) -> QueueTicket:
    require_viewer(actor)
    visit = await get_visit(session, hospital_id=actor.hospital_id, visit_id=visit_id)
    return await ticket(
        session, visit=visit, policy=await load_policy(session, hospital_id=actor.hospital_id)
    )


# --- check-in -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckIn:
    visit: Visit
    ticket: QueueTicket
    # A second scan of a voucher already checked in: nothing changed, same ticket.
    already: bool


async def _check_in(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    now: datetime,
    walk_in: bool = False,
    priority: PriorityClass | None = None,
    priority_reason: str | None = None,
) -> CheckIn:
    hospital_id = actor.hospital_id
    session_id = await session.scalar(
        select(Appointment.session_id).where(
            Appointment.id == appointment_id, Appointment.hospital_id == hospital_id
        )
    )
    if session_id is None:
        raise NotFound(what="appointment")
    clinic = await _lock_queue(session, hospital_id=hospital_id, session_id=session_id)
    appointment = await booking_service.lock_appointment(
        session, hospital_id=hospital_id, appointment_id=appointment_id
    )
    policy = await load_policy(session, hospital_id=hospital_id)
    tz = await hospital_timezone(session, hospital_id=hospital_id)
    slot = (
        await session.execute(
            select(TimeSlot.ordinal, TimeSlot.start_time, TimeSlot.end_time).where(
                TimeSlot.id == appointment.slot_id
            )
        )
    ).one()
    facts = rules.CheckInFacts(
        status=AppointmentStatus(appointment.status),
        visit_date=appointment.visit_date,
        slot_start=slot[1],
        session_end=clinic.end_time,
        timezone=tz,
    )
    today = local_today(now, tz)
    if not rules.check_can_check_in(policy, facts, today=today, now=now, walk_in=walk_in):
        visit = await session.scalar(select(Visit).where(Visit.appointment_id == appointment.id))
        if visit is None:
            raise booking_rules.InvalidTransition(state=appointment.status, action="check_in")
        return CheckIn(visit, await ticket(session, visit=visit, policy=policy), already=True)
    rules.check_priority(policy, priority)
    if priority is None:
        birth_date = await session.scalar(
            select(Patient.birth_date).where(Patient.id == appointment.patient_id)
        )
        assert birth_date is not None
        priority = rules.automatic_priority(
            policy, birth_date=birth_date, visit_date=appointment.visit_date
        )

    visits = await _visits(session, session_id=session_id)
    # Numbered under the queue's lock: concurrent walk-ins of a session get 1, 2, 3….
    queue_number = (
        rules.next_walk_in_number(v.queue_number for v in visits if v.walk_in)
        if walk_in
        else appointment.sequence_number
    )
    late = rules.is_late(policy, slot_end=local_instant(facts.visit_date, slot[2], tz), now=now)
    batch = rules.joining_batch(
        rules.batch_of(policy, slot[0]), late=late, being_called=_being_called(visits)
    )
    visit = Visit(
        hospital_id=hospital_id,
        appointment_id=appointment.id,
        session_id=session_id,
        patient_id=appointment.patient_id,
        department_id=appointment.department_id,
        doctor_id=appointment.doctor_id,
        visit_date=appointment.visit_date,
        queue_number=queue_number,
        slot_ordinal=slot[0],
        slot_start=slot[1],
        walk_in=walk_in,
        status=V.WAITING,
        priority=priority,
        priority_reason=priority_reason,
        batch=batch,
        late=late,
        queued_at=now,
        checked_in_at=now,
        checked_in_by=actor.audit_name,
        call_count=0,
        skip_count=0,
        return_visit_needed=False,
        updated_at=now,
    )
    session.add(visit)
    await session.flush()
    visits.append(visit)
    _write_line(visits, rules.join(policy, _line(visits), _entry(visit)))

    await booking_service.change_status(
        session, actor=actor, appointment=appointment, action="check_in", now=now
    )
    _audit(session, actor=actor, action="check_in", visit=visit, before=None, now=now)
    await session.flush()
    return CheckIn(visit, await ticket(session, visit=visit, policy=policy), already=False)


async def check_in_by_token(
    session: AsyncSession, *, actor: Actor, token: str, signer: TokenSigner, now: datetime
) -> CheckIn:
    """Checks in the appointment a scanned voucher names (kiosk or desk)."""
    require_check_in(actor)
    try:
        payload = signer.verify(token.strip(), now=now)
    except InvalidToken as error:
        if str(error) == "expired":
            raise rules.VoucherExpired() from None
        raise rules.VoucherInvalid() from None
    appointment_id = rules.voucher_appointment_id(payload, hospital_id=actor.hospital_id)
    try:
        return await _check_in(session, actor=actor, appointment_id=appointment_id, now=now)
    except NotFound:
        raise rules.VoucherInvalid() from None


class CodeNotMatched(rules.VoucherInvalid):
    """A short code and phone digits that match no appointment; counted per client."""


async def check_in_by_code(
    session: AsyncSession,
    *,
    actor: Actor,
    code: str,
    phone_last4: str,
    client: str,
    now: datetime,
) -> CheckIn:
    """Checks in by the 8-digit short code and the last four digits of the patient's phone.

    A client with too many wrong guesses recently is refused (``too_many_attempts``) before
    anything is looked up; the entry point records each wrong guess with
    :func:`record_code_failure` in a transaction of its own, after this one rolled back.
    """
    require_check_in(actor)
    policy = await load_policy(session, hospital_id=actor.hospital_id)
    since = now - timedelta(minutes=policy.code_lockout_minutes)
    code = code.strip()
    client_failures = await session.scalars(
        select(CheckInFailure.at).where(
            CheckInFailure.hospital_id == actor.hospital_id,
            CheckInFailure.client == client,
            CheckInFailure.at > since,
        )
    )
    code_failures = await session.scalars(
        select(CheckInFailure.at).where(
            CheckInFailure.hospital_id == actor.hospital_id,
            CheckInFailure.code == code,
            CheckInFailure.at > since,
        )
    )
    rules.check_attempts(
        policy,
        client_failures=list(client_failures),
        code_failures=list(code_failures),
        now=now,
    )
    row = (
        await session.execute(
            select(Appointment.id, Patient.phone_masked)
            .join(Patient, Patient.id == Appointment.patient_id)
            .where(
                Appointment.hospital_id == actor.hospital_id,
                Appointment.voucher_code == code,
            )
        )
    ).one_or_none()
    if row is None or not rules.phone_digits_match(row[1], phone_last4):
        raise CodeNotMatched()
    return await _check_in(session, actor=actor, appointment_id=row[0], now=now)


async def record_code_failure(
    session: AsyncSession, *, hospital_id: uuid.UUID, client: str, code: str, now: datetime
) -> None:
    session.add(
        CheckInFailure(hospital_id=hospital_id, client=client[:120], code=code.strip()[:20], at=now)
    )
    await session.flush()


async def check_in(
    session: AsyncSession, *, actor: Actor, appointment_id: uuid.UUID, now: datetime
) -> CheckIn:
    """The desk checks in an appointment it found with :func:`find_for_desk`."""
    require_staff(actor, *DESK_ROLES)
    return await _check_in(session, actor=actor, appointment_id=appointment_id, now=now)


async def walk_in(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
    priority: PriorityClass | None = None,
    priority_reason: str | None = None,
    payment_reference: str | None = None,
) -> CheckIn:
    """Registers a patient standing at the desk into the on-site pool and checks them in at
    once; they share the queue with booked patients. A fee is taken at the desk: pass the
    payment reference, or the walk-in is refused unpaid (nothing booked)."""
    require_staff(actor, *DESK_ROLES)
    if priority is not None and not priority_reason:
        raise _reason_required()
    booked = await booking_service.book(
        session, actor=actor, patient_id=patient_id, session_id=session_id, slot_id=slot_id, now=now
    )
    appointment = booked.appointment
    if appointment.status == AppointmentStatus.HELD:
        if not payment_reference:
            raise rules.AppointmentUnpaid()
        await booking_service.confirm_payment(
            session,
            actor=actor,
            appointment_id=appointment.id,
            paid_fen=appointment.fee_fen,
            payment_reference=payment_reference,
            now=now,
        )
    return await _check_in(
        session,
        actor=actor,
        appointment_id=appointment.id,
        now=now,
        walk_in=True,
        priority=priority,
        priority_reason=priority_reason,
    )


def _reason_required() -> ValidationFailed:
    return ValidationFailed(
        errors=[{"field": "reason", "message": "a reason is required"}], summary="reason"
    )


# --- the desk -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeskMatch:
    """One of today's appointments the desk found."""

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    phone_masked: str
    id_masked: str
    session_id: uuid.UUID
    department: str
    doctor: str | None
    slot_start: time
    queue_number: int
    appointment_status: AppointmentStatus
    visit_id: uuid.UUID | None
    visit_status: VisitStatus | None
    walk_in: bool = False

    def label(self, locale: str) -> str:
        return rules.queue_label(self.queue_number, walk_in=self.walk_in, locale=locale)


_CODE = re.compile(r"\d{8}")
_MOBILE = re.compile(r"(\+?86)?1\d{10}")


async def find_for_desk(
    session: AsyncSession,
    *,
    actor: Actor,
    query: str,
    cipher: FieldCipher,
    signer: TokenSigner,
    now: datetime,
    source: ReadSource,
) -> list[DeskMatch]:
    """Today's appointments for a voucher token, a short code, an ID number (blind index) or
    a mobile number (blind index). Nothing found is an empty list. The look-up is logged
    with the patients found and the kind of search, never what was typed (the caller runs
    it in a write transaction for that one INSERT)."""
    found = await _find_for_desk(
        session, actor=actor, query=query, cipher=cipher, signer=signer, now=now
    )
    record_read(
        session,
        actor=actor,
        kind=ReadKind.LOOKUP,
        patient_ids=[m.patient_id for m in found],
        source=source,
        now=now,
        by=_desk_search_kind(query),
        found=len(found),
    )
    return found


def _desk_search_kind(query: str) -> str:
    text = query.strip()
    if "." in text:
        return "voucher"
    text = re.sub(r"[\s\-]", "", text)
    if _CODE.fullmatch(text):
        return "voucher_code"
    if _MOBILE.fullmatch(text):
        return "phone"
    return "document"


async def _find_for_desk(
    session: AsyncSession,
    *,
    actor: Actor,
    query: str,
    cipher: FieldCipher,
    signer: TokenSigner,
    now: datetime,
) -> list[DeskMatch]:
    require_staff(actor, *DESK_ROLES)
    text = query.strip()
    if "." not in text:
        # People type numbers with spaces and dashes; a voucher token has neither.
        text = re.sub(r"[\s\-]", "", text)
    tz = await hospital_timezone(session, hospital_id=actor.hospital_id)
    today = local_today(now, tz)
    condition: Any
    if "." in text:
        try:
            payload = signer.verify(text, now=now)
            condition = Appointment.id == rules.voucher_appointment_id(
                payload, hospital_id=actor.hospital_id
            )
        except (InvalidToken, rules.VoucherInvalid):
            return []
    elif _CODE.fullmatch(text):
        condition = Appointment.voucher_code == text
    elif _MOBILE.fullmatch(text):
        condition = Patient.phone_index.in_(patient_service.phone_indexes(cipher, text[-11:]))
    else:
        indexes = []
        for id_type in IdType:
            try:
                patient = await patient_service.find_by_identity(
                    session,
                    hospital_id=actor.hospital_id,
                    cipher=cipher,
                    id_type=id_type,
                    id_number=text,
                    today=today,
                )
            except YuyueError:
                # Not a valid number of this document type.
                continue
            if patient is not None:
                indexes.append(patient.id)
        if not indexes:
            return []
        condition = Appointment.patient_id.in_(indexes)
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Patient.name,
            Patient.phone_masked,
            Patient.id_masked,
            Appointment.session_id,
            Department.name,
            Doctor.name,
            TimeSlot.start_time,
            Appointment.sequence_number,
            Appointment.status,
            Visit.id,
            Visit.status,
            Visit.queue_number,
            Visit.walk_in,
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Department, Department.id == Appointment.department_id)
        .outerjoin(Doctor, Doctor.id == Appointment.doctor_id)
        .join(TimeSlot, TimeSlot.id == Appointment.slot_id)
        .outerjoin(Visit, Visit.appointment_id == Appointment.id)
        .where(
            condition,
            Appointment.hospital_id == actor.hospital_id,
            Appointment.visit_date == today,
            Appointment.status.in_(
                [
                    AppointmentStatus.BOOKED,
                    AppointmentStatus.HELD,
                    AppointmentStatus.CHECKED_IN,
                    AppointmentStatus.COMPLETED,
                ]
            ),
        )
        .order_by(TimeSlot.start_time, Appointment.sequence_number)
        .limit(50)
    )
    return [
        DeskMatch(
            appointment_id=r[0],
            patient_id=r[1],
            patient_name=r[2],
            phone_masked=r[3],
            id_masked=r[4],
            session_id=r[5],
            department=r[6],
            doctor=r[7],
            slot_start=r[8],
            # A walk-in's number is the visit's (its own series), not the appointment's.
            queue_number=r[13] if r[13] is not None else r[9],
            appointment_status=AppointmentStatus(r[10]),
            visit_id=r[11],
            visit_status=VisitStatus(r[12]) if r[12] else None,
            walk_in=bool(r[14]),
        )
        for r in rows
    ]


# --- the queue: triage and calling --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Locked:
    visit: Visit
    visits: list[Visit]
    policy: rules.Policy


async def _lock_visit(session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID) -> _Locked:
    """Locks the visit's queue, then reads the queue's visits fresh."""
    session_id = await session.scalar(
        select(Visit.session_id).where(Visit.id == visit_id, Visit.hospital_id == actor.hospital_id)
    )
    if session_id is None:
        raise NotFound(what="visit")
    clinic = await _lock_queue(session, hospital_id=actor.hospital_id, session_id=session_id)
    await _check_own_session(session, actor=actor, clinic=clinic)
    visits = await _visits(session, session_id=session_id)
    visit = next(v for v in visits if v.id == visit_id)
    return _Locked(visit, visits, await load_policy(session, hospital_id=actor.hospital_id))


def _called(visit: Visit, action: str, *, now: datetime) -> None:
    visit.status = rules.visit_transition(VisitStatus(visit.status), action)
    visit.called_at = now
    visit.call_count += 1
    visit.updated_at = now


async def call_next(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID, now: datetime
) -> Visit:
    """Calls the first visit in line (叫号)."""
    require_staff(actor, *CALLING_ROLES)
    clinic = await _lock_queue(session, hospital_id=actor.hospital_id, session_id=session_id)
    await _check_own_session(session, actor=actor, clinic=clinic)
    visits = await _visits(session, session_id=session_id)
    line = _line(visits)
    if not line:
        raise rules.QueueEmpty()
    visit = next(v for v in visits if v.id == line[0].visit_id)
    before = visit_snapshot(visit)
    _called(visit, "call", now=now)
    _write_line(visits, line[1:])
    _audit(session, actor=actor, action="call", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def _call_visit(
    session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime
) -> Visit:
    require_staff(actor, *CALLING_ROLES)
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    before = visit_snapshot(visit)
    action = "recall" if visit.status != V.WAITING else "call"
    _called(visit, action, now=now)
    _write_line(locked.visits, rules.leave(_line(locked.visits), visit.id))
    _audit(session, actor=actor, action=action, visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def call(session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime) -> Visit:
    """Calls this visit now, out of turn if it is waiting (the doctor's choice)."""
    return await _call_visit(session, actor=actor, visit_id=visit_id, now=now)


async def recall(
    session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime
) -> Visit:
    """Calls a called or skipped patient again; a skipped one leaves the line."""
    return await _call_visit(session, actor=actor, visit_id=visit_id, now=now)


async def skip(session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime) -> Visit:
    """过号: a called patient who did not come goes back by the late rule (the end of the
    batch being called) and can be recalled."""
    require_staff(actor, *CALLING_ROLES)
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    before = visit_snapshot(visit)
    visit.status = rules.visit_transition(VisitStatus(visit.status), "skip")
    visit.skip_count += 1
    visit.late = True
    visit.batch = rules.joining_batch(
        visit.batch, late=True, being_called=_being_called(locked.visits)
    )
    visit.queued_at = now
    visit.updated_at = now
    _write_line(locked.visits, rules.join(locked.policy, _line(locked.visits), _entry(visit)))
    _audit(session, actor=actor, action="skip", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def start(
    session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime
) -> Visit:
    """The called patient came in: the consultation starts."""
    require_staff(actor, *CALLING_ROLES)
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    before = visit_snapshot(visit)
    visit.status = rules.visit_transition(VisitStatus(visit.status), "start")
    visit.started_at = now
    visit.updated_at = now
    _audit(session, actor=actor, action="start", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def finish(
    session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, now: datetime
) -> Visit:
    """The consultation ends; the appointment is completed."""
    require_staff(actor, *CALLING_ROLES)
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    before = visit_snapshot(visit)
    visit.status = rules.visit_transition(VisitStatus(visit.status), "finish")
    visit.finished_at = now
    visit.updated_at = now
    appointment = await booking_service.lock_appointment(
        session, hospital_id=visit.hospital_id, appointment_id=visit.appointment_id
    )
    await booking_service.change_status(
        session, actor=actor, appointment=appointment, action="complete", now=now
    )
    _audit(session, actor=actor, action="finish", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def mark_return_visit(
    session: AsyncSession, *, actor: Actor, visit_id: uuid.UUID, needed: bool, now: datetime
) -> Visit:
    """回诊: the doctor wants the patient back today with results (or no longer does)."""
    require_staff(actor, *CALLING_ROLES)
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    before = visit_snapshot(visit)
    rules.visit_transition(VisitStatus(visit.status), "mark_return_visit")
    visit.return_visit_needed = needed
    visit.updated_at = now
    _audit(session, actor=actor, action="return_visit", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def set_priority(
    session: AsyncSession,
    *,
    actor: Actor,
    visit_id: uuid.UUID,
    priority: PriorityClass | None,
    reason: str,
    now: datetime,
) -> Visit:
    """The triage nurse marks (or clears) a priority class with a reason; the visit takes
    its new place in line by the rules."""
    require_staff(actor, *TRIAGE_ROLES)
    if not reason.strip():
        raise _reason_required()
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    rules.visit_transition(VisitStatus(visit.status), "set_priority")
    rules.check_priority(locked.policy, priority)
    before = visit_snapshot(visit)
    visit.priority = priority
    visit.priority_reason = reason.strip()
    visit.updated_at = now
    line = rules.leave(_line(locked.visits), visit.id)
    _write_line(locked.visits, rules.join(locked.policy, line, _entry(visit)))
    _audit(session, actor=actor, action="priority", visit=visit, before=before, now=now)
    await session.flush()
    return visit


async def move(
    session: AsyncSession,
    *,
    actor: Actor,
    visit_id: uuid.UUID,
    before: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    reason: str,
    now: datetime,
) -> Visit:
    """The nurse puts a waiting visit directly before or after another one of the same
    queue, with a recorded reason. Two nurses moving at once are applied one after the
    other under the queue's lock; the line stays consistent."""
    require_staff(actor, *TRIAGE_ROLES)
    if not reason.strip():
        raise _reason_required()
    locked = await _lock_visit(session, actor=actor, visit_id=visit_id)
    visit = locked.visit
    rules.visit_transition(VisitStatus(visit.status), "move")
    snapshot = visit_snapshot(visit)
    line = rules.move(_line(locked.visits), visit.id, before=before, after=after)
    _write_line(locked.visits, line)
    visit.moved_reason = reason.strip()
    visit.moved_at = now
    visit.updated_at = now
    _audit(
        session,
        actor=actor,
        action="move",
        visit=visit,
        before=snapshot,
        now=now,
        reason=visit.moved_reason,
        before_visit=str(before) if before else None,
        after_visit=str(after) if after else None,
    )
    await session.flush()
    return visit


# --- views for pages and screens ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueRow:
    visit_id: uuid.UUID
    queue_number: int
    patient_name: str
    status: VisitStatus
    position: int | None
    slot_start: time
    priority: PriorityClass | None
    priority_reason: str | None
    late: bool
    walk_in: bool
    call_count: int
    return_visit_needed: bool
    checked_in_at: datetime
    called_at: datetime | None

    def label(self, locale: str) -> str:
        return rules.queue_label(self.queue_number, walk_in=self.walk_in, locale=locale)


@dataclass(frozen=True, slots=True)
class QueueView:
    """One session's queue as the doctor and the desk see it."""

    session_id: uuid.UUID
    date: date
    room: str
    department: str
    doctor: str | None
    # In the room or called, the newest call first.
    current: list[QueueRow]
    # The line, in order.
    waiting: list[QueueRow]
    finished: list[QueueRow]
    estimated_minutes_per_patient: int


async def _rows(session: AsyncSession, visits: Sequence[Visit], *, masked: bool) -> list[QueueRow]:
    names = dict(
        (
            await session.execute(
                select(Patient.id, Patient.name).where(
                    Patient.id.in_({v.patient_id for v in visits})
                )
            )
        ).all()
    )
    return [
        QueueRow(
            visit_id=v.id,
            queue_number=v.queue_number,
            patient_name=mask_name(names[v.patient_id]) if masked else names[v.patient_id],
            status=VisitStatus(v.status),
            position=v.position,
            slot_start=v.slot_start,
            priority=PriorityClass(v.priority) if v.priority else None,
            priority_reason=v.priority_reason,
            late=v.late,
            walk_in=v.walk_in,
            call_count=v.call_count,
            return_visit_needed=v.return_visit_needed,
            checked_in_at=v.checked_in_at,
            called_at=v.called_at,
        )
        for v in visits
    ]


def _split(visits: Sequence[Visit]) -> tuple[list[Visit], list[Visit], list[Visit]]:
    current = sorted(
        (v for v in visits if v.status in (V.CALLED, V.IN_CONSULTATION)),
        key=lambda v: v.called_at or v.checked_in_at,
        reverse=True,
    )
    waiting = sorted(
        (v for v in visits if v.status in IN_LINE and v.position is not None),
        key=lambda v: v.position or 0,
    )
    finished = sorted(
        (v for v in visits if v.status == V.FINISHED), key=lambda v: v.finished_at or v.updated_at
    )
    return current, waiting, finished


async def queue_view(session: AsyncSession, *, actor: Actor, session_id: uuid.UUID) -> QueueView:
    require_viewer(actor)
    clinic = await session.scalar(
        select(ClinicSession).where(
            ClinicSession.id == session_id, ClinicSession.hospital_id == actor.hospital_id
        )
    )
    if clinic is None:
        raise NotFound(what="session")
    masked = actor.kind is not ActorKind.STAFF
    facts = await _session_facts(session, session_id=session_id)
    visits = await _visits(session, session_id=session_id)
    current, waiting, finished = _split(visits)
    policy = await load_policy(session, hospital_id=actor.hospital_id)
    durations = await _durations(session, visit=visits[0]) if visits else []
    pace = rules.estimated_wait(
        policy,
        ahead=1,
        durations=durations,
        slot_minutes=facts.slot_minutes,
        places_per_slot=facts.places_per_slot,
    )
    return QueueView(
        session_id=clinic.id,
        date=clinic.date,
        room=facts.room,
        department=facts.department,
        doctor=facts.doctor,
        current=await _rows(session, current, masked=masked),
        waiting=await _rows(session, waiting, masked=masked),
        finished=await _rows(session, finished, masked=masked),
        estimated_minutes_per_patient=rules.whole_minutes(pace),
    )


@dataclass(frozen=True, slots=True)
class AwaitedRow:
    """A booking of the session not checked in yet, for the end of the desk's list."""

    appointment_id: uuid.UUID
    sequence_number: int
    patient_name: str
    slot_start: time
    status: AppointmentStatus


async def not_arrived(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID
) -> list[AwaitedRow]:
    """The session's booked (or held) patients who have not checked in, by sequence
    number: the last part of the list a triage nurse reads, after the room and the line."""
    require_staff(actor, *DESK_ROLES)
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.sequence_number,
            Patient.name,
            TimeSlot.start_time,
            Appointment.status,
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(TimeSlot, TimeSlot.id == Appointment.slot_id)
        .outerjoin(Visit, Visit.appointment_id == Appointment.id)
        .where(
            Appointment.session_id == session_id,
            Appointment.hospital_id == actor.hospital_id,
            Appointment.status.in_([AppointmentStatus.BOOKED, AppointmentStatus.HELD]),
            Visit.id.is_(None),
        )
        .order_by(Appointment.sequence_number)
    )
    return [AwaitedRow(r[0], r[1], r[2], r[3], AppointmentStatus(r[4])) for r in rows]


@dataclass(frozen=True, slots=True)
class BoardRoom:
    session_id: uuid.UUID
    room: str
    doctor: str | None
    current: list[QueueRow]
    next: list[QueueRow]


async def department_board(
    session: AsyncSession,
    *,
    actor: Actor,
    department_id: uuid.UUID,
    day: date,
    next_count: int = 3,
    at: time | None = None,
) -> list[BoardRoom]:
    """The waiting-room screen: per room, who is called now and the next few, names masked.
    With `at` (the local time of day), only the sessions on the screen then
    (`rules.on_screen`)."""
    require_viewer(actor)
    sessions = (
        await session.execute(
            select(ClinicSession.id, ClinicSession.start_time, ClinicSession.end_time)
            .where(
                ClinicSession.hospital_id == actor.hospital_id,
                ClinicSession.department_id == department_id,
                ClinicSession.date == day,
            )
            .order_by(ClinicSession.start_time, ClinicSession.room)
        )
    ).all()
    rooms: list[BoardRoom] = []
    for session_id, start_time, end_time in sessions:
        current, waiting, _finished = _split(await _visits(session, session_id=session_id))
        if at is not None and not rules.on_screen(
            start=start_time, end=end_time, now=at, busy=bool(current or waiting)
        ):
            continue
        facts = await _session_facts(session, session_id=session_id)
        rooms.append(
            BoardRoom(
                session_id=session_id,
                room=facts.room,
                doctor=facts.doctor,
                current=await _rows(session, current, masked=True),
                next=await _rows(session, waiting[:next_count], masked=True),
            )
        )
    return rooms
