"""Schedule templates → clinic sessions → slots and pools; availability reads."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from yuyue.kit.errors import NotFound, ValidationFailed
from yuyue.kit.ids import new_id
from yuyue.scheduling import rules
from yuyue.scheduling.enums import Period, SessionStatus
from yuyue.scheduling.models import (
    BookingPolicy,
    Campus,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    PoolRatio,
    RegistrationLevel,
    ScheduleTemplate,
    SlotPool,
    TimeSlot,
)
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit


async def hospital_timezone(session: AsyncSession, hospital_id: uuid.UUID) -> str:
    timezone = await session.scalar(select(Hospital.timezone).where(Hospital.id == hospital_id))
    return timezone or "Asia/Shanghai"


async def hospital_id_by_code(session: AsyncSession, code: str) -> uuid.UUID | None:
    return await session.scalar(select(Hospital.id).where(Hospital.code == code))


async def hospital_exists(session: AsyncSession, hospital_id: uuid.UUID) -> bool:
    return await session.scalar(select(Hospital.id).where(Hospital.id == hospital_id)) is not None


async def pool_ratios(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    department_id: uuid.UUID,
    doctor_id: uuid.UUID | None,
) -> dict[str, int]:
    rows = await session.execute(
        select(
            PoolRatio.department_id, PoolRatio.doctor_id, PoolRatio.pool, PoolRatio.percent
        ).where(
            PoolRatio.hospital_id == hospital_id,
            (PoolRatio.department_id == department_id)
            | (PoolRatio.doctor_id == doctor_id)
            | (PoolRatio.department_id.is_(None) & PoolRatio.doctor_id.is_(None)),
        )
    )
    keyed = [
        (str(dep) if dep else None, str(doc) if doc else None, pool, pct)
        for dep, doc, pool, pct in rows
    ]
    return rules.resolve_ratios(
        keyed, department_key=str(department_id), doctor_key=str(doctor_id) if doctor_id else None
    )


async def set_pool_ratios(
    session: AsyncSession,
    *,
    actor: Actor,
    ratios: dict[str, int],
    department_id: uuid.UUID | None = None,
    doctor_id: uuid.UUID | None = None,
    now: datetime,
) -> None:
    """Replaces the ratio set of one scope; sessions generated later use it."""
    require_staff(actor, Role.SCHEDULER)
    rules.validate_ratios(ratios)
    await session.execute(
        delete(PoolRatio).where(
            PoolRatio.hospital_id == actor.hospital_id,
            PoolRatio.department_id.is_(None)
            if department_id is None
            else PoolRatio.department_id == department_id,
            PoolRatio.doctor_id.is_(None)
            if doctor_id is None
            else PoolRatio.doctor_id == doctor_id,
        )
    )
    for pool, percent in ratios.items():
        session.add(
            PoolRatio(
                hospital_id=actor.hospital_id,
                department_id=department_id,
                doctor_id=doctor_id,
                pool=pool,
                percent=percent,
            )
        )
    record_audit(
        session,
        actor=actor,
        action="set_pool_ratios",
        entity_type="doctor" if doctor_id else "department" if department_id else "hospital",
        entity_id=doctor_id or department_id or actor.hospital_id,
        before=None,
        after=dict(ratios),
        now=now,
    )


async def _add_inventory(
    session: AsyncSession, clinic: ClinicSession, plans: Sequence[rules.SlotPlan]
) -> None:
    slots: list[TimeSlot] = []
    pools: list[SlotPool] = []
    for plan in plans:
        slot = TimeSlot(
            id=new_id(),
            hospital_id=clinic.hospital_id,
            session_id=clinic.id,
            ordinal=plan.ordinal,
            start_time=plan.start,
            end_time=plan.end,
        )
        slots.append(slot)
        for pool, capacity, first_number in plan.pools:
            pools.append(
                SlotPool(
                    hospital_id=clinic.hospital_id,
                    session_id=clinic.id,
                    slot_id=slot.id,
                    slot_ordinal=plan.ordinal,
                    slot_start=plan.start,
                    slot_end=plan.end,
                    pool=pool,
                    capacity=capacity,
                    taken=0,
                    first_number=first_number,
                    is_open=True,
                )
            )
    # No ORM relationships tie pools to slots, so the slots are flushed first.
    session.add_all(slots)
    await session.flush()
    session.add_all(pools)
    await session.flush()


@dataclass(frozen=True, slots=True)
class SessionShape:
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    level_id: uuid.UUID
    date: date
    period: Period
    start_time: time
    end_time: time
    capacity: int
    slot_minutes: int
    room: str = ""


async def _level_fee(session: AsyncSession, level_id: uuid.UUID) -> int:
    fee = await session.scalar(
        select(RegistrationLevel.fee_fen).where(RegistrationLevel.id == level_id)
    )
    if fee is None:
        raise NotFound(what="level")
    return fee


async def create_session(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    shape: SessionShape,
    template_id: uuid.UUID | None,
    is_extra: bool,
    now: datetime,
) -> ClinicSession:
    ratios = await pool_ratios(
        session,
        hospital_id=hospital_id,
        department_id=shape.department_id,
        doctor_id=shape.doctor_id,
    )
    plans = rules.plan_session(
        start=shape.start_time,
        end=shape.end_time,
        capacity=shape.capacity,
        slot_minutes=shape.slot_minutes,
        ratios=ratios,
    )
    clinic = ClinicSession(
        id=new_id(),
        hospital_id=hospital_id,
        department_id=shape.department_id,
        doctor_id=shape.doctor_id,
        template_id=template_id,
        level_id=shape.level_id,
        date=shape.date,
        period=shape.period,
        start_time=shape.start_time,
        end_time=shape.end_time,
        slot_minutes=shape.slot_minutes,
        capacity=shape.capacity,
        fee_fen=await _level_fee(session, shape.level_id),
        room=shape.room,
        status=SessionStatus.OPEN,
        is_extra=is_extra,
        created_at=now,
    )
    session.add(clinic)
    await session.flush()
    await _add_inventory(session, clinic, plans)
    return clinic


@dataclass(slots=True)
class GenerationReport:
    created: int = 0
    rebuilt: int = 0
    unchanged: int = 0
    kept_with_bookings: int = 0


def _shape_of_template(template: ScheduleTemplate, day: date) -> SessionShape:
    return SessionShape(
        department_id=template.department_id,
        doctor_id=template.doctor_id,
        level_id=template.level_id,
        date=day,
        period=Period(template.period),
        start_time=template.start_time,
        end_time=template.end_time,
        capacity=template.capacity,
        slot_minutes=template.slot_minutes,
        room=template.room,
    )


def _same_shape(clinic: ClinicSession, shape: SessionShape) -> bool:
    return (
        clinic.level_id == shape.level_id
        and clinic.start_time == shape.start_time
        and clinic.end_time == shape.end_time
        and clinic.capacity == shape.capacity
        and clinic.slot_minutes == shape.slot_minutes
        and clinic.room == shape.room
        and clinic.doctor_id == shape.doctor_id
        and clinic.period == shape.period
    )


async def generate_sessions(
    session: AsyncSession, *, hospital_id: uuid.UUID, start: date, days: int, now: datetime
) -> GenerationReport:
    """Creates the sessions the active templates call for over `days` days from `start`.

    Idempotent: a session that already exists is left as it is when it matches its template,
    rebuilt when the template changed and nobody has booked or stopped it yet, and never
    touched once it has bookings (any appointment, even cancelled, is history the hospital
    keeps) or was stopped.
    """
    report = GenerationReport()
    templates = [
        template
        for template, department_active, doctor_active in await session.execute(
            select(ScheduleTemplate, Department.active, Doctor.active)
            .join(Department, Department.id == ScheduleTemplate.department_id)
            .outerjoin(Doctor, Doctor.id == ScheduleTemplate.doctor_id)
            .where(ScheduleTemplate.hospital_id == hospital_id, ScheduleTemplate.active.is_(True))
        )
        if rules.generates(department_active=department_active, doctor_active=doctor_active)
    ]
    end = start + timedelta(days=days)
    existing = {
        (c.template_id, c.date): c
        for c in (
            await session.scalars(
                select(ClinicSession).where(
                    ClinicSession.hospital_id == hospital_id,
                    ClinicSession.template_id.is_not(None),
                    ClinicSession.date >= start,
                    ClinicSession.date < end,
                )
            )
        ).all()
    }
    for offset in range(days):
        day = start + timedelta(days=offset)
        for template in templates:
            if template.weekday != day.weekday():
                continue
            if (template.valid_from and day < template.valid_from) or (
                template.valid_until and day > template.valid_until
            ):
                continue
            shape = _shape_of_template(template, day)
            current = existing.get((template.id, day))
            if current is None:
                await create_session(
                    session,
                    hospital_id=hospital_id,
                    shape=shape,
                    template_id=template.id,
                    is_extra=False,
                    now=now,
                )
                report.created += 1
            elif _same_shape(current, shape):
                report.unchanged += 1
            elif current.status == SessionStatus.OPEN and await _rebuild(session, current, shape):
                report.rebuilt += 1
            else:
                report.kept_with_bookings += 1
    return report


async def _rebuild(session: AsyncSession, clinic: ClinicSession, shape: SessionShape) -> bool:
    """Replaces the session's slots and pools with the new shape; False, changing nothing,
    when any row of another context (an appointment, even a cancelled one) still refers to
    them. The foreign keys are the judge, so scheduling need not know who books its places,
    and a booking racing the rebuild makes it refuse rather than fail."""
    try:
        async with session.begin_nested():
            await session.execute(delete(SlotPool).where(SlotPool.session_id == clinic.id))
            await session.execute(delete(TimeSlot).where(TimeSlot.session_id == clinic.id))
    except IntegrityError:
        return False
    clinic.level_id = shape.level_id
    clinic.period = shape.period
    clinic.doctor_id = shape.doctor_id
    clinic.start_time = shape.start_time
    clinic.end_time = shape.end_time
    clinic.capacity = shape.capacity
    clinic.slot_minutes = shape.slot_minutes
    clinic.room = shape.room
    clinic.fee_fen = await _level_fee(session, shape.level_id)
    ratios = await pool_ratios(
        session,
        hospital_id=clinic.hospital_id,
        department_id=clinic.department_id,
        doctor_id=clinic.doctor_id,
    )
    plans = rules.plan_session(
        start=shape.start_time,
        end=shape.end_time,
        capacity=shape.capacity,
        slot_minutes=shape.slot_minutes,
        ratios=ratios,
    )
    await _add_inventory(session, clinic, plans)
    return True


async def _schedulable(
    session: AsyncSession, actor: Actor, department_id: uuid.UUID, doctor_id: uuid.UUID | None
) -> Doctor | None:
    """The department (and doctor) a new row or session names, which must be the
    hospital's and active."""
    department = await session.get(Department, department_id)
    if department is None or department.hospital_id != actor.hospital_id:
        raise NotFound(what="department")
    doctor = None
    if doctor_id is not None:
        doctor = await session.get(Doctor, doctor_id)
        if doctor is None or doctor.department_id != department_id:
            raise NotFound(what="doctor")
    rules.check_schedulable(
        department_active=department.active,
        doctor_active=None if doctor is None else doctor.active,
    )
    return doctor


