"""Waitlist use cases. Each runs inside the caller's transaction and never commits.

A returned place never becomes visible to other bookers while someone waits for it: the
transaction that returns it (cancel, expiry, a declined offer, extra places) takes it again
at once, under the pool row's lock, for the first eligible waiter, as a held appointment
with the offer's deadline.

Lock order, as on the booking path: patient row → waitlist entry → slot_pool row →
appointment row. The next waiter is read without a lock, then their patient row is locked
and the entry re-read under a lock: a concurrent transaction that offered to the same waiter
has committed by then, so the entry is no longer `waiting` and the next one is tried. (A
cancel holds the cancelled appointment before it reaches the waiter's patient row; the rare
deadlock this allows is retried whole by ``Database.transact``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import rules as booking_rules
from yuyue.booking import service as booking_service
from yuyue.booking.facts import SessionInfo, load_policy
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus, CancelReason
from yuyue.booking.waitlist import rules
from yuyue.booking.waitlist.models import WaitlistEntry
from yuyue.booking.waitlist.states import ACTIVE_ENTRY_STATUSES, WaitlistStatus
from yuyue.kit.errors import NotFound, YuyueError
from yuyue.scheduling.enums import Channel, Period, SessionStatus
from yuyue.scheduling.models import ClinicSession, Department, Doctor, Hospital, SlotPool
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.rules import Actor
from yuyue.staff.service import record_audit

W = WaitlistStatus
NO_CACHE = booking_service.NO_CACHE
Caches = booking_service.Caches


def _snapshot(entry: WaitlistEntry) -> dict[str, Any]:
    return {
        "status": str(entry.status),
        "session_id": str(entry.session_id),
        "channel": entry.channel,
        "reason": entry.reason,
        "offer_appointment_id": str(entry.offer_appointment_id)
        if entry.offer_appointment_id
        else None,
        "offer_expires_at": entry.offer_expires_at.isoformat() if entry.offer_expires_at else None,
    }


def _audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entry: WaitlistEntry,
    before: dict[str, Any] | None,
    now: datetime,
) -> None:
    record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="waitlist_entry",
        entity_id=entry.id,
        before=before,
        after=_snapshot(entry),
        now=now,
    )


async def _remaining_for_channel(
    session: AsyncSession, *, session_id: uuid.UUID, channel: Channel
) -> int:
    left = await session.scalar(
        select(func.coalesce(func.sum(SlotPool.capacity - SlotPool.taken), 0)).where(
            SlotPool.session_id == session_id,
            SlotPool.pool.in_(pools_for_channel(channel)),
            SlotPool.is_open.is_(True),
        )
    )
    return int(left or 0)


async def _active_entries(
    session: AsyncSession, *, patient_id: uuid.UUID
) -> list[rules.EntryFacts]:
    rows = await session.execute(
        select(WaitlistEntry.session_id, WaitlistEntry.status).where(
            WaitlistEntry.patient_id == patient_id,
            WaitlistEntry.status.in_(ACTIVE_ENTRY_STATUSES),
        )
    )
    return [rules.EntryFacts(r[0], WaitlistStatus(r[1])) for r in rows]


# --- joining and leaving ------------------------------------------------------------------


async def join(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime,
    caches: Caches = NO_CACHE,
) -> WaitlistEntry:
    """Puts the patient in line for a full session. Joining is not a booking: no place is
    taken and nothing counts against the booking limits."""
    patient, blacklist = await booking_service.lock_patient(
        session, hospital_id=actor.hospital_id, patient_id=patient_id, now=now
    )
    info, policy = await booking_service.session_facts(
        session, hospital_id=actor.hospital_id, session_id=session_id, caches=caches
    )
    facts = info.facts
    booking_rules.check_session_open(facts)
    booking_rules.check_window(policy, facts, channel=actor.channel, now=now)
    rules.check_open(policy, facts, now=now)
    await booking_service.check_may_book(
        session,
        info=info,
        policy=policy,
        patient=patient,
        blacklist=blacklist,
        channel=actor.channel,
        now=now,
    )
    rules.check_can_join(
        policy,
        facts,
        remaining_for_channel=await _remaining_for_channel(
            session, session_id=session_id, channel=actor.channel
        ),
        entries=await _active_entries(session, patient_id=patient.id),
    )
    entry = WaitlistEntry(
        hospital_id=actor.hospital_id,
        session_id=session_id,
        patient_id=patient.id,
        channel=actor.channel.value,
        status=W.WAITING,
        created_by=actor.audit_name,
        created_at=now,
        updated_at=now,
    )
    session.add(entry)
    await session.flush()
    _audit(session, actor=actor, action="waitlist_join", entry=entry, before=None, now=now)
    return entry


async def _lock_entry(
    session: AsyncSession, *, hospital_id: uuid.UUID, entry_id: uuid.UUID, now: datetime
) -> WaitlistEntry:
    """The entry, locked after its patient's row (the lock order of the booking path)."""
    patient_id = await session.scalar(
        select(WaitlistEntry.patient_id).where(
            WaitlistEntry.id == entry_id, WaitlistEntry.hospital_id == hospital_id
        )
    )
    if patient_id is None:
        raise NotFound(what="waitlist_entry")
    await booking_service.lock_patient(
        session, hospital_id=hospital_id, patient_id=patient_id, now=now
    )
    entry = await session.scalar(
        select(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert entry is not None  # entries are never deleted
    return entry


async def leave(
    session: AsyncSession,
    *,
    actor: Actor,
    entry_id: uuid.UUID,
    now: datetime,
) -> WaitlistEntry:
    """Leaves the line. Always possible while waiting; an entry holding an offer declines
    it (the place passes to the next waiter)."""
    entry = await _lock_entry(session, hospital_id=actor.hospital_id, entry_id=entry_id, now=now)
    if WaitlistStatus(entry.status) is W.OFFERED:
        return await _decline_locked(session, actor=actor, entry=entry, now=now)
    before = _snapshot(entry)
    entry.status = rules.transition(WaitlistStatus(entry.status), "leave")
    entry.updated_at = now
    _audit(session, actor=actor, action="waitlist_leave", entry=entry, before=before, now=now)
    await session.flush()
    return entry


# --- accepting and declining an offer ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    entry: WaitlistEntry
    appointment: Appointment


async def accept_offer(
    session: AsyncSession,
    *,
    actor: Actor,
    entry_id: uuid.UUID,
    now: datetime,
    caches: Caches = NO_CACHE,
) -> Accepted:
    """Takes the offered place: a free session is booked at once; a paid one stays held
    until `booking.service.confirm_payment`, with at least the ordinary hold time to pay."""
    entry = await _lock_entry(session, hospital_id=actor.hospital_id, entry_id=entry_id, now=now)
    status = rules.transition(WaitlistStatus(entry.status), "accept")
    assert entry.offer_appointment_id is not None  # an offered entry always has its offer
    appointment = await booking_service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=entry.offer_appointment_id
    )
    held = AppointmentStatus(appointment.status)
    if held is not AppointmentStatus.HELD or (
        appointment.hold_expires_at is not None and now >= appointment.hold_expires_at
    ):
        # Past its deadline: the sweep (or the next claim) passes the place on.
        raise rules.OfferExpired()
    info, policy = await booking_service.session_facts(
        session, hospital_id=actor.hospital_id, session_id=appointment.session_id, caches=caches
    )
    before = _snapshot(entry)
    await booking_service.accept_offered_place(
        session,
        actor=actor,
        appointment=appointment,
        info=info,
        pay_by=rules.paid_hold_expires_at(
            policy, offer_expires=appointment.hold_expires_at or now, now=now
        ),
        now=now,
    )
    entry.status = status
    entry.updated_at = now
    _audit(session, actor=actor, action="waitlist_accept", entry=entry, before=before, now=now)
    await session.flush()
    return Accepted(entry, appointment)


async def decline_offer(
    session: AsyncSession,
    *,
    actor: Actor,
    entry_id: uuid.UUID,
    now: datetime,
) -> WaitlistEntry:
    """Gives the offered place up; it goes to the next eligible waiter in this
    transaction, or back to the pool when nobody can take it."""
    entry = await _lock_entry(session, hospital_id=actor.hospital_id, entry_id=entry_id, now=now)
    return await _decline_locked(session, actor=actor, entry=entry, now=now)


async def _decline_locked(
    session: AsyncSession, *, actor: Actor, entry: WaitlistEntry, now: datetime
) -> WaitlistEntry:
    rules.transition(WaitlistStatus(entry.status), "decline")
    assert entry.offer_appointment_id is not None
    appointment = await booking_service.lock_appointment(
        session, hospital_id=actor.hospital_id, appointment_id=entry.offer_appointment_id
    )
    # Giving the held offer up releases its place; `place_returned` records the decline
    # on this entry and offers the place to the next waiter.
    await booking_service.decline_offered_place(
        session, actor=actor, appointment=appointment, now=now
    )
    await session.flush()
    return entry


# --- offering places ----------------------------------------------------------------------


async def place_returned(
    session: AsyncSession, *, actor: Actor, appointment: Appointment, now: datetime
) -> bool:
    """Called by booking after `appointment` gave its place back to its pool (cancel,
    expiry, a declined offer), in the same transaction and while the pool row is locked.

    Records how an offer made through this appointment ended, then offers the place to the
    next eligible waiter. True when the appointment was an offer never taken (booking
    records that on it)."""
    offer_ended = await _settle_offer(session, actor=actor, appointment=appointment, now=now)
    if appointment.cancel_reason == CancelReason.STOP_CLINIC.value:
        await _close_line(
            session,
            actor=actor,
            session_id=appointment.session_id,
            reason="session_stopped",
            now=now,
        )
        return offer_ended
    await offer_places(
        session,
        actor=actor,
        session_id=appointment.session_id,
        pool_id=appointment.pool_id,
        count=1,
        now=now,
    )
    return offer_ended


async def _settle_offer(
    session: AsyncSession, *, actor: Actor, appointment: Appointment, now: datetime
) -> bool:
    """Ends the entry whose offer this appointment was; True when the offer was still open
    (never taken)."""
    entry = await session.scalar(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.offer_appointment_id == appointment.id,
            WaitlistEntry.status.in_((W.OFFERED, W.ACCEPTED)),
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if entry is None:
        return False
    status = WaitlistStatus(entry.status)
    ended = AppointmentStatus(appointment.status)
    if ended is AppointmentStatus.EXPIRED:
        action = "lapse"
    elif status is W.ACCEPTED:
        return False  # an accepted place later cancelled is an ordinary cancellation
    elif appointment.cancel_reason == CancelReason.STOP_CLINIC.value:
        action = "close"
    else:
        action = "decline"
    before = _snapshot(entry)
    entry.status = rules.transition(status, action)
    entry.reason = "session_stopped" if action == "close" else None
    entry.updated_at = now
    _audit(session, actor=actor, action=f"waitlist_{action}", entry=entry, before=before, now=now)
    return status is W.OFFERED


async def offer_places(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    pool_id: uuid.UUID,
    count: int,
    now: datetime,
) -> int:
    """Offers up to `count` free places of one pool to the session's waiters, in line
    order, skipping those the booking rules now refuse. Returns how many were offered.

    Called with places just returned (or just added) to the pool in this transaction, so
    nobody else can have taken them meanwhile."""
    waiting = await session.scalar(
        select(WaitlistEntry.id)
        .where(WaitlistEntry.session_id == session_id, WaitlistEntry.status == W.WAITING)
        .limit(1)
    )
    if waiting is None:
        return 0
    info, policy = await booking_service.session_facts(
        session, hospital_id=actor.hospital_id, session_id=session_id, caches=NO_CACHE
    )
    if info.status is not SessionStatus.OPEN or not policy.waitlist_enabled:
        return 0
    if now >= rules.closes_at(policy, info.facts):
        await _close_line(
            session, actor=actor, session_id=session_id, reason="waitlist_closed", now=now
        )
        return 0
    pool = await session.scalar(select(SlotPool.pool).where(SlotPool.id == pool_id))
    if pool is None:
        return 0
    channels = [c.value for c in rules.channels_for_pool(pool)]
    offered = 0
    seen: set[uuid.UUID] = set()
    while offered < count:
        found = await _next_eligible(
            session, actor=actor, info=info, policy=policy, channels=channels, seen=seen, now=now
        )
        if found is None:
            break
        if not await _offer(
            session,
            actor=actor,
            entry=found,
            info=info,
            policy=policy,
            pool_id=pool_id,
            pool=pool,
            now=now,
        ):
            break
        offered += 1
    return offered


async def _next_eligible(
    session: AsyncSession,
    *,
    actor: Actor,
    info: SessionInfo,
    policy: booking_rules.Policy,
    channels: Sequence[str],
    seen: set[uuid.UUID],
    now: datetime,
) -> WaitlistEntry | None:
    """The first waiter who may take a place of these channels' pools, with their patient
    row and entry locked; waiters the booking rules now refuse are skipped for good."""
    while True:
        query = (
            select(WaitlistEntry.id, WaitlistEntry.patient_id)
            .where(
                WaitlistEntry.session_id == info.id,
                WaitlistEntry.status == W.WAITING,
                WaitlistEntry.channel.in_(channels),
            )
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .limit(1)
        )
        if seen:
            query = query.where(WaitlistEntry.id.notin_(seen))
        candidate = (await session.execute(query)).one_or_none()
        if candidate is None:
            return None
        entry_id, patient_id = candidate
        seen.add(entry_id)
        patient, blacklist = await booking_service.lock_patient(
            session, hospital_id=info.hospital_id, patient_id=patient_id, now=now
        )
        entry = await session.scalar(
            select(WaitlistEntry)
            .where(WaitlistEntry.id == entry_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if entry is None or WaitlistStatus(entry.status) is not W.WAITING:
            continue  # offered or left meanwhile, by a transaction that has now committed
        try:
            await booking_service.check_may_book(
                session,
                info=info,
                policy=policy,
                patient=patient,
                blacklist=blacklist,
                channel=Channel(entry.channel),
                now=now,
            )
        except YuyueError as refusal:
            before = _snapshot(entry)
            entry.status = rules.transition(W.WAITING, "skip")
            entry.reason = rules.skip_reason(refusal)
            entry.updated_at = now
            _audit(
                session, actor=actor, action="waitlist_skip", entry=entry, before=before, now=now
            )
            continue
        return entry


async def _offer(
    session: AsyncSession,
    *,
    actor: Actor,
    entry: WaitlistEntry,
    info: SessionInfo,
    policy: booking_rules.Policy,
    pool_id: uuid.UUID,
    pool: str,
    now: datetime,
) -> bool:
    """Booking holds a place of the pool row for the waiter; the entry records the offer.
    False when the row had no place left."""
    expires = rules.offer_expires_at(policy, now=now)
    appointment = await booking_service.hold_offered_place(
        session,
        actor=actor,
        info=info,
        pool_id=pool_id,
        pool=pool,
        patient_id=entry.patient_id,
        channel=entry.channel,
        expires_at=expires,
        waitlist_entry_id=entry.id,
        now=now,
    )
    if appointment is None:
        return False
    before = _snapshot(entry)
    entry.status = rules.transition(W.WAITING, "offer")
    entry.offer_appointment_id = appointment.id
    entry.offer_expires_at = expires
    entry.reason = None
    entry.updated_at = now
    _audit(session, actor=actor, action="waitlist_offer", entry=entry, before=before, now=now)
    return True


async def _close_line(
    session: AsyncSession, *, actor: Actor, session_id: uuid.UUID, reason: str, now: datetime
) -> int:
    """Everyone still waiting for this session leaves the line (offers already made keep
    their deadline)."""
    waiting = (
        await session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.session_id == session_id, WaitlistEntry.status == W.WAITING)
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    for entry in waiting:
        before = _snapshot(entry)
        entry.status = rules.transition(W.WAITING, "close")
        entry.reason = reason
        entry.updated_at = now
        _audit(session, actor=actor, action="waitlist_close", entry=entry, before=before, now=now)
    return len(waiting)


async def close_waitlists(
    session: AsyncSession, *, actor: Actor, now: datetime, limit: int = 200
) -> int:
    """The sweep: closes the lines of the actor's hospital whose closing time has passed,
    whose session was stopped, or whose waitlist was switched off. Returns how many
    entries were closed. Places returned after the close go back to the pool as usual."""
    tz = await session.scalar(select(Hospital.timezone).where(Hospital.id == actor.hospital_id))
    if tz is None:
        raise NotFound(what="hospital")
    # Lines close at most a week before the session (the policy's upper bound), so lines
    # for later sessions cannot be due yet.
    horizon = now.astimezone(ZoneInfo(tz)).date() + timedelta(days=8)
    rows = (
        await session.execute(
            select(
                ClinicSession.id,
                ClinicSession.date,
                ClinicSession.start_time,
                ClinicSession.end_time,
                ClinicSession.department_id,
                ClinicSession.doctor_id,
                ClinicSession.status,
            )
            .where(
                ClinicSession.hospital_id == actor.hospital_id,
                ClinicSession.date <= horizon,
                ClinicSession.id.in_(
                    select(WaitlistEntry.session_id).where(
                        WaitlistEntry.hospital_id == actor.hospital_id,
                        WaitlistEntry.status == W.WAITING,
                    )
                ),
            )
            .order_by(ClinicSession.date, ClinicSession.start_time)
            .limit(limit)
        )
    ).all()
    policies: dict[uuid.UUID, booking_rules.Policy] = {}
    closed = 0
    for session_id, day, start, end, department_id, doctor_id, status in rows:
        if department_id not in policies:
            policies[department_id] = await load_policy(
                session, hospital_id=actor.hospital_id, department_id=department_id
            )
        facts = booking_rules.SessionFacts(
            session_id, day, start, end, department_id, doctor_id, SessionStatus(status), tz
        )
        policy = policies[department_id]
        if facts.status is not SessionStatus.OPEN:
            reason = "session_stopped"
        elif not rules.is_open(policy, facts, now=now):
            reason = "waitlist_closed"
        else:
            continue
        closed += await _close_line(
            session, actor=actor, session_id=session_id, reason=reason, now=now
        )
    return closed


# --- what the pages and the API show ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitlistView:
    id: uuid.UUID
    patient_id: uuid.UUID
    session_id: uuid.UUID
    status: WaitlistStatus
    reason: str | None
    channel: str
    date: date
    period: Period
    start_time: time
    end_time: time
    department_id: uuid.UUID
    department_name: str
    department_name_en: str
    doctor_id: uuid.UUID | None
    doctor_name: str | None
    doctor_title: str
    # 1 = next in line; only while waiting.
    position: int | None
    offer_appointment_id: uuid.UUID | None
    # Only while an offer is open.
    offer_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


async def _views(session: AsyncSession, *conditions: Any) -> list[WaitlistView]:
    rows = (
        await session.execute(
            select(
                WaitlistEntry,
                ClinicSession.date,
                ClinicSession.period,
                ClinicSession.start_time,
                ClinicSession.end_time,
                Department.id,
                Department.name,
                Department.name_en,
                Doctor.id,
                Doctor.name,
                Doctor.title,
            )
            .join(ClinicSession, ClinicSession.id == WaitlistEntry.session_id)
            .join(Department, Department.id == ClinicSession.department_id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .where(*conditions)
            .order_by(WaitlistEntry.created_at.desc(), WaitlistEntry.id.desc())
        )
    ).all()
    waiting_sessions = {r[0].session_id for r in rows if WaitlistStatus(r[0].status) is W.WAITING}
    lines: dict[uuid.UUID, list[tuple[datetime, uuid.UUID]]] = {}
    if waiting_sessions:
        line_rows = await session.execute(
            select(WaitlistEntry.session_id, WaitlistEntry.created_at, WaitlistEntry.id).where(
                WaitlistEntry.session_id.in_(waiting_sessions), WaitlistEntry.status == W.WAITING
            )
        )
        for session_id, created_at, entry_id in line_rows:
            lines.setdefault(session_id, []).append((created_at, entry_id))
    views: list[WaitlistView] = []
    for entry, day, period, start, end, dep_id, dep_name, dep_en, doc_id, doc_name, title in rows:
        status = WaitlistStatus(entry.status)
        views.append(
            WaitlistView(
                id=entry.id,
                patient_id=entry.patient_id,
                session_id=entry.session_id,
                status=status,
                reason=entry.reason,
                channel=entry.channel,
                date=day,
                period=Period(period),
                start_time=start,
                end_time=end,
                department_id=dep_id,
                department_name=dep_name,
                department_name_en=dep_en,
                doctor_id=doc_id,
                doctor_name=doc_name,
                doctor_title=title or "",
                position=rules.position_in_line(
                    (entry.created_at, entry.id), lines.get(entry.session_id, [])
                )
                if status is W.WAITING
                else None,
                offer_appointment_id=entry.offer_appointment_id,
                offer_expires_at=entry.offer_expires_at if status is W.OFFERED else None,
                created_at=entry.created_at,
                updated_at=entry.updated_at,
            )
        )
    return views


async def entries_for_patients(
    session: AsyncSession, *, hospital_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]
) -> list[WaitlistView]:
    """The patients' waitlist entries, newest first, with what a page shows."""
    if not patient_ids:
        return []
    return await _views(
        session,
        WaitlistEntry.hospital_id == hospital_id,
        WaitlistEntry.patient_id.in_(list(patient_ids)),
    )


async def entry_view(
    session: AsyncSession, *, hospital_id: uuid.UUID, entry_id: uuid.UUID
) -> WaitlistView:
    views = await _views(
        session, WaitlistEntry.hospital_id == hospital_id, WaitlistEntry.id == entry_id
    )
    if not views:
        raise NotFound(what="waitlist_entry")
    return views[0]
