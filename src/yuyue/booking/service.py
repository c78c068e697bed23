"""Booking use cases. Each runs inside the caller's transaction and never commits.

Lock order, the same everywhere so that transactions wait rather than deadlock:
patient row → slot_pool row → appointment row. (Stop-clinic takes pools then appointments;
the rare deadlock against a concurrent cancel is retried whole by ``Database.transact``.)

The booking path is the release-peak hot path, so it is counted in statements: lock the
patient (with any current blacklist entry, one statement), the patient's recent bookings,
the claim (a candidate and the conditional UPDATE), the sequence number, and the inserts.
Session facts and the policy come from a short-lived cache.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import events, rules, store
from yuyue.booking.facts import (
    PolicyCache,
    SessionInfo,
    SessionInfoCache,
    load_policy,
    session_info,
)
from yuyue.booking.models import Appointment, BlacklistEntry, IdempotencyRecord
from yuyue.booking.states import ACTIVE_STATUSES, AppointmentStatus, CancelReason, RefundShown
from yuyue.booking.store import ClaimedPlace as ClaimedPlace
from yuyue.booking.store import PatientFacts as PatientFacts
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.kit.ids import new_id
from yuyue.kit.localtime import local_today
from yuyue.kit.sql import Driver, driver
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.service import (
    enqueue,
    reminder_payload,
    reminder_times_for,
    schedule_reminders,
    withdraw_reminders,
)
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel, SessionStatus
from yuyue.scheduling.models import (
    ClinicSession,
    Department,
    Doctor,
    RegistrationLevel,
    SlotPool,
    TimeSlot,
)
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

S = AppointmentStatus


@dataclass(frozen=True, slots=True)
class Caches:
    """The short-lived caches a caller may lend the use cases (none in the worker)."""

    sessions: SessionInfoCache | None = None
    policies: PolicyCache | None = None


NO_CACHE = Caches()


async def session_facts(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_id: uuid.UUID, caches: Caches
) -> tuple[SessionInfo, rules.Policy]:
    info = await session_info(
        session, hospital_id=hospital_id, session_id=session_id, cache=caches.sessions
    )
    policy = await load_policy(
        session, hospital_id=hospital_id, department_id=info.department_id, cache=caches.policies
    )
    return info, policy


async def cached_session_facts(
    read: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    *,
    hospital_id: uuid.UUID,
    session_id: uuid.UUID,
    caches: Caches,
) -> tuple[SessionInfo, rules.Policy]:
    """`session_facts` from the caches when both are there; otherwise read in a session of
    its own (`read`), so a hot-lane transaction never waits on the ORM."""
    found = _cached_facts(caches, hospital_id=hospital_id, session_id=session_id)
    if found is not None:
        return found
    if caches.sessions is None:
        async with read() as session:
            return await session_facts(
                session, hospital_id=hospital_id, session_id=session_id, caches=caches
            )
    # One load per hospital at a time: at 08:00 a cold process meets hundreds of requests
    # at once, and one load of the neighbouring sessions answers nearly all of them.
    loads = _FACT_LOADS.setdefault(caches.sessions, {})
    lock = loads.setdefault(hospital_id, asyncio.Lock())
    async with lock:
        found = _cached_facts(caches, hospital_id=hospital_id, session_id=session_id)
        if found is not None:
            return found
        async with read() as session:
            return await session_facts(
                session, hospital_id=hospital_id, session_id=session_id, caches=caches
            )


_FACT_LOADS: weakref.WeakKeyDictionary[Any, dict[uuid.UUID, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _cached_facts(
    caches: Caches, *, hospital_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[SessionInfo, rules.Policy] | None:
    info = caches.sessions.get(session_id) if caches.sessions is not None else None
    if info is not None and info.hospital_id == hospital_id and caches.policies is not None:
        policy = caches.policies.get((hospital_id, info.department_id))
        if policy is not None:
            return info, policy
    return None


async def lock_patient(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_id: uuid.UUID, now: datetime
) -> tuple[PatientFacts, list[rules.BlacklistFacts]]:
    """Locks the patient's row, which serialises one patient's concurrent requests so the
    limits hold (SQLite: the write lock), and reads current blacklist entries with it."""
    return await store.lock_patient(
        await driver(session), hospital_id=hospital_id, patient_id=patient_id, now=now
    )


def _recent_since(now: datetime) -> datetime:
    # The longest per-patient limit looks back 90 days.
    return now - timedelta(days=90)


async def _existing_bookings(
    session: AsyncSession, *, patient_id: uuid.UUID, now: datetime
) -> list[rules.BookingFacts]:
    return await store.existing_bookings(
        await driver(session), patient_id=patient_id, since=_recent_since(now)
    )


# --- the claim ----------------------------------------------------------------------------


async def claim_place(
    session: AsyncSession,
    *,
    session_id: uuid.UUID,
    pools: Sequence[str],
    slot_id: uuid.UUID | None,
    pool_id: uuid.UUID | None = None,
) -> ClaimedPlace | None:
    """Takes the earliest free place of the given pools with one conditional UPDATE (see
    `store.claim_place`): two claimers can never both take the last place, and no claim
    lands after a stop-clinic. `pool_id` limits the claim to one row: the waitlist re-takes
    exactly the place just returned, whose lock it holds."""
    return await store.claim_place(
        await driver(session),
        session_id=session_id,
        pools=pools,
        slot_id=slot_id,
        pool_id=pool_id,
    )


async def _explain_no_place(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Returns True when overdue holds gave places back (try again); otherwise raises the
    reason there is no place: an unknown slot, a stopped clinic, or sold out.

    Returning overdue holds here means an unpaid hold never keeps a place from a real
    patient, whether or not the sweep has run yet."""
    if slot_id is not None:
        slot_session = await session.scalar(
            select(TimeSlot.session_id).where(TimeSlot.id == slot_id)
        )
        if slot_session != session_id:
            raise NotFound(what="slot")
    if await expire_holds(session, actor=actor, now=now, session_id=session_id):
        return True
    status = await session.scalar(
        select(ClinicSession.status).where(ClinicSession.id == session_id)
    )
    if status != SessionStatus.OPEN:
        raise rules.SessionStopped()
    raise rules.SoldOut(session_id=str(session_id), slot_id=str(slot_id) if slot_id else None)


async def _return_place(session: AsyncSession, pool_id: uuid.UUID) -> None:
    await store.return_place(await driver(session), pool_id=pool_id)


async def _release_place(
    session: AsyncSession, *, actor: Actor, appointment: Appointment, now: datetime
) -> None:
    """Returns the appointment's place to its pool; if someone waits for the session, the
    waitlist takes it again at once for them, in this transaction and under the pool row's
    lock, so the place is never visible to other bookers meanwhile. The one release of a
    place: cancel, reschedule, stop-clinic, expiry and a declined offer all come here."""
    # The waitlist's service builds on this module, so it is imported when first needed.
    from yuyue.booking.waitlist import service as waitlist_service

    await _return_place(session, appointment.pool_id)
    if await waitlist_service.place_returned(
        session, actor=actor, appointment=appointment, now=now
    ):
        # An offer the patient never took is not a booking they made: it must not count
        # against their 7- and 90-day limits.
        appointment.cancel_reason = CancelReason.WAITLIST_OFFER.value


