"""Booking use cases. Each runs inside the caller's transaction and never commits.

Lock order, the same everywhere so that transactions wait rather than deadlock:
patient row → slot_pool row → appointment row. (Stop-clinic takes pools then appointments;
the rare deadlock against a concurrent cancel is retried whole by ``Database.transact``.)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules
from yuyue.booking.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    BlacklistEntry,
    CancelReason,
    IdempotencyRecord,
)
from yuyue.kit.errors import NotFound
from yuyue.notifications.models import MessageKind
from yuyue.notifications.service import enqueue
from yuyue.patients.models import Patient
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    SessionStatus,
    SlotPool,
    TimeSlot,
)
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.models import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

S = AppointmentStatus


# --- loading facts -------------------------------------------------------------------------


def policy_from_row(row: BookingPolicy | None) -> rules.Policy:
    if row is None:
        return rules.Policy()
    return rules.Policy(**{f: getattr(row, f) for f in rules.Policy.__dataclass_fields__})


async def load_policy(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID | None
) -> rules.Policy:
    rows = (
        await session.scalars(
            select(BookingPolicy).where(
                BookingPolicy.hospital_id == hospital_id,
                (BookingPolicy.department_id == department_id)
                | BookingPolicy.department_id.is_(None),
            )
        )
    ).all()
    chosen = next((r for r in rows if r.department_id is not None), None) or next(iter(rows), None)
    return policy_from_row(chosen)


@dataclass(frozen=True, slots=True)
class LoadedSession:
    row: ClinicSession
    department: Department
    timezone: str

    @property
    def facts(self) -> rules.SessionFacts:
        s = self.row
        return rules.SessionFacts(
            id=s.id,
            date=s.date,
            start_time=s.start_time,
            end_time=s.end_time,
            department_id=s.department_id,
            doctor_id=s.doctor_id,
            status=SessionStatus(s.status),
            timezone=self.timezone,
        )


async def load_session(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_id: uuid.UUID
) -> LoadedSession:
    row = (
        await session.execute(
            select(ClinicSession, Department, Hospital.timezone)
            .join(Department, Department.id == ClinicSession.department_id)
            .join(Hospital, Hospital.id == ClinicSession.hospital_id)
            .where(ClinicSession.id == session_id, ClinicSession.hospital_id == hospital_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(what="session")
    return LoadedSession(row[0], row[1], row[2])


def local_today(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


async def lock_patient(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_id: uuid.UUID
) -> Patient:
    # Serialises one patient's concurrent requests so limits hold (SQLite: the write lock).
    patient = await session.scalar(
        select(Patient)
        .where(Patient.id == patient_id, Patient.hospital_id == hospital_id)
        .with_for_update()
    )
    if patient is None:
        raise NotFound(what="patient")
    return patient


async def _existing_bookings(
    session: AsyncSession, *, patient_id: uuid.UUID, now: datetime
) -> list[rules.BookingFacts]:
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.session_id,
            Appointment.visit_date,
            Appointment.department_id,
            Appointment.doctor_id,
            Appointment.status,
            Appointment.created_at,
            Appointment.cancel_reason,
        ).where(
            Appointment.patient_id == patient_id,
            (Appointment.created_at > now - timedelta(days=90))
            | Appointment.status.in_(ACTIVE_STATUSES),
        )
    )
    return [
        rules.BookingFacts(r[0], r[1], r[2], r[3], r[4], AppointmentStatus(r[5]), r[6], r[7])
        for r in rows
    ]


async def _blacklist(
    session: AsyncSession, *, patient_id: uuid.UUID, now: datetime
) -> list[rules.BlacklistFacts]:
    rows = await session.execute(
        select(
            BlacklistEntry.starts_at,
            BlacklistEntry.ends_at,
            BlacklistEntry.lifted_at,
            BlacklistEntry.reason,
        ).where(BlacklistEntry.patient_id == patient_id, BlacklistEntry.ends_at > now)
    )
    return [rules.BlacklistFacts(*r) for r in rows]


# --- the claim ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedPlace:
    pool_id: uuid.UUID
    slot_id: uuid.UUID
    first_number: int
    capacity: int


def _free_places(session_id: uuid.UUID, pools: Sequence[str], slot_id: uuid.UUID | None) -> Any:
    """One open pool row of the session with a place left for these pools."""
    query = select(SlotPool.id).where(
        SlotPool.session_id == session_id,
        SlotPool.pool.in_(pools),
        SlotPool.taken < SlotPool.capacity,
        SlotPool.is_open.is_(True),
    )
    if slot_id is not None:
        query = query.where(SlotPool.slot_id == slot_id)
    return query.limit(1)


async def claim_place(
    session: AsyncSession, *, session_id: uuid.UUID, pools: Sequence[str], slot_id: uuid.UUID | None
) -> ClaimedPlace | None:
    """Takes the earliest free place of the given pools with one conditional UPDATE.

    `taken < capacity` is re-checked on the row the UPDATE locks, so two claimers can never
    both take the last place; the loser moves on to the next candidate row.
    """
    candidate = _free_places(session_id, pools, slot_id).order_by(
        SlotPool.slot_ordinal, SlotPool.first_number
    )
    for _ in range(256):
        pool_id = await session.scalar(candidate)
        if pool_id is None:
            return None
        claimed = (
            await session.execute(
                update(SlotPool)
                .where(
                    SlotPool.id == pool_id,
                    SlotPool.taken < SlotPool.capacity,
                    SlotPool.is_open.is_(True),
                )
                .values(taken=SlotPool.taken + 1)
                .returning(SlotPool.id, SlotPool.slot_id, SlotPool.first_number, SlotPool.capacity)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if claimed is not None:
            return ClaimedPlace(claimed[0], claimed[1], claimed[2], claimed[3])
    return None


async def _has_free_place(
    session: AsyncSession, *, session_id: uuid.UUID, pools: Sequence[str], slot_id: uuid.UUID | None
) -> bool:
    return await session.scalar(_free_places(session_id, pools, slot_id)) is not None


async def _release_expired_or_refuse(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """Returns places of holds past their deadline, so an unpaid hold never keeps a place
    from a real patient whether or not the sweep has run; refuses when none come back."""
    if await expire_holds(session, actor=actor, now=now, session_id=session_id):
        return
    session_status = await session.scalar(
        select(ClinicSession.status).where(ClinicSession.id == session_id)
    )
    if session_status != SessionStatus.OPEN:
        raise rules.SessionStopped()
    raise rules.SoldOut(session_id=str(session_id), slot_id=str(slot_id) if slot_id else None)


async def _return_place(session: AsyncSession, pool_id: uuid.UUID) -> None:
    await session.execute(
        update(SlotPool)
        .where(SlotPool.id == pool_id)
        .values(taken=SlotPool.taken - 1)
        .execution_options(synchronize_session=False)
    )


async def _next_number(session: AsyncSession, place: ClaimedPlace) -> int:
    # We hold the pool row's lock, so no one else numbers places of this pool meanwhile.
    used = await session.scalars(
        select(Appointment.sequence_number).where(
            Appointment.pool_id == place.pool_id, Appointment.status.in_(ACTIVE_STATUSES)
        )
    )
    return rules.lowest_free_number(place.first_number, place.capacity, used)


def snapshot(appointment: Appointment) -> dict[str, Any]:
    """The audit trail's before/after picture of an appointment."""
    return {
        "status": str(appointment.status),
        "session_id": str(appointment.session_id),
        "slot_id": str(appointment.slot_id),
        "sequence_number": appointment.sequence_number,
        "hold_expires_at": appointment.hold_expires_at.isoformat()
        if appointment.hold_expires_at
        else None,
        "cancel_reason": appointment.cancel_reason,
    }


