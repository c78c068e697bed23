"""No-show use cases: the policy, the sweep that marks no-shows and bans, and appeals.
Each runs inside the caller's transaction and never commits.

The sweep keeps the write path's lock order (patient row, then appointment rows): it
finds candidates without locks, then per patient locks the patient row and that patient's
due bookings, both with SKIP LOCKED on PostgreSQL, so two sweeps never work on the same
patient and a patient busy booking is simply taken on the next pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.attendance import rules
from yuyue.attendance.models import AppealStatus, BlacklistAppeal, NoShowBan, NoShowPolicy
from yuyue.booking import service as booking_service
from yuyue.booking.models import Appointment, BlacklistEntry
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.errors import InvalidState, NotFound
from yuyue.kit.localtime import local_today
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.service import enqueue
from yuyue.patients.models import Patient
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.models import ClinicSession, Hospital
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

S = AppointmentStatus
# Staff who decide appeals: the registrars at the front desk (and admins).
APPEAL_ROLES = (Role.REGISTRAR,)
# Staff who set the no-show policy: the outpatient office's schedulers, who set the booking
# rules too (and admins).
POLICY_ROLES = (Role.SCHEDULER,)


# --- the policy ---------------------------------------------------------------------------


def policy_from_row(row: NoShowPolicy | None) -> rules.Policy:
    if row is None:
        return rules.Policy()
    return rules.Policy(
        threshold=row.threshold,
        window_days=row.window_days,
        ban_days=tuple(row.ban_days),
        grace_minutes=row.grace_minutes,
    )


async def load_policy(session: AsyncSession, *, hospital_id: uuid.UUID) -> rules.Policy:
    row = await session.scalar(select(NoShowPolicy).where(NoShowPolicy.hospital_id == hospital_id))
    return policy_from_row(row)


def _policy_json(policy: rules.Policy) -> dict[str, Any]:
    return {
        "threshold": policy.threshold,
        "window_days": policy.window_days,
        "ban_days": list(policy.ban_days),
        "grace_minutes": policy.grace_minutes,
    }


async def update_policy(
    session: AsyncSession, *, actor: Actor, changes: dict[str, Any], now: datetime
) -> rules.Policy:
    """Sets the hospital's no-show policy (scheduler or admin); fields left out keep their
    value."""
    require_staff(actor, *POLICY_ROLES)
    row = await session.scalar(
        select(NoShowPolicy).where(NoShowPolicy.hospital_id == actor.hospital_id).with_for_update()
    )
    before = policy_from_row(row)
    values = _policy_json(before) | {k: v for k, v in changes.items() if v is not None}
    if row is None:
        row = NoShowPolicy(hospital_id=actor.hospital_id, updated_at=now, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
    row.ban_days = list(rules.check_ban_days(row.ban_days))
    await session.flush()
    after = policy_from_row(row)
    record_audit(
        session,
        actor=actor,
        action="update_no_show_policy",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before=_policy_json(before),
        after=_policy_json(after),
        now=now,
    )
    return after


# --- the sweep ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepResult:
    marked: list[uuid.UUID]
    bans: list[uuid.UUID]


async def mark_no_shows(
    session: AsyncSession, *, actor: Actor, now: datetime, limit: int = 500
) -> SweepResult:
    """Bookings of sessions that ended (plus the grace) without a check-in become no-shows,
    each audited and told to the patient; a patient whose no-shows cross the policy gets
    one ban. Checked-in, cancelled, future and stopped-clinic bookings are never touched,
    and a second run finds nothing left to do."""
    hospital = await session.get(Hospital, actor.hospital_id)
    if hospital is None:
        raise NotFound(what="hospital")
    tz = hospital.timezone
    policy = await load_policy(session, hospital_id=actor.hospital_id)
    cutoff_date, cutoff_time = rules.due_cutoff(now, grace_minutes=policy.grace_minutes, tz=tz)
    due = and_(
        Appointment.hospital_id == actor.hospital_id,
        Appointment.status == S.BOOKED,
        ClinicSession.status == SessionStatus.OPEN,
        or_(
            ClinicSession.date < cutoff_date,
            and_(ClinicSession.date == cutoff_date, ClinicSession.end_time <= cutoff_time),
        ),
    )
    found = await session.scalars(
        select(Appointment.patient_id)
        .join(ClinicSession, ClinicSession.id == Appointment.session_id)
        .where(due)
        .order_by(Appointment.visit_date, Appointment.id)
        .limit(limit)
    )
    patients = list(dict.fromkeys(found))
    marked: list[uuid.UUID] = []
    bans: list[uuid.UUID] = []
    for patient_id in patients:
        locked = await session.scalar(
            select(Patient.id).where(Patient.id == patient_id).with_for_update(skip_locked=True)
        )
        if locked is None:
            continue
        rows = (
            await session.scalars(
                select(Appointment)
                .join(ClinicSession, ClinicSession.id == Appointment.session_id)
                .where(due, Appointment.patient_id == patient_id)
                .order_by(Appointment.visit_date, Appointment.id)
                .with_for_update(of=Appointment, skip_locked=True)
            )
        ).all()
        if not rows:
            continue
        for appointment in rows:
            await booking_service.change_status(
                session, actor=actor, appointment=appointment, action="mark_no_show", now=now
            )
            marked.append(appointment.id)
        await session.flush()
        entry = await _ban_if_due(
            session, actor=actor, patient_id=patient_id, policy=policy, tz=tz, now=now
        )
        if entry is not None:
            bans.append(entry.id)
    return SweepResult(marked, bans)


async def _ban_if_due(
    session: AsyncSession,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    policy: rules.Policy,
    tz: str,
    now: datetime,
) -> BlacklistEntry | None:
    today = local_today(now, tz)
    no_shows = [
        rules.NoShow(r[0], r[1])
        for r in await session.execute(
            select(Appointment.id, Appointment.visit_date).where(
                Appointment.patient_id == patient_id,
                Appointment.status == S.NO_SHOW,
                Appointment.visit_date > today - timedelta(days=policy.window_days),
            )
        )
    ]
    prior = [
        rules.PriorBan(
            starts_at=r[0],
            ends_at=r[1],
            lifted_at=r[2],
            appointment_ids=frozenset(uuid.UUID(i) for i in r[3]),
        )
        for r in await session.execute(
            select(
                BlacklistEntry.starts_at,
                BlacklistEntry.ends_at,
                BlacklistEntry.lifted_at,
                NoShowBan.appointment_ids,
            )
            .join(NoShowBan, NoShowBan.entry_id == BlacklistEntry.id)
            .where(NoShowBan.patient_id == patient_id)
        )
    ]
    decision = rules.decide_ban(policy, no_shows, prior, today=today, now=now)
    if decision is None:
        return None
    reason = rules.ban_reason(decision, policy)
    entry = BlacklistEntry(
        hospital_id=actor.hospital_id,
        patient_id=patient_id,
        reason=reason,
        starts_at=decision.starts_at,
        ends_at=decision.ends_at,
        created_by=actor.audit_name,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    session.add(
        NoShowBan(
            hospital_id=actor.hospital_id,
            patient_id=patient_id,
            entry_id=entry.id,
            appointment_ids=[str(n.appointment_id) for n in decision.counted],
            visit_dates=[d.isoformat() for d in decision.visit_dates],
            step=decision.step,
            window_days=policy.window_days,
            created_at=now,
        )
    )
    record_audit(
        session,
        actor=actor,
        action="blacklist",
        entity_type="patient",
        entity_id=patient_id,
        before=None,
        after={
            "entry_id": str(entry.id),
            "reason": reason,
            "starts_at": decision.starts_at.isoformat(),
            "ends_at": decision.ends_at.isoformat(),
            "step": decision.step,
            "appointments": [str(n.appointment_id) for n in decision.counted],
        },
        now=now,
    )
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=MessageKind.BLACKLISTED,
        patient_id=patient_id,
        appointment_id=None,
        payload={
            "entry_id": str(entry.id),
            "count": len(decision.counted),
            "window_days": policy.window_days,
            "dates": ", ".join(d.isoformat() for d in decision.visit_dates),
            "until": _local_day(decision.ends_at, tz),
        },
        now=now,
    )
    return entry


def _local_day(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).date().isoformat()


# --- what patients and staff see -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppealView:
    id: uuid.UUID
    entry_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    text: str
    status: AppealStatus
    decided_by: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None
    ban_reason: str
    ban_starts_at: datetime
    ban_ends_at: datetime
    ban_lifted_at: datetime | None


@dataclass(frozen=True, slots=True)
class BanView:
    id: uuid.UUID
    patient_id: uuid.UUID
    reason: str
    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None
    # For bans the no-show policy made: the missed days and the window, for a sentence in
    # the reader's language.
    visit_dates: list[str]
    window_days: int | None
    appeals: list[AppealView]

    def in_force(self, now: datetime) -> bool:
        return rules.is_in_force(ends_at=self.ends_at, lifted_at=self.lifted_at, now=now)

    @property
    def open_appeal(self) -> AppealView | None:
        return next((a for a in self.appeals if a.status is AppealStatus.SUBMITTED), None)

    @property
    def latest_appeal(self) -> AppealView | None:
        return self.appeals[0] if self.appeals else None


_APPEAL_COLUMNS = (BlacklistAppeal, Patient.name, BlacklistEntry)


def _appeal_view(appeal: BlacklistAppeal, name: str, entry: BlacklistEntry) -> AppealView:
    return AppealView(
        id=appeal.id,
        entry_id=appeal.entry_id,
        patient_id=appeal.patient_id,
        patient_name=name,
        text=appeal.text,
        status=AppealStatus(appeal.status),
        decided_by=appeal.decided_by,
        decision_note=appeal.decision_note,
        created_at=appeal.created_at,
        decided_at=appeal.decided_at,
        ban_reason=entry.reason,
        ban_starts_at=entry.starts_at,
        ban_ends_at=entry.ends_at,
        ban_lifted_at=entry.lifted_at,
    )


def _appeals_query() -> Any:
    return (
        select(*_APPEAL_COLUMNS)
        .join(Patient, Patient.id == BlacklistAppeal.patient_id)
        .join(BlacklistEntry, BlacklistEntry.id == BlacklistAppeal.entry_id)
    )


async def patient_bans(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    patient_ids: Sequence[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, list[BanView]]:
    """Each patient's bans that have not ended yet (lifted ones too, so the decision on an
    appeal stays visible until the ban would have ended), newest first."""
    if not patient_ids:
        return {}
    rows = (
        await session.execute(
            select(BlacklistEntry, NoShowBan.visit_dates, NoShowBan.window_days)
            .outerjoin(NoShowBan, NoShowBan.entry_id == BlacklistEntry.id)
            .where(
                BlacklistEntry.hospital_id == hospital_id,
                BlacklistEntry.patient_id.in_(patient_ids),
                BlacklistEntry.ends_at > now,
            )
            .order_by(BlacklistEntry.starts_at.desc(), BlacklistEntry.id)
        )
    ).all()
    appeals: dict[uuid.UUID, list[AppealView]] = {}
    if rows:
        found = await session.execute(
            _appeals_query()
            .where(BlacklistAppeal.entry_id.in_([r[0].id for r in rows]))
            .order_by(BlacklistAppeal.created_at.desc(), BlacklistAppeal.id.desc())
        )
        for appeal, name, entry in found:
            appeals.setdefault(appeal.entry_id, []).append(_appeal_view(appeal, name, entry))
    bans: dict[uuid.UUID, list[BanView]] = {}
    for entry, visit_dates, window_days in rows:
        bans.setdefault(entry.patient_id, []).append(
            BanView(
                id=entry.id,
                patient_id=entry.patient_id,
                reason=entry.reason,
                starts_at=entry.starts_at,
                ends_at=entry.ends_at,
                lifted_at=entry.lifted_at,
                visit_dates=list(visit_dates or []),
                window_days=window_days,
                appeals=appeals.get(entry.id, []),
            )
        )
    return bans


async def list_appeals(
    session: AsyncSession, *, actor: Actor, status: AppealStatus | None, limit: int = 100
) -> list[AppealView]:
    """The hospital's appeals, oldest first (the order to answer them in)."""
    require_staff(actor, *APPEAL_ROLES)
    query = _appeals_query().where(BlacklistAppeal.hospital_id == actor.hospital_id)
    if status is not None:
        query = query.where(BlacklistAppeal.status == status)
    rows = await session.execute(
        query.order_by(BlacklistAppeal.created_at, BlacklistAppeal.id).limit(limit)
    )
    return [_appeal_view(a, n, e) for a, n, e in rows]