async def _next_number(session: AsyncSession, place: ClaimedPlace) -> int:
    return await store.number_place(await driver(session), place)


def snapshot(appointment: Appointment | store.AppointmentRecord) -> dict[str, Any]:
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
    appointment: Appointment | store.AppointmentRecord, info: SessionInfo, slot_start: time | None
) -> dict[str, Any]:
    return {
        "appointment_id": str(appointment.id),
        "date": info.date.isoformat(),
        "period": info.period.value,
        "department": info.department_name,
        "doctor": info.doctor_name,
        "location": info.location,
        "sequence_number": appointment.sequence_number,
        "slot_start": slot_start.strftime("%H:%M") if slot_start else None,
        "voucher_code": appointment.voucher_code,
    }


# --- use cases ----------------------------------------------------------------------------


@dataclass(slots=True)
class Booked:
    """A new appointment with what its answer shows, so no query is needed to render it."""

    appointment: store.AppointmentRecord
    info: SessionInfo
    policy: rules.Policy
    slot_start: time
    slot_end: time
    # The answer remembered for an Idempotency-Key (as sent), when the caller asked for one.
    answer_text: str | None = None
    # A reschedule: whether the old payment moved to this appointment (else it is refunded).
    payment_carried_over: bool | None = None


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """Asks `book` to keep the first answer in the booking's own statement: `render` turns
    the booking into the answer the caller sends."""

    scope: str
    key: str
    request_hash: str
    render: Callable[[Booked], dict[str, Any]]


class NeedsTransaction(Exception):
    """`book_on_lane` met what only `book` handles: no free place for the request (overdue
    holds may have to be expired first, or the refusal explained). Nothing was written."""


async def book(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    slot_id: uuid.UUID | None,
    now: datetime,
    replacing: uuid.UUID | None = None,
    caches: Caches = NO_CACHE,
    idempotency: IdempotentRequest | None = None,
    payment_follows: bool = False,
) -> Booked:
    """Checks every rule, claims one place and records the appointment (held or booked),
    in the caller's ORM transaction. `payment_follows` (a reschedule only) tells the
    replaced booking's cancellation that its payment moves to the new one."""
    info, policy = await session_facts(
        session, hospital_id=actor.hospital_id, session_id=session_id, caches=caches
    )

    async def explain() -> None:
        await _explain_no_place(
            session, actor=actor, session_id=session_id, slot_id=slot_id, now=now
        )

    async def cancel_replaced() -> None:
        assert replacing is not None
        await _cancel_locked(
            session,
            actor=actor,
            appointment=await lock_appointment(
                session, hospital_id=actor.hospital_id, appointment_id=replacing
            ),
            reason=CancelReason.RESCHEDULED,
            note=None,
            now=now,
            notify=False,
            payment_follows=payment_follows,
        )
        await session.flush()

    async def reminders(visit_date: date, slot_start: time) -> list[datetime]:
        return await reminder_times_for(
            session,
            hospital_id=actor.hospital_id,
            visit_date=visit_date,
            slot_start=slot_start,
            now=now,
        )

    return await _book(
        await driver(session),
        actor=actor,
        patient_id=patient_id,
        info=info,
        policy=policy,
        slot_id=slot_id,
        now=now,
        replacing=replacing,
        cancel_replaced=cancel_replaced if replacing is not None else None,
        explain=explain,
        reminders=reminders,
        idempotency=idempotency,
    )


async def book_on_lane(
    db: Driver,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    info: SessionInfo,
    policy: rules.Policy,
    slot_id: uuid.UUID | None,
    now: datetime,
    reminders: Callable[[date, time], Awaitable[list[datetime]]],
    idempotency: IdempotentRequest | None = None,
) -> Booked:
    """The release peak's booking: the same rules and statements as `book`, on a driver
    transaction of the database's hot lane (no ORM session), with the session's facts and
    policy loaded by the caller before the transaction. When no place is free it raises
    `NeedsTransaction` and the caller runs `book` instead."""

    async def explain() -> None:
        raise NeedsTransaction()

    return await _book(
        db,
        actor=actor,
        patient_id=patient_id,
        info=info,
        policy=policy,
        slot_id=slot_id,
        now=now,
        replacing=None,
        cancel_replaced=None,
        explain=explain,
        reminders=reminders,
        idempotency=idempotency,
    )


async def _book(
    db: Driver,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    info: SessionInfo,
    policy: rules.Policy,
    slot_id: uuid.UUID | None,
    now: datetime,
    replacing: uuid.UUID | None,
    cancel_replaced: Callable[[], Awaitable[None]] | None,
    explain: Callable[[], Awaitable[None]],
    reminders: Callable[[date, time], Awaitable[list[datetime]]],
    idempotency: IdempotentRequest | None,
) -> Booked:
    """The one booking: two statements on PostgreSQL when a place is free (the patient's
    facts with the claim of a place, then the record), see `store`."""
    session_id = info.id
    pools = pools_for_channel(actor.channel)
    claimed: store.ClaimedPlace | None = None
    if db.is_sqlite:
        patient, blacklist, existing = await store.patient_facts(
            db,
            hospital_id=actor.hospital_id,
            patient_id=patient_id,
            now=now,
            since=_recent_since(now),
        )
    else:
        patient, blacklist, existing, claimed = await store.facts_and_claim(
            db,
            hospital_id=actor.hospital_id,
            patient_id=patient_id,
            now=now,
            since=_recent_since(now),
            session_id=session_id,
            pools=pools,
            slot_id=slot_id,
        )
    facts = info.facts
    try:
        rules.check_session_open(facts)
        rules.check_window(policy, facts, channel=actor.channel, now=now)
        _check_patient_fits(info, patient, blacklist, channel=actor.channel, now=now)
        rules.check_limits(
            policy,
            facts,
            existing,
            now=now,
            today=local_today(now, facts.timezone),
            replacing=replacing,
        )
    except YuyueError:
        if claimed is not None:
            # Taken with the facts, before the rules had seen them: given back, so the
            # refusal changes nothing.
            await store.give_back(db, claimed)
        raise
    place = (
        claimed
        if claimed is not None or not db.is_sqlite
        else await store.claim_place(db, session_id=session_id, pools=pools, slot_id=slot_id)
    )
    while place is None:
        await explain()
        place = await store.claim_place(db, session_id=session_id, pools=pools, slot_id=slot_id)

    if cancel_replaced is not None:
        await cancel_replaced()
    status = rules.initial_status(info.fee_fen)
    appointment = store.AppointmentRecord(
        id=new_id(),
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
        sequence_number=await store.number_place(db, place),
        fee_fen=info.fee_fen,
        voucher_code=store.new_voucher_code(),
        hold_expires_at=now + timedelta(minutes=policy.hold_minutes) if status is S.HELD else None,
        booked_at=now if status is S.BOOKED else None,
        rescheduled_from_id=replacing,
        created_by=actor.audit_name,
        created_at=now,
    )
    kind = (
        MessageKind.RESCHEDULED
        if replacing
        else MessageKind.BOOKING_CONFIRMED
        if status is S.BOOKED
        else MessageKind.BOOKING_HELD
    )
    messages = [
        store.NewMessage(kind.value, _message_payload(appointment, info, place.slot_start), now)
    ]
    if status is S.BOOKED:
        times = await reminders(facts.date, place.slot_start)
        if times:
            # The first reminder carries the others (`reminder_payload`).
            payload = reminder_payload(appointment.id, times[1:])
            messages.append(store.NewMessage(MessageKind.REMINDER.value, payload, times[0]))
    booked = Booked(appointment, info, policy, place.slot_start, place.slot_end)

    def remember() -> store.Remembered:
        # Rendered per write attempt: a voucher code replaced after a collision is in it.
        assert idempotency is not None
        booked.answer_text = store.json_text(idempotency.render(booked))
        return store.Remembered(
            idempotency.scope, idempotency.key, idempotency.request_hash, booked.answer_text
        )

    await store.record(
        db,
        appointment,
        audit_action="reschedule" if replacing else "book",
        audit_after=snapshot(appointment),
        messages=messages,
        remember=remember if idempotency is not None else None,
    )
    return booked