def _message_payload(
    appointment: Appointment, loaded: LoadedSession, slot: TimeSlot | None = None
) -> dict[str, Any]:
    return {
        "appointment_id": str(appointment.id),
        "date": loaded.row.date.isoformat(),
        "period": str(loaded.row.period),
        "department": loaded.department.name,
        "location": loaded.department.location,
        "sequence_number": appointment.sequence_number,
        "slot_start": slot.start_time.strftime("%H:%M") if slot else None,
        "voucher_code": appointment.voucher_code,
    }


# --- use cases ----------------------------------------------------------------------------


async def book(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
    replacing: uuid.UUID | None = None,
) -> Appointment:
    """Checks every rule, claims one place and records the appointment (held or booked)."""
    patient = await lock_patient(session, hospital_id=actor.hospital_id, patient_id=patient_id)
    loaded = await load_session(session, hospital_id=actor.hospital_id, session_id=session_id)
    facts = loaded.facts
    policy = await load_policy(
        session, hospital_id=actor.hospital_id, department_id=facts.department_id
    )
    rules.check_session_open(facts)
    rules.check_window(policy, facts, channel=actor.channel, now=now)
    rules.check_demographics(
        department_name=loaded.department.name,
        min_age=loaded.department.min_age_years,
        max_age=loaded.department.max_age_years,
        sex_restriction=loaded.department.sex_restriction,
        birth_date=patient.birth_date,
        sex=patient.sex,
        visit_date=facts.date,
    )
    slot: TimeSlot | None = None
    if slot_id is not None:
        slot = await session.get(TimeSlot, slot_id)
        if slot is None or slot.session_id != session_id:
            raise NotFound(what="slot")
    pools = pools_for_channel(actor.channel)
    # At the release peak most requests are for places already gone: one cheap probe
    # answers them before the per-patient queries below.
    if not await _has_free_place(session, session_id=session_id, pools=pools, slot_id=slot_id):
        if replacing is None and await session.scalar(
            select(Appointment.id).where(
                Appointment.patient_id == patient.id,
                Appointment.session_id == session_id,
                Appointment.status.in_(ACTIVE_STATUSES),
            )
        ):
            raise rules.AlreadyBooked()
        await _release_expired_or_refuse(
            session, actor=actor, session_id=session_id, slot_id=slot_id, now=now
        )

    rules.check_not_blacklisted(
        await _blacklist(session, patient_id=patient.id, now=now),
        channel=actor.channel,
        now=now,
        tz=facts.timezone,
    )
    rules.check_limits(
        policy,
        facts,
        await _existing_bookings(session, patient_id=patient.id, now=now),
        now=now,
        today=local_today(now, facts.timezone),
        replacing=replacing,
    )
    place = await claim_place(session, session_id=session_id, pools=pools, slot_id=slot_id)
    if place is None:
        await _release_expired_or_refuse(
            session, actor=actor, session_id=session_id, slot_id=slot_id, now=now
        )
        place = await claim_place(session, session_id=session_id, pools=pools, slot_id=slot_id)
    if place is None:
        raise rules.SoldOut(session_id=str(session_id), slot_id=str(slot_id) if slot_id else None)

    if replacing is not None:
        await _cancel_locked(
            session,
            actor=actor,
            appointment=await _lock_appointment(
                session, hospital_id=actor.hospital_id, appointment_id=replacing
            ),
            reason=CancelReason.RESCHEDULED,
            note=None,
            now=now,
            notify=False,
        )
    if slot is None or slot.id != place.slot_id:
        slot = await session.get(TimeSlot, place.slot_id)
    status = rules.initial_status(loaded.row.fee_fen)
    appointment = Appointment(
        hospital_id=actor.hospital_id,
        patient_id=patient.id,
        session_id=session_id,
        slot_id=place.slot_id,
        pool_id=place.pool_id,
        department_id=facts.department_id,
        doctor_id=facts.doctor_id,
        visit_date=facts.date,
        channel=actor.channel.value,
        status=status,
        sequence_number=await _next_number(session, place),
        fee_fen=loaded.row.fee_fen,
        voucher_code=f"{secrets.randbelow(10**8):08d}",
        hold_expires_at=now + timedelta(minutes=policy.hold_minutes) if status is S.HELD else None,
        booked_at=now if status is S.BOOKED else None,
        rescheduled_from_id=replacing,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="reschedule" if replacing else "book",
        entity_type="appointment",
        entity_id=appointment.id,
        before=None,
        after=snapshot(appointment),
        now=now,
    )
    kind = (
        MessageKind.RESCHEDULED
        if replacing
        else MessageKind.BOOKING_CONFIRMED
        if status is S.BOOKED
        else MessageKind.BOOKING_HELD
    )
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=kind,
        patient_id=patient.id,
        appointment_id=appointment.id,
        payload=_message_payload(appointment, loaded, slot),
        now=now,
    )
    return appointment