async def appeal_view(
    session: AsyncSession, *, hospital_id: uuid.UUID, appeal_id: uuid.UUID
) -> AppealView:
    row = (
        await session.execute(
            _appeals_query().where(
                BlacklistAppeal.id == appeal_id, BlacklistAppeal.hospital_id == hospital_id
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound(what="appeal")
    return _appeal_view(*row)


# --- appeals ------------------------------------------------------------------------------


async def submit_appeal(
    session: AsyncSession,
    *,
    actor: Actor,
    account_id: uuid.UUID,
    entry_id: uuid.UUID,
    text: str,
    now: datetime,
) -> BlacklistAppeal:
    """An account appeals against one of its patients' bans; one open appeal per ban."""
    cleaned = rules.check_appeal_text(text)
    entry = await session.scalar(
        select(BlacklistEntry)
        .join(Patient, Patient.id == BlacklistEntry.patient_id)
        .where(
            BlacklistEntry.id == entry_id,
            BlacklistEntry.hospital_id == actor.hospital_id,
            Patient.account_id == account_id,
        )
        .with_for_update(of=BlacklistEntry)
    )
    if entry is None:
        raise NotFound(what="blacklist_entry")
    if not rules.is_in_force(ends_at=entry.ends_at, lifted_at=entry.lifted_at, now=now):
        raise rules.BanNotActive()
    open_one = await session.scalar(
        select(BlacklistAppeal.id).where(
            BlacklistAppeal.entry_id == entry.id,
            BlacklistAppeal.status == AppealStatus.SUBMITTED,
        )
    )
    if open_one is not None:
        raise rules.AppealAlreadyOpen()
    appeal = BlacklistAppeal(
        hospital_id=actor.hospital_id,
        entry_id=entry.id,
        patient_id=entry.patient_id,
        account_id=account_id,
        text=cleaned,
        status=AppealStatus.SUBMITTED,
        created_at=now,
    )
    session.add(appeal)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="appeal",
        entity_type="blacklist_entry",
        entity_id=entry.id,
        before=None,
        after={"appeal_id": str(appeal.id), "text": cleaned},
        now=now,
    )
    return appeal


async def decide_appeal(
    session: AsyncSession,
    *,
    actor: Actor,
    appeal_id: uuid.UUID,
    accept: bool,
    note: str | None,
    now: datetime,
) -> BlacklistAppeal:
    """Staff accept (the ban is lifted at once) or reject (it stays, with the reason);
    either way the patient is told and the decision is audited."""
    require_staff(actor, *APPEAL_ROLES)
    cleaned = rules.check_decision(accept=accept, note=note)
    appeal = await session.scalar(
        select(BlacklistAppeal)
        .where(BlacklistAppeal.id == appeal_id, BlacklistAppeal.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if appeal is None:
        raise NotFound(what="appeal")
    if appeal.status != AppealStatus.SUBMITTED:
        raise InvalidState(state=str(appeal.status), action="decide")
    entry = await session.scalar(
        select(BlacklistEntry).where(BlacklistEntry.id == appeal.entry_id).with_for_update()
    )
    assert entry is not None  # a foreign key
    hospital = await session.get(Hospital, actor.hospital_id)
    tz = hospital.timezone if hospital else "Asia/Shanghai"
    appeal.status = AppealStatus.ACCEPTED if accept else AppealStatus.REJECTED
    appeal.decided_by = actor.audit_name
    appeal.decision_note = cleaned
    appeal.decided_at = now
    lifted_before = entry.lifted_at
    if accept and entry.lifted_at is None:
        entry.lifted_at = now
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="accept_appeal" if accept else "reject_appeal",
        entity_type="blacklist_entry",
        entity_id=entry.id,
        before={
            "appeal_id": str(appeal.id),
            "status": AppealStatus.SUBMITTED.value,
            "lifted_at": lifted_before.isoformat() if lifted_before else None,
        },
        after={
            "appeal_id": str(appeal.id),
            "status": str(appeal.status),
            "note": cleaned,
            "lifted_at": entry.lifted_at.isoformat() if entry.lifted_at else None,
        },
        now=now,
    )
    payload: dict[str, Any] = {
        "appeal_id": str(appeal.id),
        "entry_id": str(entry.id),
        "until": _local_day(entry.ends_at, tz),
    }
    if cleaned is not None:
        payload["note"] = cleaned
    enqueue(
        session,
        hospital_id=actor.hospital_id,
        kind=MessageKind.APPEAL_ACCEPTED if accept else MessageKind.APPEAL_REJECTED,
        patient_id=appeal.patient_id,
        appointment_id=None,
        payload=payload,
        now=now,
    )
    return appeal