def _check_patient_fits(
    info: SessionInfo,
    patient: store.PatientFacts,
    blacklist: Sequence[rules.BlacklistFacts],
    *,
    channel: Channel,
    now: datetime,
) -> None:
    """Whether the clinic sees this patient (age, sex) and they may book by `channel` now
    (no ban in force): asked of whoever takes a place, a new booking or a change of patient."""
    rules.check_demographics(
        department_name=info.department_name,
        min_age=info.min_age,
        max_age=info.max_age,
        sex_restriction=info.sex_restriction,
        birth_date=patient.birth_date,
        sex=patient.sex,
        visit_date=info.date,
    )
    rules.check_not_blacklisted(blacklist, channel=channel, now=now, tz=info.timezone)


async def lock_appointment(
    session: AsyncSession, *, hospital_id: uuid.UUID, appointment_id: uuid.UUID
) -> Appointment:
    """The appointment's row, locked and read afresh, for a change that follows."""
    appointment = await session.scalar(
        select(Appointment)
        .where(Appointment.id == appointment_id, Appointment.hospital_id == hospital_id)
        .with_for_update()
        .execution_options(populate_existing=True)
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
    payment_follows: bool = False,
) -> None:
    """The one cancellation: every path (patient, staff, stop-clinic, the booking a
    reschedule replaced, a waitlist offer) comes here, and so tells the subscribers of
    `events.AppointmentCancelled` (payments refunds what was paid) in this transaction."""
    before = snapshot(appointment)
    appointment.status = rules.transition(AppointmentStatus(appointment.status), "cancel")
    appointment.cancelled_at = now
    appointment.cancel_reason = reason.value
    appointment.cancel_note = note
    appointment.updated_at = now
    await _release_place(session, actor=actor, appointment=appointment, now=now)
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
    await withdraw_reminders(session, appointment_id=appointment.id)
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
    await events.publish(
        session,
        events.AppointmentCancelled(
            hospital_id=appointment.hospital_id,
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            reason=CancelReason(appointment.cancel_reason or reason.value),
            actor=actor,
            at=now,
            payment_follows=payment_follows,
        ),
    )


async def cancel(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    note: str | None,
    now: datetime,
    caches: Caches = NO_CACHE,
    approved: bool = False,
) -> Appointment:
    """Cancels within the deadline and returns the place to its pool at once. After the
    deadline staff ask a supervisor; the approved request cancels with `approved`."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    info, policy = await session_facts(
        session, hospital_id=actor.hospital_id, session_id=appointment.session_id, caches=caches
    )
    by_staff = approved or actor.has_role(Role.REGISTRAR)
    rules.check_cancellable(
        policy,
        info.facts,
        AppointmentStatus(appointment.status),
        now=now,
        by_staff=by_staff,
        approved=approved,
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
    caches: Caches = NO_CACHE,
    approved: bool = False,
) -> Booked:
    """Claims the new place before giving up the old one, in one transaction: if the new
    place is gone the patient keeps the old booking untouched. Staff moving a confirmed
    booking ask a supervisor; the approved request moves it with `approved`."""
    current = await get_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    by_staff = actor.has_role(Role.REGISTRAR)
    if (
        by_staff
        and not approved
        and rules.staff_change_needs_approval(AppointmentStatus(current.status))
    ):
        raise rules.ApprovalRequired(change=rules.ChangeKind.MOVE.value)
    info, policy = await session_facts(
        session, hospital_id=actor.hospital_id, session_id=current.session_id, caches=caches
    )
    rules.check_cancellable(
        policy,
        info.facts,
        AppointmentStatus(current.status),
        now=now,
        by_staff=by_staff,
        approved=approved,
    )
    new_info, _ = await session_facts(
        session, hospital_id=actor.hospital_id, session_id=session_id, caches=caches
    )
    follows = rules.payment_follows(
        AppointmentStatus(current.status),
        paid_fen=current.paid_fen,
        refund_state=current.refund_state,
        new_fee_fen=new_info.fee_fen,
    )
    paid = (current.paid_fen, current.payment_provider, current.payment_reference)
    booked = await book(
        session,
        actor=actor,
        patient_id=current.patient_id,
        session_id=session_id,
        slot_id=slot_id,
        now=now,
        replacing=current.id,
        caches=caches,
        payment_follows=follows,
    )
    booked.payment_carried_over = follows
    if follows:
        await _carry_payment(
            session, actor=actor, booked=booked, replaced=current.id, paid=paid, now=now
        )
    return booked


async def change_patient(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    patient_id: uuid.UUID,
    note: str,
    now: datetime,
) -> Appointment:
    """The booking belongs to another patient of the hospital from now on (booked under
    the wrong family member, say): only through an approved change request. The new
    patient must be someone the clinic sees (age, sex), not banned, and not already booked
    in the session; the place, number, time and payment stay. The new patient is told, and
    so is the old one (their booking is gone); a new voucher code replaces the old one."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    status = AppointmentStatus(appointment.status)
    if status is not AppointmentStatus.BOOKED:
        raise rules.InvalidTransition(state=status.value, action="change_patient")
    if patient_id == appointment.patient_id:
        raise rules.AlreadyBooked()
    info, _ = await session_facts(
        session,
        hospital_id=actor.hospital_id,
        session_id=appointment.session_id,
        caches=NO_CACHE,
    )
    patient, blacklist, existing = await store.patient_facts(
        await driver(session),
        hospital_id=actor.hospital_id,
        patient_id=patient_id,
        now=now,
        since=_recent_since(now),
    )
    _check_patient_fits(info, patient, blacklist, channel=actor.channel, now=now)
    if any(
        b.session_id == appointment.session_id and b.status in ACTIVE_STATUSES for b in existing
    ):
        raise rules.AlreadyBooked()
    before = snapshot(appointment)
    old_patient = appointment.patient_id
    appointment.patient_id = patient_id
    appointment.voucher_code = await _free_voucher_code(session, appointment.hospital_id)
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="change_patient",
        entity_type="appointment",
        entity_id=appointment.id,
        before={**before, "patient_id": str(old_patient)},
        after={**snapshot(appointment), "patient_id": str(patient_id), "note": note},
        now=now,
    )
    await withdraw_reminders(session, appointment_id=appointment.id)
    await session.flush()
    slot_start = await session.scalar(
        select(SlotPool.slot_start).where(SlotPool.id == appointment.pool_id)
    )
    assert slot_start is not None
    await schedule_reminders(
        session,
        hospital_id=appointment.hospital_id,
        patient_id=patient_id,
        appointment_id=appointment.id,
        visit_date=appointment.visit_date,
        slot_start=slot_start,
        payload={"appointment_id": str(appointment.id)},
        now=now,
    )
    enqueue(
        session,
        hospital_id=appointment.hospital_id,
        kind=MessageKind.PATIENT_CHANGED,
        patient_id=patient_id,
        appointment_id=appointment.id,
        payload={"appointment_id": str(appointment.id), "note": note},
        now=now,
    )
    # Not linked to the appointment: it is no longer theirs, and its details (and the new
    # patient's) are not theirs to read.
    enqueue(
        session,
        hospital_id=appointment.hospital_id,
        kind=MessageKind.BOOKING_TRANSFERRED,
        patient_id=old_patient,
        appointment_id=None,
        payload={
            "reason": note,
            "date": info.date.isoformat(),
            "department": info.department_name,
            "department_en": info.department_name_en,
            "doctor": info.doctor_name or "",
        },
        now=now,
    )
    return appointment