async def add_extra_session(
    session: AsyncSession, *, actor: Actor, shape: SessionShape, today: date, now: datetime
) -> ClinicSession:
    """加诊: a session outside the templates, shown as extra on the booking pages."""
    require_staff(actor, Role.SCHEDULER)
    if shape.date < today:
        raise rules.InvalidSchedule(problem="an extra session cannot be in the past")
    await _schedulable(session, actor, shape.department_id, shape.doctor_id)
    clinic = await create_session(
        session,
        hospital_id=actor.hospital_id,
        shape=shape,
        template_id=None,
        is_extra=True,
        now=now,
    )
    record_audit(
        session,
        actor=actor,
        action="extra_session",
        entity_type="clinic_session",
        entity_id=clinic.id,
        before=None,
        after={
            "date": shape.date.isoformat(),
            "period": shape.period.value,
            "capacity": shape.capacity,
        },
        now=now,
    )
    return clinic


@dataclass(frozen=True, slots=True)
class ExtraPlaces:
    clinic: ClinicSession
    # The new pool row holding the places.
    pool_id: uuid.UUID
    count: int


async def extra_places_left(
    session: AsyncSession, *, session_id: uuid.UUID, pools: Collection[str]
) -> dict[uuid.UUID, int]:
    """The free 加号 places of a session in the given pools (a channel's), by time slot:
    what the booking pages mark as extra places. Slots without any are left out."""
    rows = await session.execute(
        select(SlotPool.slot_id, func.sum(SlotPool.capacity - SlotPool.taken))
        .where(
            SlotPool.session_id == session_id,
            SlotPool.is_extra.is_(True),
            SlotPool.is_open.is_(True),
            SlotPool.pool.in_(list(pools)),
        )
        .group_by(SlotPool.slot_id)
    )
    return {slot_id: int(free) for slot_id, free in rows if free and int(free) > 0}