async def _lock_appointment(
    session: AsyncSession, *, hospital_id: uuid.UUID, appointment_id: uuid.UUID
) -> Appointment:
    appointment = await session.scalar(
        select(Appointment)
        .where(Appointment.id == appointment_id, Appointment.hospital_id == hospital_id)
        .with_for_update()
    )
    if appointment is None:
        raise NotFound(what="appointment")
    return appointment


async def _cancel_locked(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment: Appointment,
    reason: CancelReason,
    note: str | None,
    now: datetime,
    notify: bool = True,
) -> None:
    before = snapshot(appointment)
    appointment.status = rules.transition(AppointmentStatus(appointment.status), "cancel")
    appointment.cancelled_at = now
    appointment.cancel_reason = reason.value
    appointment.cancel_note = note
    appointment.updated_at = now
    await _return_place(session, appointment.pool_id)
    record_audit(
        session,
        actor=actor,
        action="cancel",
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after=snapshot(appointment),
        now=now,
    )
    if notify:
        enqueue(
            session,
            hospital_id=appointment.hospital_id,
            kind=MessageKind.STOP_CLINIC
            if reason is CancelReason.STOP_CLINIC
            else MessageKind.CANCELLED,
            patient_id=appointment.patient_id,
            appointment_id=appointment.id,
            payload={"appointment_id": str(appointment.id), "reason": reason.value, "note": note},
            now=now,
        )