async def _carry_payment(
    session: AsyncSession,
    *,
    actor: Actor,
    booked: Booked,
    replaced: uuid.UUID,
    paid: tuple[int | None, str | None, str | None],
    now: datetime,
) -> None:
    """The new appointment of a same-fee reschedule is booked on the old payment at once
    (never held: the patient paid already), with its reminders; payments moves the order."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=booked.appointment.id
    )
    before = snapshot(appointment)
    appointment.status = rules.transition(AppointmentStatus(appointment.status), "confirm_payment")
    appointment.booked_at = now
    appointment.hold_expires_at = None
    appointment.paid_fen, appointment.payment_provider, appointment.payment_reference = paid
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="carry_payment",
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after={**snapshot(appointment), "from_appointment_id": str(replaced)},
        now=now,
    )
    record = booked.appointment
    record.status = appointment.status
    record.booked_at = now
    record.hold_expires_at = None
    record.paid_fen, record.payment_provider = appointment.paid_fen, appointment.payment_provider
    await schedule_reminders(
        session,
        hospital_id=actor.hospital_id,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        visit_date=appointment.visit_date,
        slot_start=booked.slot_start,
        payload={"appointment_id": str(appointment.id)},
        now=now,
    )
    await events.publish(
        session,
        events.PaymentCarriedOver(
            hospital_id=actor.hospital_id,
            from_appointment_id=replaced,
            to_appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            actor=actor,
            at=now,
        ),
    )


async def confirm_payment(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    paid_fen: int,
    payment_reference: str,
    now: datetime,
    payment_provider: str | None = None,
    caches: Caches = NO_CACHE,
) -> Appointment:
    """The single entry point a verified payment reaches (payments, the window, finance).

    The late-payment rule (`rules.payment_path`): a hold, even past its end before the
    sweep ran, is booked; an expired hold is booked again through the one claim when its
    pool has a free place (audited as `late_payment`), else `PlaceGone` is raised and
    nothing here changed (payments then refunds). The appointment records what was paid
    and how, as the voucher shows it."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    before = snapshot(appointment)
    status = AppointmentStatus(appointment.status)
    path = rules.payment_path(status, fee_fen=appointment.fee_fen, paid_fen=paid_fen)
    action = "confirm_payment"
    if path is rules.PaymentPath.RECLAIM:
        await _reclaim_place(session, actor=actor, appointment=appointment, now=now)
        action = "late_payment"
    appointment.status = rules.transition(status, action)
    appointment.booked_at = now
    appointment.hold_expires_at = None
    appointment.payment_reference = payment_reference
    appointment.paid_fen = paid_fen
    appointment.payment_provider = payment_provider
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after=snapshot(appointment),
        now=now,
    )
    info = await session_info(
        session,
        hospital_id=actor.hospital_id,
        session_id=appointment.session_id,
        cache=caches.sessions,
    )
    slot = await session.get(TimeSlot, appointment.slot_id)
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=MessageKind.BOOKING_CONFIRMED,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        payload=_message_payload(appointment, info, slot.start_time if slot else None),
        now=now,
    )
    await schedule_reminders(
        session,
        hospital_id=actor.hospital_id,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        visit_date=appointment.visit_date,
        slot_start=slot.start_time if slot else info.start_time,
        payload={"appointment_id": str(appointment.id)},
        now=now,
    )
    return appointment


async def _reclaim_place(
    session: AsyncSession, *, actor: Actor, appointment: Appointment, now: datetime
) -> None:
    """Takes a free place of the expired hold's pool again (its own slot first), through
    the one claim, so a late payment never overbooks. Overdue holds of the session are
    expired first, as a booking would. Raises `PlaceGone` when no place is free."""
    pool = await session.scalar(select(SlotPool.pool).where(SlotPool.id == appointment.pool_id))
    if pool is None:
        raise rules.PlaceGone()
    place = None
    for attempt in range(2):
        for slot_id in (appointment.slot_id, None):
            place = await claim_place(
                session, session_id=appointment.session_id, pools=(pool,), slot_id=slot_id
            )
            if place is not None:
                break
        if place is not None or attempt == 1:
            break
        if not await expire_holds(session, actor=actor, now=now, session_id=appointment.session_id):
            break
    if place is None:
        raise rules.PlaceGone()
    appointment.slot_id = place.slot_id
    appointment.pool_id = place.pool_id
    appointment.sequence_number = await _next_number(session, place)