async def is_extra_place(session: AsyncSession, *, pool_id: uuid.UUID) -> bool:
    """Whether a place (its pool) was added as 加号."""
    return bool(await session.scalar(select(SlotPool.is_extra).where(SlotPool.id == pool_id)))


async def add_extra_places(
    session: AsyncSession,
    *,
    actor: Actor,
    session_id: uuid.UUID,
    count: int,
    pool: str,
    slot_id: uuid.UUID | None,
    now: datetime,
) -> ExtraPlaces:
    """加号: new places numbered after every existing one, in the given (or last) slot.
    The session row stays locked until the transaction ends. Who gets the places first
    (the waitlist) is booking's business: `booking.service.add_extra_places` calls this."""
    require_staff(actor, Role.SCHEDULER, Role.DOCTOR)
    if count < 1 or count > 100:
        raise rules.InvalidSchedule(problem="extra places must be between 1 and 100")
    if pool not in rules.KNOWN_POOLS:
        raise rules.InvalidSchedule(problem=f"unknown pool {pool}")
    clinic = await session.scalar(
        select(ClinicSession)
        .where(ClinicSession.id == session_id, ClinicSession.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if clinic is None:
        raise NotFound(what="session")
    if clinic.status != SessionStatus.OPEN:
        raise rules.InvalidSchedule(problem="the session is stopped")
    slot_query = select(TimeSlot).where(TimeSlot.session_id == session_id)
    if slot_id is not None:
        slot_query = slot_query.where(TimeSlot.id == slot_id)
    slot = await session.scalar(slot_query.order_by(TimeSlot.ordinal.desc()).limit(1))
    if slot is None:
        raise NotFound(what="slot")
    last_number = await session.scalar(
        select(func.max(SlotPool.first_number + SlotPool.capacity - 1)).where(
            SlotPool.session_id == session_id
        )
    )
    extra = SlotPool(
        hospital_id=clinic.hospital_id,
        session_id=clinic.id,
        slot_id=slot.id,
        slot_ordinal=slot.ordinal,
        slot_start=slot.start_time,
        slot_end=slot.end_time,
        pool=pool,
        capacity=count,
        taken=0,
        first_number=(last_number or 0) + 1,
        is_open=True,
        is_extra=True,
    )
    session.add(extra)
    before = clinic.capacity
    clinic.capacity = before + count
    record_audit(
        session,
        actor=actor,
        action="extra_places",
        entity_type="clinic_session",
        entity_id=clinic.id,
        before={"capacity": before},
        after={"capacity": clinic.capacity, "pool": pool, "slot_id": str(slot.id)},
        now=now,
    )
    await session.flush()
    return ExtraPlaces(clinic, extra.id, count)


POLICY_FIELDS = (
    "release_days_ahead",
    "release_time",
    "advance_cutoff_time",
    "same_day_booking",
    "same_day_open_time",
    "same_day_cutoff_minutes",
    "cancel_days_before",
    "cancel_deadline_time",
    "hold_minutes",
    "limit_per_doctor_per_day",
    "limit_per_department_per_day",
    "limit_per_day",
    "limit_per_7_days",
    "limit_per_90_days",
    "limit_active",
    "account_patients_max",
    "waitlist_enabled",
    "waitlist_closes_minutes",
    "waitlist_offer_minutes",
    "waitlist_max_active",
    "reserved_release_time",
)


def policy_values(row: BookingPolicy | None) -> dict[str, Any]:
    """The rules a policy row sets or, without a row, the table's defaults: the rules a
    hospital has before anyone sets them (booking reads them as its `rules.Policy`)."""
    if row is not None:
        return {field: getattr(row, field) for field in POLICY_FIELDS}
    columns = inspect(BookingPolicy).columns
    values: dict[str, Any] = {}
    for field in POLICY_FIELDS:
        default = columns[field].default
        assert isinstance(default, ScalarElementColumnDefault), field
        values[field] = default.arg
    return values


async def policy_row(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID | None
) -> BookingPolicy | None:
    query = select(BookingPolicy).where(BookingPolicy.hospital_id == hospital_id)
    query = query.where(
        BookingPolicy.department_id.is_(None)
        if department_id is None
        else BookingPolicy.department_id == department_id
    )
    return await session.scalar(query)


async def reserved_release_times(
    session: AsyncSession, hospital_id: uuid.UUID
) -> tuple[time | None, dict[uuid.UUID, time | None]]:
    """When the day's reserved places go on-site: the hospital's time, and the departments'
    overrides."""
    rows = (
        await session.execute(
            select(BookingPolicy.department_id, BookingPolicy.reserved_release_time).where(
                BookingPolicy.hospital_id == hospital_id
            )
        )
    ).all()
    default = next(
        (at for department_id, at in rows if department_id is None),
        policy_values(None)["reserved_release_time"],
    )
    return default, {department_id: at for department_id, at in rows if department_id}


async def update_policy(
    session: AsyncSession,
    *,
    actor: Actor,
    department_id: uuid.UUID | None,
    changes: dict[str, Any],
    now: datetime,
) -> BookingPolicy:
    """Sets the hospital's booking policy, or a department's override of it."""
    require_staff(actor, Role.SCHEDULER)
    if department_id is not None:
        department = await session.get(Department, department_id)
        if department is None or department.hospital_id != actor.hospital_id:
            raise NotFound(what="department")
    row = await policy_row(session, hospital_id=actor.hospital_id, department_id=department_id)
    if row is None:
        base = await policy_row(session, hospital_id=actor.hospital_id, department_id=None)
        row = BookingPolicy(hospital_id=actor.hospital_id, department_id=department_id)
        # A new override starts as a copy of the hospital's rules (or the defaults).
        for field, value in policy_values(base).items():
            setattr(row, field, value)
        session.add(row)
    before = {f: _jsonable(getattr(row, f)) for f in POLICY_FIELDS}
    for field, value in changes.items():
        if field in POLICY_FIELDS and value is not None:
            setattr(row, field, value)
    await session.flush()
    await session.refresh(row)
    record_audit(
        session,
        actor=actor,
        action="update_policy",
        entity_type="department" if department_id else "hospital",
        entity_id=department_id or actor.hospital_id,
        before=before,
        after={f: _jsonable(getattr(row, f)) for f in POLICY_FIELDS},
        now=now,
    )
    return row


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, time) else value


async def department_in_hospital(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID
) -> bool:
    found = await session.scalar(
        select(Department.id).where(
            Department.id == department_id, Department.hospital_id == hospital_id
        )
    )
    return found is not None


async def doctor_in_hospital(
    session: AsyncSession, *, hospital_id: uuid.UUID, doctor_id: uuid.UUID
) -> bool:
    found = await session.scalar(
        select(Doctor.id).where(Doctor.id == doctor_id, Doctor.hospital_id == hospital_id)
    )
    return found is not None


async def hospital_code(session: AsyncSession, hospital_id: uuid.UUID) -> str:
    code = await session.scalar(select(Hospital.code).where(Hospital.id == hospital_id))
    return code or ""


async def active_departments(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[Department]:
    """The hospital's open departments in the order patients see them."""
    return list(
        (
            await session.scalars(
                select(Department)
                .where(Department.hospital_id == hospital_id, Department.active.is_(True))
                .order_by(Department.sort_order, Department.code)
            )
        ).all()
    )


async def campus_in_hospital(
    session: AsyncSession, *, hospital_id: uuid.UUID, campus_id: uuid.UUID
) -> bool:
    found = await session.scalar(
        select(Campus.id).where(Campus.id == campus_id, Campus.hospital_id == hospital_id)
    )
    return found is not None


async def campuses(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[Campus]:
    return list(
        (
            await session.scalars(
                select(Campus).where(Campus.hospital_id == hospital_id).order_by(Campus.code)
            )
        ).all()
    )


async def department_campuses(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each department's campus (None where the hospital has one site)."""
    if not department_ids:
        return {}
    rows = await session.execute(
        select(Department.id, Department.campus_id).where(
            Department.hospital_id == hospital_id, Department.id.in_(list(department_ids))
        )
    )
    return {row.id: row.campus_id for row in rows}


async def active_doctors(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[Doctor]:
    """The hospital's doctors still seeing patients, by name (a staff account links one)."""
    return list(
        (
            await session.scalars(
                select(Doctor)
                .where(Doctor.hospital_id == hospital_id, Doctor.active.is_(True))
                .order_by(Doctor.name, Doctor.code)
            )
        ).all()
    )


# --- the scheduler's console: templates, the week, doctors -------------------------------


async def levels(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[RegistrationLevel]:
    """The hospital's registration levels, the highest first."""
    return list(
        (
            await session.scalars(
                select(RegistrationLevel)
                .where(RegistrationLevel.hospital_id == hospital_id)
                .order_by(RegistrationLevel.rank.desc(), RegistrationLevel.code)
            )
        ).all()
    )


async def resolve_level(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    level_code: str | None,
    doctor_id: uuid.UUID | None,
) -> uuid.UUID:
    """The level a template or session is given: the one named, else the doctor's (a
    department clinic must name its level)."""
    if level_code:
        level_id = await session.scalar(
            select(RegistrationLevel.id).where(
                RegistrationLevel.hospital_id == hospital_id,
                RegistrationLevel.code == level_code,
            )
        )
        if level_id is None:
            raise NotFound(what="level")
        return level_id
    if doctor_id is not None:
        doctor = await session.get(Doctor, doctor_id)
        if doctor is None or doctor.hospital_id != hospital_id:
            raise NotFound(what="doctor")
        return doctor.level_id
    raise ValidationFailed(
        errors=[{"field": "level_code", "message": "required without a doctor"}],
        summary="level_code",
    )


@dataclass(frozen=True, slots=True)
class TemplateShape:
    """One row of a department's weekly timetable."""

    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    level_id: uuid.UUID
    weekday: int
    period: Period
    start_time: time
    end_time: time
    capacity: int
    slot_minutes: int
    room: str = ""
    valid_from: date | None = None
    valid_until: date | None = None


def _template_facts(template: ScheduleTemplate) -> dict[str, Any]:
    return {
        "department_id": str(template.department_id),
        "doctor_id": str(template.doctor_id) if template.doctor_id else None,
        "level_id": str(template.level_id),
        "weekday": template.weekday,
        "period": str(template.period),
        "start": template.start_time.isoformat(),
        "end": template.end_time.isoformat(),
        "capacity": template.capacity,
        "slot_minutes": template.slot_minutes,
        "room": template.room,
        "active": template.active,
    }


async def _check_level(session: AsyncSession, hospital_id: uuid.UUID, level_id: uuid.UUID) -> None:
    level = await session.get(RegistrationLevel, level_id)
    if level is None or level.hospital_id != hospital_id:
        raise NotFound(what="level")


async def add_template(
    session: AsyncSession, *, actor: Actor, shape: TemplateShape, now: datetime
) -> ScheduleTemplate:
    """A new row of the weekly timetable; sessions follow at the next generation."""
    require_staff(actor, Role.SCHEDULER)
    doctor = await _schedulable(session, actor, shape.department_id, shape.doctor_id)
    await _check_level(session, actor.hospital_id, shape.level_id)
    if shape.start_time >= shape.end_time:
        raise rules.InvalidSchedule(problem="a session must end after it starts")
    template = ScheduleTemplate(
        hospital_id=actor.hospital_id,
        department_id=shape.department_id,
        doctor_id=shape.doctor_id,
        level_id=shape.level_id,
        weekday=shape.weekday,
        period=shape.period,
        start_time=shape.start_time,
        end_time=shape.end_time,
        capacity=shape.capacity,
        slot_minutes=shape.slot_minutes,
        # A row without a room of its own is held in the doctor's room.
        room=shape.room or (doctor.room if doctor is not None else ""),
        valid_from=shape.valid_from,
        valid_until=shape.valid_until,
    )
    session.add(template)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="add_template",
        entity_type="schedule_template",
        entity_id=template.id,
        before=None,
        after=_template_facts(template),
        now=now,
    )
    return template


async def _active_template(
    session: AsyncSession, actor: Actor, template_id: uuid.UUID
) -> ScheduleTemplate:
    template = await session.scalar(
        select(ScheduleTemplate)
        .where(
            ScheduleTemplate.id == template_id,
            ScheduleTemplate.hospital_id == actor.hospital_id,
            ScheduleTemplate.active.is_(True),
        )
        .with_for_update()
    )
    if template is None:
        raise NotFound(what="template")
    return template


@dataclass(frozen=True, slots=True)
class TemplateChange:
    """What may change in a timetable row; its doctor and weekday stay (another doctor or
    day is another row)."""

    level_id: uuid.UUID
    period: Period
    start_time: time
    end_time: time
    capacity: int
    slot_minutes: int
    room: str


async def update_template(
    session: AsyncSession,
    *,
    actor: Actor,
    template_id: uuid.UUID,
    change: TemplateChange,
    now: datetime,
) -> ScheduleTemplate:
    """Changes a timetable row. Sessions already generated follow at the next generation,
    unless someone booked them (generation keeps those as they are)."""
    require_staff(actor, Role.SCHEDULER)
    template = await _active_template(session, actor, template_id)
    await _check_level(session, actor.hospital_id, change.level_id)
    if change.start_time >= change.end_time:
        raise rules.InvalidSchedule(problem="a session must end after it starts")
    before = _template_facts(template)
    template.level_id = change.level_id
    template.period = change.period
    template.start_time = change.start_time
    template.end_time = change.end_time
    template.capacity = change.capacity
    template.slot_minutes = change.slot_minutes
    template.room = change.room
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="update_template",
        entity_type="schedule_template",
        entity_id=template.id,
        before=before,
        after=_template_facts(template),
        now=now,
    )
    return template


@dataclass(frozen=True, slots=True)
class Withdrawal:
    # Future sessions of the row that nobody had booked, now gone.
    withdrawn: int
    # Future sessions kept because they have bookings: stop them to tell the patients.
    kept: list[uuid.UUID]


async def remove_template(
    session: AsyncSession,
    *,
    actor: Actor,
    template_id: uuid.UUID,
    today: date,
    now: datetime,
) -> Withdrawal:
    """Takes a row out of the timetable: no more sessions are generated from it, and its
    sessions after today that nobody has booked are withdrawn. A session with bookings (any
    appointment, even cancelled) is kept: only stopping it tells its patients. Today's and
    past sessions are the day's record and stay. As in `_rebuild`, the foreign keys judge
    whether a session is still referred to, so scheduling need not know who books it."""
    require_staff(actor, Role.SCHEDULER)
    template = await _active_template(session, actor, template_id)
    before = _template_facts(template)
    template.active = False
    future = (
        await session.scalars(
            select(ClinicSession)
            .where(ClinicSession.template_id == template.id, ClinicSession.date > today)
            .order_by(ClinicSession.date)
        )
    ).all()
    withdrawn: list[str] = []
    kept: list[uuid.UUID] = []
    for clinic in future:
        if clinic.status != SessionStatus.OPEN or not await _withdraw(session, clinic.id):
            kept.append(clinic.id)
        else:
            withdrawn.append(clinic.date.isoformat())
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="remove_template",
        entity_type="schedule_template",
        entity_id=template.id,
        before=before,
        after={
            **_template_facts(template),
            "withdrawn_sessions": withdrawn,
            "kept_sessions": [str(k) for k in kept],
        },
        now=now,
    )
    return Withdrawal(withdrawn=len(withdrawn), kept=kept)


async def _withdraw(session: AsyncSession, clinic_id: uuid.UUID) -> bool:
    try:
        async with session.begin_nested():
            await session.execute(delete(SlotPool).where(SlotPool.session_id == clinic_id))
            await session.execute(delete(TimeSlot).where(TimeSlot.session_id == clinic_id))
            await session.execute(delete(ClinicSession).where(ClinicSession.id == clinic_id))
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TemplateRow:
    template: ScheduleTemplate
    doctor_name: str | None
    level: RegistrationLevel


async def department_templates(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID
) -> list[TemplateRow]:
    """A department's weekly timetable: its active rows by weekday, period and doctor."""
    rows = await session.execute(
        select(ScheduleTemplate, Doctor.name, RegistrationLevel)
        .join(RegistrationLevel, RegistrationLevel.id == ScheduleTemplate.level_id)
        .outerjoin(Doctor, Doctor.id == ScheduleTemplate.doctor_id)
        .where(
            ScheduleTemplate.hospital_id == hospital_id,
            ScheduleTemplate.department_id == department_id,
            ScheduleTemplate.active.is_(True),
            # A deactivated doctor's rows rest until they are active again.
            Doctor.id.is_(None) | Doctor.active.is_(True),
        )
        .order_by(ScheduleTemplate.weekday, ScheduleTemplate.start_time, Doctor.name)
    )
    return [TemplateRow(template, doctor_name, level) for template, doctor_name, level in rows]


@dataclass(frozen=True, slots=True)
class PoolPlaces:
    """One slot pool row as the week view shows it (held places are booking's to count)."""

    pool_id: uuid.UUID
    slot_id: uuid.UUID
    slot_ordinal: int
    slot_start: time
    slot_end: time
    pool: str
    capacity: int
    taken: int
    is_extra: bool


@dataclass(frozen=True, slots=True)
class WeekSession:
    clinic: ClinicSession
    doctor_name: str | None
    doctor_title: str
    doctor_title_en: str
    level: RegistrationLevel
    pools: list[PoolPlaces]


async def week_sessions(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    department_id: uuid.UUID,
    start: date,
    days: int = 7,
) -> list[WeekSession]:
    """Every session of a department over `days` days from `start`, stopped and extra ones
    too, each with its places per slot and pool."""
    rows = (
        await session.execute(
            select(ClinicSession, Doctor.name, Doctor.title, Doctor.title_en, RegistrationLevel)
            .join(RegistrationLevel, RegistrationLevel.id == ClinicSession.level_id)
            .outerjoin(Doctor, Doctor.id == ClinicSession.doctor_id)
            .where(
                ClinicSession.hospital_id == hospital_id,
                ClinicSession.department_id == department_id,
                ClinicSession.date >= start,
                ClinicSession.date < start + timedelta(days=days),
            )
            .order_by(ClinicSession.date, ClinicSession.start_time, Doctor.name)
        )
    ).all()
    pools: dict[uuid.UUID, list[PoolPlaces]] = {row[0].id: [] for row in rows}
    if pools:
        found = await session.scalars(
            select(SlotPool)
            .where(SlotPool.session_id.in_(list(pools)))
            .order_by(SlotPool.slot_ordinal, SlotPool.first_number)
        )
        for pool in found:
            pools[pool.session_id].append(
                PoolPlaces(
                    pool_id=pool.id,
                    slot_id=pool.slot_id,
                    slot_ordinal=pool.slot_ordinal,
                    slot_start=pool.slot_start,
                    slot_end=pool.slot_end,
                    pool=pool.pool,
                    capacity=pool.capacity,
                    taken=pool.taken,
                    is_extra=pool.is_extra,
                )
            )
    return [
        WeekSession(clinic, name, title or "", title_en or "", level, pools[clinic.id])
        for clinic, name, title, title_en, level in rows
    ]


async def department_doctors(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID | None = None
) -> list[tuple[Doctor, RegistrationLevel]]:
    """Doctors still seeing patients with their registration level, highest level first
    (of one department, if given)."""
    query = (
        select(Doctor, RegistrationLevel)
        .join(RegistrationLevel, RegistrationLevel.id == Doctor.level_id)
        .where(Doctor.hospital_id == hospital_id, Doctor.active.is_(True))
        .order_by(RegistrationLevel.rank.desc(), Doctor.code)
    )
    if department_id is not None:
        query = query.where(Doctor.department_id == department_id)
    return [(doctor, level) for doctor, level in (await session.execute(query)).all()]


async def doctor_rooms(
    session: AsyncSession, *, hospital_id: uuid.UUID
) -> dict[uuid.UUID, list[str]]:
    """The rooms (诊室) each doctor's timetable rows name; a doctor's room is where their
    sessions are held, which the timetable decides."""
    rows = await session.execute(
        select(ScheduleTemplate.doctor_id, ScheduleTemplate.room)
        .where(
            ScheduleTemplate.hospital_id == hospital_id,
            ScheduleTemplate.active.is_(True),
            ScheduleTemplate.doctor_id.is_not(None),
            ScheduleTemplate.room != "",
        )
        .distinct()
        .order_by(ScheduleTemplate.room)
    )
    rooms: dict[uuid.UUID, list[str]] = {}
    for doctor_id, room in rows:
        if doctor_id is not None:
            rooms.setdefault(doctor_id, []).append(room)
    return rooms


async def update_doctor(
    session: AsyncSession,
    *,
    actor: Actor,
    doctor_id: uuid.UUID,
    level_id: uuid.UUID,
    room: str | None,
    now: datetime,
) -> Doctor:
    """A doctor's registration level, and the room of all their timetable rows (None keeps
    the rooms as they are). Their rows at the old level move to the new one with them; like
    any template change, sessions follow at the next generation unless already booked, so
    no booked patient's fee changes."""
    require_staff(actor, Role.SCHEDULER)
    doctor = await session.scalar(
        select(Doctor)
        .where(Doctor.id == doctor_id, Doctor.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if doctor is None:
        raise NotFound(what="doctor")
    await _check_level(session, actor.hospital_id, level_id)
    templates = (
        await session.scalars(
            select(ScheduleTemplate).where(
                ScheduleTemplate.doctor_id == doctor.id, ScheduleTemplate.active.is_(True)
            )
        )
    ).all()
    before = {
        "level_id": str(doctor.level_id),
        "rooms": sorted({t.room for t in templates}),
    }
    for template in templates:
        if template.level_id == doctor.level_id:
            template.level_id = level_id
        if room is not None:
            template.room = room
    doctor.level_id = level_id
    if room is not None:
        doctor.room = room
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="update_doctor",
        entity_type="doctor",
        entity_id=doctor.id,
        before=before,
        after={"level_id": str(level_id), "rooms": sorted({t.room for t in templates})},
        now=now,
    )
    return doctor


async def ratios_in_force(
    session: AsyncSession, *, hospital_id: uuid.UUID, department_id: uuid.UUID | None
) -> tuple[dict[str, int], str]:
    """The pool shares new sessions of a department (or, without one, of the hospital) get,
    and where they come from: "department", "hospital" or "default" (no set saved yet).
    A doctor's own set, where one exists, beats these for that doctor's sessions."""
    rows = await session.execute(
        select(PoolRatio.department_id, PoolRatio.pool, PoolRatio.percent).where(
            PoolRatio.hospital_id == hospital_id,
            PoolRatio.doctor_id.is_(None),
            PoolRatio.department_id.is_(None)
            if department_id is None
            else (PoolRatio.department_id == department_id) | PoolRatio.department_id.is_(None),
        )
    )
    by_scope: dict[str, dict[str, int]] = {}
    for dep, pool, percent in rows:
        by_scope.setdefault("department" if dep else "hospital", {})[pool] = percent
    for scope in ("department", "hospital"):
        if scope in by_scope:
            return by_scope[scope], scope
    return dict(rules.DEFAULT_POOL_RATIOS), "default"


async def session_places(
    session: AsyncSession, *, hospital_id: uuid.UUID, session_id: uuid.UUID
) -> WeekSession | None:
    """One session of the hospital with its places per slot and pool (None: no such)."""
    department_id = await session.scalar(
        select(ClinicSession.department_id).where(
            ClinicSession.id == session_id, ClinicSession.hospital_id == hospital_id
        )
    )
    if department_id is None:
        return None
    clinic = await session.get(ClinicSession, session_id)
    assert clinic is not None
    found = await week_sessions(
        session,
        hospital_id=hospital_id,
        department_id=department_id,
        start=clinic.date,
        days=1,
    )
    return next((item for item in found if item.clinic.id == session_id), None)


# --- the hospital's structure: departments and doctors -------------------------------------
# The only writer of the department and doctor tables. Nothing here deletes: a department or
# doctor with any history is deactivated, which stops new rows and sessions and hides them
# from patients, and leaves every session and booking already made as it was.


async def all_departments(session: AsyncSession, *, hospital_id: uuid.UUID) -> list[Department]:
    """Every department of the hospital, deactivated ones too, in the patients' order."""
    return list(
        (
            await session.scalars(
                select(Department)
                .where(Department.hospital_id == hospital_id)
                .order_by(Department.active.desc(), Department.sort_order, Department.code)
            )
        ).all()
    )


def department_facts(department: Department) -> rules.DepartmentFacts:
    return rules.DepartmentFacts(
        code=department.code,
        name=department.name,
        name_en=department.name_en,
        location=department.location,
        location_en=department.location_en,
        what_to_bring=department.what_to_bring,
        what_to_bring_en=department.what_to_bring_en,
        min_age_years=department.min_age_years,
        max_age_years=department.max_age_years,
        sex_restriction=department.sex_restriction,
        campus_id=department.campus_id,
    )


def _department_audit(department: Department) -> dict[str, Any]:
    facts = department_facts(department)
    return {
        **{
            name: getattr(facts, name)
            for name in rules.DepartmentFacts.__dataclass_fields__
            if name != "campus_id"
        },
        "campus_id": str(facts.campus_id) if facts.campus_id else None,
        "active": department.active,
    }


async def _codes(
    session: AsyncSession,
    column: Any,
    id_column: Any,
    hospital_column: Any,
    *,
    hospital_id: uuid.UUID,
    but: uuid.UUID | None,
) -> list[str]:
    query = select(column).where(hospital_column == hospital_id)
    if but is not None:
        query = query.where(id_column != but)
    return list((await session.scalars(query)).all())


async def _department_codes(
    session: AsyncSession, hospital_id: uuid.UUID, but: uuid.UUID | None = None
) -> list[str]:
    return await _codes(
        session,
        Department.code,
        Department.id,
        Department.hospital_id,
        hospital_id=hospital_id,
        but=but,
    )


async def _doctor_codes(
    session: AsyncSession, hospital_id: uuid.UUID, but: uuid.UUID | None = None
) -> list[str]:
    return await _codes(
        session, Doctor.code, Doctor.id, Doctor.hospital_id, hospital_id=hospital_id, but=but
    )


async def _flush_unique(session: AsyncSession, *, code: str, what: str) -> None:
    """Flushes; two people saving the same code at once meet the unique constraint, and the
    second is told the code is taken."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise rules.CodeTaken(
            value=code, what=what, what_zh="科室" if what == "department" else "医生"
        ) from error


async def _checked_campus(session: AsyncSession, actor: Actor, campus_id: Any) -> None:
    if campus_id is not None and not await campus_in_hospital(
        session, hospital_id=actor.hospital_id, campus_id=campus_id
    ):
        raise rules.InvalidStructure(
            field="campus_id", problem="the campus is not one of the hospital's"
        )


def _apply_department(department: Department, facts: rules.DepartmentFacts) -> None:
    for name in rules.DepartmentFacts.__dataclass_fields__:
        setattr(department, name, getattr(facts, name))


async def add_department(
    session: AsyncSession, *, actor: Actor, facts: rules.DepartmentFacts, now: datetime
) -> Department:
    """A new department, active and shown to patients (last in their list)."""
    require_staff(actor, Role.SCHEDULER)
    checked = rules.check_department(
        facts, taken_codes=await _department_codes(session, actor.hospital_id)
    )
    await _checked_campus(session, actor, checked.campus_id)
    last = await session.scalar(
        select(func.max(Department.sort_order)).where(Department.hospital_id == actor.hospital_id)
    )
    department = Department(hospital_id=actor.hospital_id, sort_order=(last or 0) + 1)
    _apply_department(department, checked)
    session.add(department)
    await _flush_unique(session, code=checked.code, what="department")
    record_audit(
        session,
        actor=actor,
        action="add_department",
        entity_type="department",
        entity_id=department.id,
        before=None,
        after=_department_audit(department),
        now=now,
    )
    return department


async def _department_for_update(
    session: AsyncSession, actor: Actor, department_id: uuid.UUID
) -> Department:
    department = await session.scalar(
        select(Department)
        .where(Department.id == department_id, Department.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if department is None:
        raise NotFound(what="department")
    return department


async def update_department(
    session: AsyncSession,
    *,
    actor: Actor,
    department_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
) -> Department:
    """Renames or edits a department; `changes` names DepartmentFacts fields. Sessions
    already made show the new name, location and restrictions at once (they read them
    from the department)."""
    require_staff(actor, Role.SCHEDULER)
    department = await _department_for_update(session, actor, department_id)
    unknown = set(changes) - set(rules.DepartmentFacts.__dataclass_fields__)
    if unknown:
        raise ValidationFailed(
            errors=[{"field": name, "message": "unknown field"} for name in sorted(unknown)],
            summary=sorted(unknown)[0],
        )
    before = _department_audit(department)
    wanted = dataclass_replace(department_facts(department), **changes)
    checked = rules.check_department(
        wanted, taken_codes=await _department_codes(session, actor.hospital_id, department.id)
    )
    await _checked_campus(session, actor, checked.campus_id)
    _apply_department(department, checked)
    await _flush_unique(session, code=checked.code, what="department")
    record_audit(
        session,
        actor=actor,
        action="update_department",
        entity_type="department",
        entity_id=department.id,
        before=before,
        after=_department_audit(department),
        now=now,
    )
    return department


async def set_department_active(
    session: AsyncSession, *, actor: Actor, department_id: uuid.UUID, active: bool, now: datetime
) -> Department:
    """Deactivates (or brings back) a department. Deactivated, it is hidden from patients'
    department lists and takes no new rows, sessions or doctors; generation skips its
    timetable; sessions already made and their bookings stay as they are (stop them to
    cancel). Nothing is deleted, so its history stays whole."""
    require_staff(actor, Role.SCHEDULER)
    department = await _department_for_update(session, actor, department_id)
    if department.active == active:
        return department
    before = _department_audit(department)
    department.active = active
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="activate_department" if active else "deactivate_department",
        entity_type="department",
        entity_id=department.id,
        before=before,
        after=_department_audit(department),
        now=now,
    )
    return department


async def all_doctors(
    session: AsyncSession, *, hospital_id: uuid.UUID
) -> list[tuple[Doctor, RegistrationLevel]]:
    """Every doctor of the hospital with their level, deactivated ones too."""
    rows = await session.execute(
        select(Doctor, RegistrationLevel)
        .join(RegistrationLevel, RegistrationLevel.id == Doctor.level_id)
        .where(Doctor.hospital_id == hospital_id)
        .order_by(Doctor.active.desc(), RegistrationLevel.rank.desc(), Doctor.code)
    )
    return [(doctor, level) for doctor, level in rows.all()]


def _doctor_audit(doctor: Doctor) -> dict[str, Any]:
    return {
        "code": doctor.code,
        "name": doctor.name,
        "title": doctor.title,
        "title_en": doctor.title_en,
        "room": doctor.room,
        "department_id": str(doctor.department_id),
        "level_id": str(doctor.level_id),
        "active": doctor.active,
    }


async def _active_department(
    session: AsyncSession, actor: Actor, department_id: uuid.UUID
) -> Department:
    department = await session.get(Department, department_id)
    if department is None or department.hospital_id != actor.hospital_id:
        raise NotFound(what="department")
    rules.check_schedulable(department_active=department.active, doctor_active=None)
    return department


async def add_doctor(
    session: AsyncSession,
    *,
    actor: Actor,
    facts: rules.DoctorFacts,
    department_id: uuid.UUID,
    level_id: uuid.UUID,
    now: datetime,
) -> Doctor:
    """A new doctor of an active department at one of the hospital's levels. Without a
    code they get one (DR and six letters or digits). They see patients once a timetable
    row names them."""
    require_staff(actor, Role.SCHEDULER)
    if not facts.code.strip():
        facts = dataclass_replace(facts, code="DR" + new_id().hex[-6:].upper())
    checked = rules.check_doctor(facts, taken_codes=await _doctor_codes(session, actor.hospital_id))
    await _active_department(session, actor, department_id)
    await _check_level(session, actor.hospital_id, level_id)
    doctor = Doctor(
        hospital_id=actor.hospital_id,
        department_id=department_id,
        level_id=level_id,
        code=checked.code,
        name=checked.name,
        title=checked.title,
        title_en=checked.title_en,
        room=checked.room,
        active=True,
    )
    session.add(doctor)
    await _flush_unique(session, code=checked.code, what="doctor")
    record_audit(
        session,
        actor=actor,
        action="add_doctor",
        entity_type="doctor",
        entity_id=doctor.id,
        before=None,
        after=_doctor_audit(doctor),
        now=now,
    )
    return doctor


DOCTOR_FIELDS = ("code", "name", "title", "title_en", "room", "department_id", "level_id")


async def edit_doctor(
    session: AsyncSession,
    *,
    actor: Actor,
    doctor_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
) -> Doctor:
    """Edits a doctor; `changes` names DOCTOR_FIELDS. As in `update_doctor`, a new level
    moves their rows of the old level with it and a new room becomes the room of all their
    rows; sessions follow at the next generation unless already booked, so no booked
    patient's fee or room changes. A doctor with timetable rows keeps their department."""
    require_staff(actor, Role.SCHEDULER)
    unknown = set(changes) - set(DOCTOR_FIELDS)
    if unknown:
        raise ValidationFailed(
            errors=[{"field": name, "message": "unknown field"} for name in sorted(unknown)],
            summary=sorted(unknown)[0],
        )
    doctor = await session.scalar(
        select(Doctor)
        .where(Doctor.id == doctor_id, Doctor.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if doctor is None:
        raise NotFound(what="doctor")
    current = rules.DoctorFacts(
        code=doctor.code,
        name=doctor.name,
        title=doctor.title,
        title_en=doctor.title_en,
        room=doctor.room,
    )
    checked = rules.check_doctor(
        dataclass_replace(
            current,
            **{k: v for k, v in changes.items() if k in rules.DoctorFacts.__dataclass_fields__},
        ),
        taken_codes=await _doctor_codes(session, actor.hospital_id, doctor.id),
    )
    templates = (
        await session.scalars(
            select(ScheduleTemplate).where(
                ScheduleTemplate.doctor_id == doctor.id, ScheduleTemplate.active.is_(True)
            )
        )
    ).all()
    department_id = changes.get("department_id", doctor.department_id)
    if department_id != doctor.department_id:
        rules.check_department_move(moving=True, timetable_rows=len(templates))
        await _active_department(session, actor, department_id)
    level_id = changes.get("level_id", doctor.level_id)
    await _check_level(session, actor.hospital_id, level_id)
    before = _doctor_audit(doctor)
    for template in templates:
        if template.level_id == doctor.level_id:
            template.level_id = level_id
        if checked.room != doctor.room:
            template.room = checked.room
    doctor.code = checked.code
    doctor.name = checked.name
    doctor.title = checked.title
    doctor.title_en = checked.title_en
    doctor.room = checked.room
    doctor.department_id = department_id
    doctor.level_id = level_id
    await _flush_unique(session, code=checked.code, what="doctor")
    record_audit(
        session,
        actor=actor,
        action="edit_doctor",
        entity_type="doctor",
        entity_id=doctor.id,
        before=before,
        after=_doctor_audit(doctor),
        now=now,
    )
    return doctor


async def set_doctor_active(
    session: AsyncSession, *, actor: Actor, doctor_id: uuid.UUID, active: bool, now: datetime
) -> Doctor:
    """Deactivates (or brings back) a doctor. Deactivated, they are hidden from patients
    and from the timetable, get no new rows or sessions and generation skips their rows;
    sessions already made and their bookings stay as they are (stop them to cancel).
    Bringing back a doctor of a deactivated department is refused."""
    require_staff(actor, Role.SCHEDULER)
    doctor = await session.scalar(
        select(Doctor)
        .where(Doctor.id == doctor_id, Doctor.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if doctor is None:
        raise NotFound(what="doctor")
    if doctor.active == active:
        return doctor
    if active:
        await _active_department(session, actor, doctor.department_id)
    before = _doctor_audit(doctor)
    doctor.active = active
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="activate_doctor" if active else "deactivate_doctor",
        entity_type="doctor",
        entity_id=doctor.id,
        before=before,
        after=_doctor_audit(doctor),
        now=now,
    )
    return doctor