async def cancel(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    note: str | None,
    now: datetime,
) -> Appointment:
    """Cancels within the deadline and returns the place to its pool at once."""
    appointment = await _lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    loaded = await load_session(
        session, hospital_id=actor.hospital_id, session_id=appointment.session_id
    )
    policy = await load_policy(
        session, hospital_id=actor.hospital_id, department_id=loaded.row.department_id
    )
    by_staff = actor.has_role(Role.REGISTRAR)
    rules.check_cancellable(
        policy, loaded.facts, AppointmentStatus(appointment.status), now=now, by_staff=by_staff
    )
    await _cancel_locked(
        session,
        actor=actor,
        appointment=appointment,
        reason=CancelReason.STAFF if by_staff else CancelReason.PATIENT,
        note=note,
        now=now,
    )
    return appointment


async def reschedule(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
) -> Appointment:
    """Claims the new place before giving up the old one, in one transaction: if the new
    place is gone the patient keeps the old booking untouched."""
    current = await session.get(Appointment, appointment_id)
    if current is None or current.hospital_id != actor.hospital_id:
        raise NotFound(what="appointment")
    loaded = await load_session(
        session, hospital_id=actor.hospital_id, session_id=current.session_id
    )
    policy = await load_policy(
        session, hospital_id=actor.hospital_id, department_id=loaded.row.department_id
    )
    rules.check_cancellable(
        policy,
        loaded.facts,
        AppointmentStatus(current.status),
        now=now,
        by_staff=actor.has_role(Role.REGISTRAR),
    )
    return await book(
        session,
        actor=actor,
        patient_id=current.patient_id,
        session_id=session_id,
        slot_id=slot_id,
        now=now,
        replacing=current.id,
    )


async def confirm_payment(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    paid_fen: int,
    payment_reference: str,
    now: datetime,
) -> Appointment:
    """The single entry point the payment gateway calls when a fee is paid."""
    appointment = await _lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    before = snapshot(appointment)
    appointment.status = rules.check_payment(
        AppointmentStatus(appointment.status),
        hold_expires_at=appointment.hold_expires_at,
        fee_fen=appointment.fee_fen,
        paid_fen=paid_fen,
        now=now,
    )
    appointment.booked_at = now
    appointment.payment_reference = payment_reference
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="confirm_payment",
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after=snapshot(appointment),
        now=now,
    )
    loaded = await load_session(
        session, hospital_id=actor.hospital_id, session_id=appointment.session_id
    )
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=MessageKind.BOOKING_CONFIRMED,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        payload=_message_payload(
            appointment, loaded, await session.get(TimeSlot, appointment.slot_id)
        ),
        now=now,
    )
    return appointment