async def note_refund(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    state: RefundShown,
    now: datetime,
    paid: tuple[int, str, str] | None = None,
) -> None:
    """Records where a cancelled booking's money is, as the patient sees it on the voucher
    and in the portal. Payments decides the state; booking stays the appointment's writer.
    `paid` (fen, provider, reference) records a payment that arrived too late to book, so the
    patient sees the money the refund gives back."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    recorded = paid is not None and appointment.paid_fen is None
    if appointment.refund_state == state.value and not recorded:
        return
    before = {"refund_state": appointment.refund_state, "paid_fen": appointment.paid_fen}
    appointment.refund_state = state.value
    if paid is not None and appointment.paid_fen is None:
        appointment.paid_fen, appointment.payment_provider, appointment.payment_reference = paid
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="refund_state",
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after={"refund_state": state.value, "paid_fen": appointment.paid_fen},
        now=now,
    )


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
        await _release_place(session, actor=actor, appointment=appointment, now=now)
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
        await events.publish(
            session,
            events.AppointmentExpired(
                hospital_id=appointment.hospital_id,
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                actor=actor,
                at=now,
            ),
        )
    return sorted({a.session_id for a in expired})


# --- changes other contexts ask for -------------------------------------------------------

# The transitions that neither take nor return a place, with the message each sends.
StatusAction = Literal["check_in", "complete", "mark_no_show"]
_STATUS_ACTIONS: frozenset[str] = frozenset(get_args(StatusAction))
_STATUS_MESSAGES: dict[str, MessageKind] = {"mark_no_show": MessageKind.NO_SHOW}


async def change_status(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment: Appointment,
    action: StatusAction,
    now: datetime,
) -> None:
    """Check-in (visits), completion after the consultation (visits) and no-show
    (attendance): the transition by the rules, its audit row and its message, together.
    The caller holds the appointment's lock (`lock_appointment`, or its own sweep's)."""
    if action not in _STATUS_ACTIONS:
        # Cancel, expire, accept and payment move places, reminders or holds: each has its
        # own function here.
        raise ValueError(f"change_status cannot {action!r}")
    before = snapshot(appointment)
    appointment.status = rules.transition(AppointmentStatus(appointment.status), action)
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after=snapshot(appointment),
        now=now,
    )
    kind = _STATUS_MESSAGES.get(action)
    if kind is not None:
        enqueue(
            session,
            hospital_id=appointment.hospital_id,
            kind=kind,
            patient_id=appointment.patient_id,
            appointment_id=appointment.id,
            payload={"appointment_id": str(appointment.id)},
            now=now,
        )
    event = _STATUS_EVENTS.get(action)
    if event is not None:
        await events.publish(
            session,
            event(
                hospital_id=appointment.hospital_id,
                appointment_id=appointment.id,
                patient_id=appointment.patient_id,
                actor=actor,
                at=now,
            ),
        )


# What the other contexts hear of a status change, in its transaction.
_STATUS_EVENTS: dict[str, type[events.AppointmentCompleted | events.AppointmentMissed]] = {
    "complete": events.AppointmentCompleted,
    "mark_no_show": events.AppointmentMissed,
}


async def note_payment_split(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment_id: uuid.UUID,
    pool_fen: int,
    account_fen: int,
    self_pay_fen: int,
    now: datetime,
) -> None:
    """Records how a settled fee was split (medical insurance: pool, personal account and
    the patient's own share), as the voucher and the receipt show it. Payments decides it;
    booking stays the appointment's writer."""
    appointment = await lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=appointment_id
    )
    split = (pool_fen, account_fen, self_pay_fen)
    before = (
        appointment.split_pool_fen,
        appointment.split_account_fen,
        appointment.split_self_pay_fen,
    )
    if before == split:
        return
    (
        appointment.split_pool_fen,
        appointment.split_account_fen,
        appointment.split_self_pay_fen,
    ) = split
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="payment_split",
        entity_type="appointment",
        entity_id=appointment.id,
        before={"split": list(before)},
        after={"split": list(split)},
        now=now,
    )


# --- the waitlist's offers ------------------------------------------------------------------


async def check_may_book(
    session: AsyncSession,
    *,
    info: SessionInfo,
    policy: rules.Policy,
    patient: PatientFacts,
    blacklist: Sequence[rules.BlacklistFacts],
    channel: Channel,
    now: datetime,
) -> None:
    """Raises the refusal the booking rules about the patient (age and sex, blacklist,
    limits) would give them for this session. The waitlist asks before a patient joins a
    line and again before offering a place: whoever cannot take a place must not wait for
    one, nor be offered one. The caller holds the patient's lock (`lock_patient`)."""
    facts = info.facts
    _check_patient_fits(info, patient, blacklist, channel=channel, now=now)
    rules.check_limits(
        policy,
        facts,
        await _existing_bookings(session, patient_id=patient.id, now=now),
        now=now,
        today=local_today(now, facts.timezone),
    )


async def hold_offered_place(
    session: AsyncSession,
    *,
    actor: Actor,
    info: SessionInfo,
    pool_id: uuid.UUID,
    pool: str,
    patient_id: uuid.UUID,
    channel: str,
    expires_at: datetime,
    waitlist_entry_id: uuid.UUID,
    now: datetime,
) -> Appointment | None:
    """Takes one place of the pool row `pool_id` (of pool `pool`) for a waiter and holds
    it until `expires_at`, with the offer's audit row and message; None when the row has no
    free place. Called while a place was just returned or added to that row in this
    transaction, so nobody else can have taken it meanwhile."""
    place = await claim_place(
        session, session_id=info.id, pools=(pool,), slot_id=None, pool_id=pool_id
    )
    if place is None:
        return None
    appointment = Appointment(
        hospital_id=info.hospital_id,
        patient_id=patient_id,
        session_id=info.id,
        slot_id=place.slot_id,
        pool_id=place.pool_id,
        department_id=info.department_id,
        doctor_id=info.doctor_id,
        visit_date=info.date,
        channel=channel,
        status=S.HELD,
        sequence_number=await _next_number(session, place),
        fee_fen=info.fee_fen,
        voucher_code=store.new_voucher_code(),
        hold_expires_at=expires_at,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="waitlist_offer",
        entity_type="appointment",
        entity_id=appointment.id,
        before=None,
        after=snapshot(appointment),
        now=now,
    )
    enqueue(
        session,
        hospital_id=info.hospital_id,
        kind=MessageKind.WAITLIST_OFFER,
        patient_id=patient_id,
        appointment_id=appointment.id,
        payload={
            "waitlist_entry_id": str(waitlist_entry_id),
            "appointment_id": str(appointment.id),
            "offer_expires_at": expires_at.isoformat(),
            "minutes": max(1, round((expires_at - now).total_seconds() / 60)),
            "date": info.date.isoformat(),
            "period": info.period.value,
            "department": info.department_name,
            "doctor": info.doctor_name,
            "location": info.location,
            "slot_start": place.slot_start.strftime("%H:%M"),
            "sequence_number": appointment.sequence_number,
            "fee_fen": appointment.fee_fen,
        },
        now=now,
    )
    return appointment


async def accept_offered_place(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment: Appointment,
    info: SessionInfo,
    pay_by: datetime,
    now: datetime,
) -> None:
    """The waiter takes the held place (locked by the caller): a free one is booked at
    once, with its confirmation and reminders; a paid one stays held until `pay_by`."""
    before = snapshot(appointment)
    if appointment.fee_fen == 0:
        appointment.status = rules.transition(AppointmentStatus(appointment.status), "accept")
        appointment.booked_at = now
        appointment.hold_expires_at = None
        kind = MessageKind.BOOKING_CONFIRMED
    else:
        appointment.hold_expires_at = pay_by
        kind = MessageKind.BOOKING_HELD
    appointment.updated_at = now
    record_audit(
        session,
        actor=actor,
        action="accept_offer",
        entity_type="appointment",
        entity_id=appointment.id,
        before=before,
        after=snapshot(appointment),
        now=now,
    )
    slot_start = await session.scalar(
        select(SlotPool.slot_start).where(SlotPool.id == appointment.pool_id)
    )
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=kind,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        payload=_message_payload(appointment, info, slot_start),
        now=now,
    )
    if AppointmentStatus(appointment.status) is S.BOOKED:
        await schedule_reminders(
            session,
            hospital_id=actor.hospital_id,
            patient_id=appointment.patient_id,
            appointment_id=appointment.id,
            visit_date=appointment.visit_date,
            slot_start=slot_start or info.start_time,
            payload={"appointment_id": str(appointment.id)},
            now=now,
        )


async def decline_offered_place(
    session: AsyncSession, *, actor: Actor, appointment: Appointment, now: datetime
) -> None:
    """The waiter gives the held place (locked by the caller) up; the release passes it to
    the next eligible waiter, or back to the pool. No message: the waiter chose this."""
    await _cancel_locked(
        session,
        actor=actor,
        appointment=appointment,
        reason=CancelReason.PATIENT,
        note=None,
        now=now,
        notify=False,
    )


@dataclass(frozen=True, slots=True)
class Moved:
    """A booking of a stopped clinic that its substitute took over (替诊)."""

    from_appointment_id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    sequence_number: int
    slot_start: time
    number_kept: bool
    time_kept: bool