async def expire_holds(
    session: AsyncSession,
    *,
    actor: Actor,
    now: datetime,
    session_id: uuid.UUID | None = None,
    limit: int = 500,
) -> list[uuid.UUID]:
    """Holds past their deadline become expired and their places return to the pool.
    Returns the sessions that got places back."""
    query = (
        select(Appointment)
        .where(
            Appointment.hospital_id == actor.hospital_id,
            Appointment.status == S.HELD,
            Appointment.hold_expires_at <= now,
        )
        .order_by(Appointment.hold_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if session_id is not None:
        query = query.where(Appointment.session_id == session_id)
    expired = (await session.scalars(query)).all()
    for appointment in expired:
        before = snapshot(appointment)
        appointment.status = rules.transition(S.HELD, "expire")
        appointment.updated_at = now
        await _return_place(session, appointment.pool_id)
        record_audit(
            session,
            actor=actor,
            action="expire",
            entity_type="appointment",
            entity_id=appointment.id,
            before=before,
            after=snapshot(appointment),
            now=now,
        )
        enqueue(
            session,
            hospital_id=appointment.hospital_id,
            kind=MessageKind.HOLD_EXPIRED,
            patient_id=appointment.patient_id,
            appointment_id=appointment.id,
            payload={"appointment_id": str(appointment.id)},
            now=now,
        )
    return sorted({a.session_id for a in expired})


async def stop_clinic(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID, reason: str, now: datetime
) -> list[Appointment]:
    """Stops a session: no new claims, every active booking cancelled with the reason and
    a stop-clinic message queued for each patient."""
    require_staff(actor, Role.SCHEDULER)
    loaded = await load_session(session, hospital_id=actor.hospital_id, session_id=session_id)
    if loaded.row.status != SessionStatus.OPEN:
        raise rules.InvalidTransition(state=str(loaded.row.status), action="stop")
    # Closing the pools first waits out any claim in flight and blocks every later one.
    await session.execute(
        update(SlotPool)
        .where(SlotPool.session_id == session_id)
        .values(is_open=False)
        .execution_options(synchronize_session=False)
    )
    loaded.row.status = SessionStatus.STOPPED
    loaded.row.stop_reason = reason
    loaded.row.stopped_at = now
    active = (
        await session.scalars(
            select(Appointment)
            .where(Appointment.session_id == session_id, Appointment.status.in_(ACTIVE_STATUSES))
            .order_by(Appointment.sequence_number)
            .with_for_update()
        )
    ).all()
    for appointment in active:
        await _cancel_locked(
            session,
            actor=actor,
            appointment=appointment,
            reason=CancelReason.STOP_CLINIC,
            note=reason,
            now=now,
        )
    record_audit(
        session,
        actor=actor,
        action="stop_clinic",
        entity_type="clinic_session",
        entity_id=session_id,
        before={"status": "open"},
        after={"status": "stopped", "reason": reason, "cancelled": len(active)},
        now=now,
    )
    return list(active)


async def get_appointment(
    session: AsyncSession, *, hospital_id: uuid.UUID, appointment_id: uuid.UUID
) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.hospital_id != hospital_id:
        raise NotFound(what="appointment")
    return appointment


async def add_blacklist_entry(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    reason: str,
    ends_at: datetime,
    now: datetime,
) -> BlacklistEntry:
    require_staff(actor, Role.ADMIN)
    await lock_patient(session, hospital_id=actor.hospital_id, patient_id=patient_id)
    entry = BlacklistEntry(
        hospital_id=actor.hospital_id,
        patient_id=patient_id,
        reason=reason,
        starts_at=now,
        ends_at=ends_at,
        created_by=actor.audit_name,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="blacklist",
        entity_type="patient",
        entity_id=patient_id,
        before=None,
        after={"reason": reason, "ends_at": ends_at.isoformat()},
        now=now,
    )
    return entry


# --- idempotency --------------------------------------------------------------------------


async def find_idempotent(
    session: AsyncSession, *, scope: str, key: str
) -> IdempotencyRecord | None:
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    )


def remember_answer(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    scope: str,
    key: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
    now: datetime,
) -> None:
    session.add(
        IdempotencyRecord(
            hospital_id=hospital_id,
            scope=scope,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response=response,
            created_at=now,
        )
    )


async def recent_idempotency_keys(
    session: AsyncSession, *, since: datetime
) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(IdempotencyRecord.scope, IdempotencyRecord.key).where(
            IdempotencyRecord.created_at > since
        )
    )
    return [(r[0], r[1]) for r in rows]