@dataclass(frozen=True, slots=True)
class StopOutcome:
    cancelled: list[Appointment]
    moved: list[Moved]


def _substitute_facts(clinic: ClinicSession) -> rules.SubstituteFacts:
    return rules.SubstituteFacts(
        id=clinic.id,
        date=clinic.date,
        department_id=clinic.department_id,
        level_id=clinic.level_id,
        fee_fen=clinic.fee_fen,
        status=SessionStatus(clinic.status),
    )


async def stop_clinic(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    reason: str,
    now: datetime,
    substitute_session_id: uuid.UUID | None = None,
) -> StopOutcome:
    """Stops a session (停诊): no new claims, and every active booking either moves to the
    substitute session (替诊), when one is named and has room, or is cancelled with the
    reason. Each patient gets one message saying which; paid bookings that move keep
    their payment, those cancelled are refunded (payments hears the cancellation)."""
    require_staff(actor, Role.SCHEDULER)
    wanted = sorted({session_id, *([substitute_session_id] if substitute_session_id else [])})
    # Both rows locked in one order, so two stops naming each other cannot deadlock.
    locked = {
        clinic.id: clinic
        for clinic in (
            await session.scalars(
                select(ClinicSession)
                .where(ClinicSession.id.in_(wanted), ClinicSession.hospital_id == actor.hospital_id)
                .order_by(ClinicSession.id)
                .with_for_update()
            )
        ).all()
    }
    clinic = locked.get(session_id)
    if clinic is None:
        raise NotFound(what="session")
    if clinic.status != SessionStatus.OPEN:
        raise rules.InvalidTransition(state=str(clinic.status), action="stop")
    substitute: ClinicSession | None = None
    if substitute_session_id is not None:
        substitute = locked.get(substitute_session_id)
        if substitute is None:
            raise NotFound(what="session")
        rules.check_substitute(_substitute_facts(clinic), _substitute_facts(substitute))
    # Closing the pools first waits out any claim in flight and blocks every later one.
    await session.execute(
        update(SlotPool)
        .where(SlotPool.session_id == session_id)
        .values(is_open=False)
        .execution_options(synchronize_session=False)
    )
    clinic.status = SessionStatus.STOPPED
    clinic.stop_reason = reason
    clinic.stopped_at = now
    active = (
        await session.scalars(
            select(Appointment)
            .where(Appointment.session_id == session_id, Appointment.status.in_(ACTIVE_STATUSES))
            .order_by(Appointment.sequence_number)
            .with_for_update()
        )
    ).all()
    cancelled: list[Appointment] = []
    moved: list[Moved] = []
    for appointment in active:
        if substitute is not None:
            move = await _move_to_substitute(
                session,
                actor=actor,
                appointment=appointment,
                stopped=clinic,
                substitute=substitute,
                reason=reason,
                now=now,
            )
            if move is not None:
                moved.append(move)
                continue
        await _cancel_locked(
            session,
            actor=actor,
            appointment=appointment,
            reason=CancelReason.STOP_CLINIC,
            note=reason,
            now=now,
        )
        cancelled.append(appointment)
    record_audit(
        session,
        actor=actor,
        action="stop_clinic",
        entity_type="clinic_session",
        entity_id=session_id,
        before={"status": "open"},
        after={
            "status": "stopped",
            "reason": reason,
            "cancelled": len(cancelled),
            "moved": len(moved),
            "substitute_session_id": str(substitute.id) if substitute else None,
        },
        now=now,
    )
    return StopOutcome(cancelled=cancelled, moved=moved)


async def _move_to_substitute(
    session: AsyncSession,
    *,
    actor: Actor,
    appointment: Appointment,
    stopped: ClinicSession,
    substitute: ClinicSession,
    reason: str,
    now: datetime,
) -> Moved | None:
    """Books the appointment's patient with the substitute on the same terms (status, fee,
    payment, channel), keeping the time and number where the substitute has them free, and
    cancels the old booking without a message of its own. None when it cannot move: it is
    checked in already (the desk sees to that patient), a payment cannot follow it, the
    patient already has a booking with the substitute, or no place is left."""
    if not rules.movable_to_substitute(
        AppointmentStatus(appointment.status),
        fee_fen=appointment.fee_fen,
        paid_fen=appointment.paid_fen,
        refund_state=appointment.refund_state,
    ):
        return None
    has_one = await session.scalar(
        select(Appointment.id).where(
            Appointment.patient_id == appointment.patient_id,
            Appointment.session_id == substitute.id,
            Appointment.status.in_(ACTIVE_STATUSES),
        )
    )
    if has_one is not None:
        return None
    old_pool, old_start = (
        await session.execute(
            select(SlotPool.pool, SlotPool.slot_start).where(SlotPool.id == appointment.pool_id)
        )
    ).one()
    pools = [
        rules.SubstitutePool(
            id=row.id,
            pool=row.pool,
            slot_start=row.slot_start,
            first_number=row.first_number,
            capacity=row.capacity,
            free=row.capacity - row.taken,
        )
        for row in (
            await session.execute(
                select(
                    SlotPool.id,
                    SlotPool.pool,
                    SlotPool.slot_start,
                    SlotPool.first_number,
                    SlotPool.capacity,
                    SlotPool.taken,
                ).where(SlotPool.session_id == substitute.id, SlotPool.is_open)
            )
        ).all()
    ]
    db = await driver(session)
    for candidate in rules.substitute_preference(
        pools, slot_start=old_start, number=appointment.sequence_number, pool=old_pool
    ):
        place = await store.claim_place(
            db, session_id=substitute.id, pools=[candidate.pool], slot_id=None, pool_id=candidate.id
        )
        if place is not None:
            break
    else:
        return None
    used = place.used_numbers
    if used is None:
        used = tuple(r[0] for r in await db.fetch(store.USED_NUMBERS, place.pool_id))
    number = rules.kept_number(candidate, appointment.sequence_number, used)
    status = AppointmentStatus(appointment.status)
    carried = status is AppointmentStatus.BOOKED and bool(appointment.paid_fen)
    taken_over = Appointment(
        id=new_id(),
        hospital_id=appointment.hospital_id,
        patient_id=appointment.patient_id,
        session_id=substitute.id,
        slot_id=place.slot_id,
        pool_id=place.pool_id,
        department_id=substitute.department_id,
        doctor_id=substitute.doctor_id,
        visit_date=substitute.date,
        channel=appointment.channel,
        status=status,
        sequence_number=number,
        fee_fen=appointment.fee_fen,
        voucher_code=await _free_voucher_code(session, appointment.hospital_id),
        hold_expires_at=appointment.hold_expires_at,
        booked_at=now if status is AppointmentStatus.BOOKED else None,
        rescheduled_from_id=appointment.id,
        paid_fen=appointment.paid_fen,
        payment_provider=appointment.payment_provider,
        payment_reference=appointment.payment_reference,
        split_pool_fen=appointment.split_pool_fen,
        split_account_fen=appointment.split_account_fen,
        split_self_pay_fen=appointment.split_self_pay_fen,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(taken_over)
    await session.flush()
    await _cancel_locked(
        session,
        actor=actor,
        appointment=appointment,
        reason=CancelReason.STOP_CLINIC,
        note=reason,
        now=now,
        notify=False,
        payment_follows=carried,
    )
    record_audit(
        session,
        actor=actor,
        action="substitute",
        entity_type="appointment",
        entity_id=taken_over.id,
        before=snapshot(appointment),
        after={**snapshot(taken_over), "from_appointment_id": str(appointment.id)},
        now=now,
    )
    stopped_doctor = (
        await session.scalar(select(Doctor.name).where(Doctor.id == stopped.doctor_id))
        if stopped.doctor_id
        else None
    )
    enqueue(
        session,
        hospital_id=taken_over.hospital_id,
        kind=MessageKind.SUBSTITUTED,
        patient_id=taken_over.patient_id,
        appointment_id=taken_over.id,
        payload={
            "appointment_id": str(taken_over.id),
            "from_doctor": stopped_doctor or "",
            "from_time": old_start.strftime("%H:%M"),
            "from_sequence_number": appointment.sequence_number,
            "note": reason,
        },
        now=now,
    )
    if status is AppointmentStatus.BOOKED:
        await schedule_reminders(
            session,
            hospital_id=taken_over.hospital_id,
            patient_id=taken_over.patient_id,
            appointment_id=taken_over.id,
            visit_date=taken_over.visit_date,
            slot_start=place.slot_start,
            payload={"appointment_id": str(taken_over.id)},
            now=now,
        )
    if carried:
        await events.publish(
            session,
            events.PaymentCarriedOver(
                hospital_id=taken_over.hospital_id,
                from_appointment_id=appointment.id,
                to_appointment_id=taken_over.id,
                patient_id=taken_over.patient_id,
                actor=actor,
                at=now,
                told=True,
            ),
        )
    return Moved(
        from_appointment_id=appointment.id,
        appointment_id=taken_over.id,
        patient_id=taken_over.patient_id,
        sequence_number=number,
        slot_start=place.slot_start,
        number_kept=number == appointment.sequence_number,
        time_kept=place.slot_start == old_start,
    )


@dataclass(frozen=True, slots=True)
class Substitute:
    session_id: uuid.UUID
    date: date
    period: str
    start_time: time
    end_time: time
    doctor_id: uuid.UUID | None
    doctor_name: str | None
    free_places: int


async def substitutes(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID
) -> list[Substitute]:
    """The open sessions that could take over a clinic's bookings if it stopped (same day,
    department, level and fee), those of the same half-day first, with their free places."""
    require_staff(actor, Role.SCHEDULER)
    clinic = await session.scalar(
        select(ClinicSession).where(
            ClinicSession.id == session_id, ClinicSession.hospital_id == actor.hospital_id
        )
    )
    if clinic is None:
        raise NotFound(what="session")
    free = (
        select(
            SlotPool.session_id,
            func.sum(SlotPool.capacity - SlotPool.taken).label("free"),
        )
        .where(SlotPool.is_open)
        .group_by(SlotPool.session_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(ClinicSession, Doctor.name, func.coalesce(free.c.free, 0))
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .outerjoin(free, free.c.session_id == ClinicSession.id)
            .where(
                ClinicSession.hospital_id == actor.hospital_id,
                ClinicSession.date == clinic.date,
                ClinicSession.department_id == clinic.department_id,
                ClinicSession.level_id == clinic.level_id,
                ClinicSession.fee_fen == clinic.fee_fen,
                ClinicSession.status == SessionStatus.OPEN,
                ClinicSession.id != clinic.id,
            )
        )
    ).all()
    found = [
        Substitute(
            session_id=other.id,
            date=other.date,
            period=str(other.period),
            start_time=other.start_time,
            end_time=other.end_time,
            doctor_id=other.doctor_id,
            doctor_name=doctor_name,
            free_places=int(free_places),
        )
        for other, doctor_name, free_places in rows
    ]
    found.sort(key=lambda c: (c.period != str(clinic.period), c.start_time, -c.free_places))
    return found


@dataclass(frozen=True, slots=True)
class DaySession:
    """A clinic session of one day as the stop-clinic pages list it."""

    session_id: uuid.UUID
    department_name: str
    department_name_en: str
    doctor_name: str | None
    level_name: str
    level_name_en: str
    period: str
    start_time: time
    end_time: time
    status: str
    capacity: int
    active: int
    is_extra: bool


async def day_sessions(
    session: AsyncSession, *, actor: Actor, day: date, department_id: uuid.UUID | None = None
) -> list[DaySession]:
    """Every session of a day (of one department, if given), with its active bookings."""
    require_staff(actor, Role.SCHEDULER)
    active = (
        select(Appointment.session_id, func.count().label("n"))
        .where(Appointment.visit_date == day, Appointment.status.in_(ACTIVE_STATUSES))
        .group_by(Appointment.session_id)
        .subquery()
    )
    query = (
        select(
            ClinicSession,
            Department.name,
            Department.name_en,
            Doctor.name,
            RegistrationLevel.name,
            RegistrationLevel.name_en,
            func.coalesce(active.c.n, 0),
        )
        .join(Department, Department.id == ClinicSession.department_id)
        .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
        .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
        .outerjoin(active, active.c.session_id == ClinicSession.id)
        .where(ClinicSession.hospital_id == actor.hospital_id, ClinicSession.date == day)
        .order_by(Department.name, ClinicSession.start_time, Doctor.name)
    )
    if department_id is not None:
        query = query.where(ClinicSession.department_id == department_id)
    return [
        DaySession(
            session_id=clinic.id,
            department_name=department_name,
            department_name_en=department_name_en or "",
            doctor_name=doctor_name,
            level_name=level_name,
            level_name_en=level_name_en or "",
            period=str(clinic.period),
            start_time=clinic.start_time,
            end_time=clinic.end_time,
            status=str(clinic.status),
            capacity=clinic.capacity,
            active=int(count),
            is_extra=clinic.is_extra,
        )
        for (
            clinic,
            department_name,
            department_name_en,
            doctor_name,
            level_name,
            level_name_en,
            count,
        ) in (await session.execute(query)).all()
    ]


@dataclass(frozen=True, slots=True)
class RosterEntry:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    sequence_number: int
    slot_start: time
    status: str
    paid_fen: int | None


async def session_roster(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID
) -> list[RosterEntry]:
    """A session's active bookings in number order, as a stop would find them."""
    require_staff(actor, Role.SCHEDULER)
    rows = await session.execute(
        select(Appointment, SlotPool.slot_start)
        .join(SlotPool, SlotPool.id == Appointment.pool_id)
        .where(
            Appointment.hospital_id == actor.hospital_id,
            Appointment.session_id == session_id,
            Appointment.status.in_(ACTIVE_STATUSES),
        )
        .order_by(Appointment.sequence_number)
    )
    return [
        RosterEntry(
            appointment_id=a.id,
            patient_id=a.patient_id,
            sequence_number=a.sequence_number,
            slot_start=slot_start,
            status=str(a.status),
            paid_fen=a.paid_fen,
        )
        for a, slot_start in rows
    ]


async def _free_voucher_code(session: AsyncSession, hospital_id: uuid.UUID) -> str:
    """A voucher code no appointment of the hospital has (the codes are unique per
    hospital, cancelled bookings included)."""
    while True:
        code = store.new_voucher_code()
        clash = await session.scalar(
            select(Appointment.id).where(
                Appointment.hospital_id == hospital_id, Appointment.voucher_code == code
            )
        )
        if clash is None:
            return code


async def add_extra_places(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    count: int,
    pool: str,
    slot_id: uuid.UUID | None,
    now: datetime,
) -> scheduling_service.ExtraPlaces:
    """加号: scheduling adds the places; patients waiting for the session get them first,
    in this transaction, before any other booker can see them."""
    from yuyue.booking.waitlist import service as waitlist_service

    added = await scheduling_service.add_extra_places(
        session,
        actor=actor,
        session_id=session_id,
        count=count,
        pool=pool,
        slot_id=slot_id,
        now=now,
    )
    await waitlist_service.offer_places(
        session, actor=actor, session_id=session_id, pool_id=added.pool_id, count=count, now=now
    )
    return added


async def get_appointment(
    session: AsyncSession, *, hospital_id: uuid.UUID, appointment_id: uuid.UUID
) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.hospital_id != hospital_id:
        raise NotFound(what="appointment")
    return appointment


async def patients_with_visits(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    first_day: date,
    last_day: date,
    campus_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """The patients with an active appointment (held, booked or checked in) between the
    two days, optionally at one campus, department or clinic session; each patient once,
    however many appointments they have. For hospital notices (operations)."""
    query = (
        select(Appointment.patient_id)
        .where(
            Appointment.hospital_id == hospital_id,
            Appointment.visit_date >= first_day,
            Appointment.visit_date <= last_day,
            Appointment.status.in_([s.value for s in ACTIVE_STATUSES]),
        )
        .distinct()
        .order_by(Appointment.patient_id)
    )
    if session_id is not None:
        query = query.where(Appointment.session_id == session_id)
    if department_id is not None:
        query = query.where(Appointment.department_id == department_id)
    if campus_id is not None:
        query = query.where(
            Appointment.department_id.in_(
                select(Department.id).where(Department.campus_id == campus_id)
            )
        )
    return list((await session.scalars(query)).all())


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
    await lock_patient(session, hospital_id=actor.hospital_id, patient_id=patient_id, now=now)
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


def remaining_by_session(pools: Sequence[str], *conditions: Any) -> Any:
    """Places left per session for these pools, restricted to sessions matching
    `conditions` (on ClinicSession) so the aggregate never scans the whole inventory."""
    return (
        select(
            SlotPool.session_id,
            func.sum(SlotPool.capacity - SlotPool.taken).label("remaining"),
        )
        .join(ClinicSession, ClinicSession.id == SlotPool.session_id)
        .where(SlotPool.pool.in_(pools), SlotPool.is_open.is_(True), *conditions)
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
    caches: Caches = NO_CACHE,
) -> list[dict[str, Any]]:
    """Nearest bookable alternatives for a sold-out request: other slots of the session,
    the same doctor's next sessions, then doctors of the same level in the department."""
    info, policy = await session_facts(
        session, hospital_id=actor.hospital_id, session_id=session_id, caches=caches
    )
    pools = pools_for_channel(actor.channel)
    found: list[dict[str, Any]] = []
    if slot_id is not None:
        left = func.sum(SlotPool.capacity - SlotPool.taken)
        slots = await session.execute(
            select(SlotPool.slot_id, SlotPool.slot_start, SlotPool.slot_end, left)
            .where(
                SlotPool.session_id == session_id,
                SlotPool.slot_id != slot_id,
                SlotPool.pool.in_(pools),
                SlotPool.is_open.is_(True),
            )
            .group_by(
                SlotPool.slot_id, SlotPool.slot_start, SlotPool.slot_end, SlotPool.slot_ordinal
            )
            .having(left > 0)
            .order_by(SlotPool.slot_ordinal)
            .limit(3)
        )
        for other_slot, start, end, remaining in slots:
            found.append(
                {
                    "kind": "slot",
                    "session_id": str(session_id),
                    "slot_id": str(other_slot),
                    "date": info.date.isoformat(),
                    "start": start.strftime("%H:%M"),
                    "end": end.strftime("%H:%M"),
                    "remaining": int(remaining),
                }
            )
    horizon = local_today(now, info.timezone) + timedelta(days=policy.release_days_ahead)
    in_range = (
        ClinicSession.hospital_id == actor.hospital_id,
        ClinicSession.id != session_id,
        ClinicSession.status == SessionStatus.OPEN,
        ClinicSession.date >= info.date,
        ClinicSession.date <= horizon,
    )
    queries: list[tuple[str, tuple[Any, ...]]] = []
    if info.doctor_id is not None:
        queries.append(("same_doctor", (ClinicSession.doctor_id == info.doctor_id,)))
    queries.append(
        (
            "same_level",
            (
                ClinicSession.department_id == info.department_id,
                ClinicSession.level_id == info.level_id,
                ClinicSession.doctor_id.is_distinct_from(info.doctor_id),
            ),
        )
    )
    for kind, narrowing in queries:
        remaining = remaining_by_session(pools, *in_range, *narrowing)
        candidates = await session.execute(
            select(ClinicSession, Doctor.name, remaining.c.remaining)
            .join(remaining, remaining.c.session_id == ClinicSession.id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .where(remaining.c.remaining > 0)
            .order_by(ClinicSession.date, ClinicSession.start_time)
            .limit(12)
        )
        for candidate, doctor_name, left_places in candidates:
            facts = rules.SessionFacts(
                candidate.id,
                candidate.date,
                candidate.start_time,
                candidate.end_time,
                candidate.department_id,
                candidate.doctor_id,
                SessionStatus(candidate.status),
                info.timezone,
            )
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
                    "remaining": int(left_places),
                }
            )
            if len(found) >= limit:
                return found
    return found


async def held_places(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Per slot pool of these sessions, the places held (awaiting payment, or offered from
    the waitlist) rather than booked. A pool's `taken` counts both: held + booked = taken."""
    if not session_ids:
        return {}
    rows = await session.execute(
        select(Appointment.pool_id, func.count())
        .where(
            Appointment.hospital_id == hospital_id,
            Appointment.session_id.in_(list(session_ids)),
            Appointment.status == AppointmentStatus.HELD,
        )
        .group_by(Appointment.pool_id)
    )
    return {pool_id: int(n) for pool_id, n in rows}


async def hold_counts(session: AsyncSession, *, now: datetime) -> tuple[int, int]:
    """(holds open, holds past their deadline not yet expired by the sweep), for the
    operator's metrics: the second stays near zero unless the sweep has stalled."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Appointment.hold_expires_at <= now),
            ).where(Appointment.status == AppointmentStatus.HELD)
        )
    ).one()
    return int(row[0]), int(row[1])


async def appointment_statuses(
    session: AsyncSession, *, hospital_id: uuid.UUID, appointment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AppointmentStatus]:
    """The status of each of these appointments of the hospital (missing ones are absent):
    what the T+1 reconciliation asks to tell a booked charge from one with no booking."""
    found: dict[uuid.UUID, AppointmentStatus] = {}
    ids = list(dict.fromkeys(appointment_ids))
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(Appointment.id, Appointment.status).where(
                Appointment.hospital_id == hospital_id, Appointment.id.in_(ids[start : start + 500])
            )
        )
        found.update({row[0]: AppointmentStatus(row[1]) for row in rows})
    return found