# --- availability and alternatives (read side) ---------------------------------------------


def remaining_expr(pools: Sequence[str]) -> Any:
    return (
        select(SlotPool.session_id, func.sum(SlotPool.capacity - SlotPool.taken).label("remaining"))
        .where(SlotPool.pool.in_(pools), SlotPool.is_open.is_(True))
        .group_by(SlotPool.session_id)
        .subquery()
    )


async def alternatives(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
    limit: int = 6,
) -> list[dict[str, Any]]:
    """Nearest bookable alternatives for a sold-out request: other slots of the session,
    the same doctor's next sessions, then doctors of the same level in the department."""
    loaded = await load_session(session, hospital_id=actor.hospital_id, session_id=session_id)
    policy = await load_policy(
        session, hospital_id=actor.hospital_id, department_id=loaded.row.department_id
    )
    pools = pools_for_channel(actor.channel)
    found: list[dict[str, Any]] = []
    if slot_id is not None:
        slots = await session.execute(
            select(TimeSlot, func.sum(SlotPool.capacity - SlotPool.taken))
            .join(SlotPool, SlotPool.slot_id == TimeSlot.id)
            .where(
                TimeSlot.session_id == session_id,
                TimeSlot.id != slot_id,
                SlotPool.pool.in_(pools),
                SlotPool.is_open.is_(True),
            )
            .group_by(TimeSlot.id)
            .having(func.sum(SlotPool.capacity - SlotPool.taken) > 0)
            .order_by(TimeSlot.ordinal)
            .limit(3)
        )
        for slot, remaining in slots:
            found.append(
                {
                    "kind": "slot",
                    "session_id": str(session_id),
                    "slot_id": str(slot.id),
                    "date": loaded.row.date.isoformat(),
                    "start": slot.start_time.strftime("%H:%M"),
                    "end": slot.end_time.strftime("%H:%M"),
                    "remaining": int(remaining),
                }
            )
    remaining = remaining_expr(pools)
    horizon = local_today(now, loaded.timezone) + timedelta(days=policy.release_days_ahead)
    base = (
        select(ClinicSession, Doctor.name, remaining.c.remaining)
        .join(remaining, remaining.c.session_id == ClinicSession.id)
        .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
        .where(
            ClinicSession.hospital_id == actor.hospital_id,
            ClinicSession.id != session_id,
            ClinicSession.status == SessionStatus.OPEN,
            ClinicSession.date >= loaded.row.date,
            ClinicSession.date <= horizon,
            remaining.c.remaining > 0,
        )
        .order_by(ClinicSession.date, ClinicSession.start_time)
        .limit(12)
    )
    queries = []
    if loaded.row.doctor_id is not None:
        queries.append(("same_doctor", base.where(ClinicSession.doctor_id == loaded.row.doctor_id)))
    queries.append(
        (
            "same_level",
            base.where(
                ClinicSession.department_id == loaded.row.department_id,
                ClinicSession.level_id == loaded.row.level_id,
                ClinicSession.doctor_id.is_distinct_from(loaded.row.doctor_id),
            ),
        )
    )
    for kind, query in queries:
        for candidate, doctor_name, left in await session.execute(query):
            facts = LoadedSession(candidate, loaded.department, loaded.timezone).facts
            try:
                rules.check_window(policy, facts, channel=actor.channel, now=now)
            except (rules.OutsideReleaseWindow, rules.BookingClosed):
                continue
            found.append(
                {
                    "kind": kind,
                    "session_id": str(candidate.id),
                    "date": candidate.date.isoformat(),
                    "period": str(candidate.period),
                    "start": candidate.start_time.strftime("%H:%M"),
                    "end": candidate.end_time.strftime("%H:%M"),
                    "doctor_id": str(candidate.doctor_id) if candidate.doctor_id else None,
                    "doctor_name": doctor_name,
                    "remaining": int(left),
                }
            )
            if len(found) >= limit:
                return found
    return found


def session_end(loaded: LoadedSession) -> datetime:
    return rules.local_instant(loaded.row.date, loaded.row.end_time, loaded.timezone)
