"""Departments and doctors (read by every channel) and the scheduler's operations
(templates, generation, extra sessions, pool ratios, the booking policy). The session and
slot lists, extra places and stop-clinic touch bookings, so their routes live in booking."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.clock import Clock
from yuyue.kit.db import Database
from yuyue.kit.errors import ValidationFailed
from yuyue.kit.localtime import local_today
from yuyue.scheduling import rules, service
from yuyue.scheduling.models import (
    BookingPolicy,
    Campus,
    Department,
    Doctor,
    RegistrationLevel,
)
from yuyue.scheduling.schemas import (
    BookingPolicyRead,
    BookingPolicyUpdate,
    DepartmentAdminRead,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    DoctorAdminRead,
    DoctorCreate,
    DoctorEdit,
    DoctorRead,
    ExtraSessionCreate,
    GenerateReport,
    GenerateRequest,
    Named,
    PoolRatiosUpdate,
    TemplateCreate,
    TemplateRead,
    level_read,
    pick,
)
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.web.deps import ActorDep, CtxDep, LocaleDep

router = APIRouter(prefix="/api/v1", tags=["scheduling"])
_T = TypeVar("_T")


class StructureContext(Protocol):
    """What a change to the hospital's structure needs of the application: its database
    and the caches to forget (scheduling knows nothing of who keeps them)."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    def structure_changed(self) -> None: ...


@router.get("/departments", response_model=list[DepartmentRead])
async def list_departments(ctx: CtxDep, actor: ActorDep, locale: LocaleDep) -> list[DepartmentRead]:
    async with ctx.db.read() as session:
        rows = await session.execute(
            select(Department, Campus.name, Campus.name_en)
            .outerjoin(Campus, Campus.id == Department.campus_id)
            .where(Department.hospital_id == actor.hospital_id, Department.active.is_(True))
            .order_by(Department.sort_order, Department.code)
        )
        return [
            DepartmentRead(
                id=d.id,
                code=d.code,
                name=pick(d.name, d.name_en, locale),
                name_en=d.name_en,
                category=pick(d.category, d.category_en, locale),
                pinyin=d.pinyin,
                location=pick(d.location, d.location_en, locale),
                campus=pick(campus or "", campus_en or "", locale) or None,
                min_age_years=d.min_age_years,
                max_age_years=d.max_age_years,
                sex_restriction=d.sex_restriction,
                description=pick(d.description, d.description_en, locale),
                what_to_bring=pick(d.what_to_bring, d.what_to_bring_en, locale),
            )
            for d, campus, campus_en in rows
        ]


@router.get("/doctors", response_model=list[DoctorRead])
async def list_doctors(
    ctx: CtxDep, actor: ActorDep, locale: LocaleDep, department_id: uuid.UUID | None = None
) -> list[DoctorRead]:
    async with ctx.db.read() as session:
        query = (
            select(Doctor, Department, RegistrationLevel)
            .join(Department, Department.id == Doctor.department_id)
            .join(RegistrationLevel, RegistrationLevel.id == Doctor.level_id)
            .where(
                Doctor.hospital_id == actor.hospital_id,
                Doctor.active.is_(True),
                Department.active.is_(True),
            )
            .order_by(Department.sort_order, RegistrationLevel.rank.desc(), Doctor.code)
        )
        if department_id is not None:
            query = query.where(Doctor.department_id == department_id)
        return [
            DoctorRead(
                id=doc.id,
                code=doc.code,
                name=doc.name,
                sex=doc.sex,
                title=pick(doc.title, doc.title_en, locale),
                title_en=doc.title_en,
                department=Named(id=dep.id, name=pick(dep.name, dep.name_en, locale)),
                level=level_read(level, locale),
                specialty=pick(doc.specialty, doc.specialty_en, locale),
            )
            for doc, dep, level in await session.execute(query)
        ]


# --- scheduler operations ------------------------------------------------------------------


async def _level_id(
    session: AsyncSession, actor: Actor, level_code: str | None, doctor_id: uuid.UUID | None
) -> uuid.UUID:
    return await service.resolve_level(
        session, hospital_id=actor.hospital_id, level_code=level_code, doctor_id=doctor_id
    )


@router.post(
    "/schedule-templates", status_code=201, response_model=TemplateRead, tags=["scheduler"]
)
async def create_template(body: TemplateCreate, ctx: CtxDep, actor: ActorDep) -> TemplateRead:
    require_staff(actor, Role.SCHEDULER)
    default_start, default_end = rules.DEFAULT_PERIOD_HOURS[body.period]

    async def work(session: AsyncSession) -> TemplateRead:
        template = await service.add_template(
            session,
            actor=actor,
            shape=service.TemplateShape(
                department_id=body.department_id,
                doctor_id=body.doctor_id,
                level_id=await _level_id(session, actor, body.level_code, body.doctor_id),
                weekday=body.weekday,
                period=body.period,
                start_time=body.start or default_start,
                end_time=body.end or default_end,
                capacity=body.capacity,
                slot_minutes=body.slot_minutes,
                room=body.room,
                valid_from=body.valid_from,
                valid_until=body.valid_until,
            ),
            now=ctx.clock.now(),
        )
        return TemplateRead(
            id=template.id,
            department_id=template.department_id,
            doctor_id=template.doctor_id,
            weekday=template.weekday,
            period=template.period,
            start=template.start_time,
            end=template.end_time,
            capacity=template.capacity,
            slot_minutes=template.slot_minutes,
        )

    return await ctx.db.transact(work)


@router.post("/sessions/generate", response_model=GenerateReport, tags=["scheduler"])
async def generate(body: GenerateRequest, ctx: CtxDep, actor: ActorDep) -> GenerateReport:
    require_staff(actor, Role.SCHEDULER)

    async def work(session: AsyncSession) -> GenerateReport:
        now = ctx.clock.now()
        today = local_today(now, await service.hospital_timezone(session, actor.hospital_id))
        if body.start is not None:
            rules.check_generation_start(body.start, today)
        report = await service.generate_sessions(
            session,
            hospital_id=actor.hospital_id,
            start=body.start or today,
            days=body.days,
            now=now,
        )
        return GenerateReport(
            created=report.created,
            rebuilt=report.rebuilt,
            unchanged=report.unchanged,
            kept_with_bookings=report.kept_with_bookings,
        )

    return await ctx.db.transact(work)


@router.post(
    "/sessions", status_code=201, tags=["scheduler"], summary="Add an extra session (加诊)"
)
async def create_extra_session(
    body: ExtraSessionCreate, ctx: CtxDep, actor: ActorDep
) -> dict[str, Any]:
    require_staff(actor, Role.SCHEDULER)
    default_start, default_end = rules.DEFAULT_PERIOD_HOURS[body.period]

    async def work(session: AsyncSession) -> dict[str, Any]:
        shape = service.SessionShape(
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            level_id=await _level_id(session, actor, body.level_code, body.doctor_id),
            date=body.date,
            period=body.period,
            start_time=body.start or default_start,
            end_time=body.end or default_end,
            capacity=body.capacity,
            slot_minutes=body.slot_minutes,
            room=body.room,
        )
        now = ctx.clock.now()
        clinic = await service.add_extra_session(
            session,
            actor=actor,
            shape=shape,
            today=local_today(now, await service.hospital_timezone(session, actor.hospital_id)),
            now=now,
        )
        return {
            "id": str(clinic.id),
            "date": clinic.date.isoformat(),
            "period": str(clinic.period),
            "capacity": clinic.capacity,
        }

    return await ctx.db.transact(work)


@router.put(
    "/pool-ratios",
    status_code=204,
    tags=["scheduler"],
    summary="Set channel/pool shares for future sessions",
)
async def put_pool_ratios(body: PoolRatiosUpdate, ctx: CtxDep, actor: ActorDep) -> None:
    if body.department_id and body.doctor_id:
        raise ValidationFailed(
            errors=[{"field": "doctor_id", "message": "give a department or a doctor, not both"}],
            summary="doctor_id",
        )

    async def work(session: AsyncSession) -> None:
        await service.set_pool_ratios(
            session,
            actor=actor,
            ratios=body.ratios,
            department_id=body.department_id,
            doctor_id=body.doctor_id,
            now=ctx.clock.now(),
        )

    await ctx.db.transact(work)


def _policy_read(row: BookingPolicy | None, department_id: uuid.UUID | None) -> BookingPolicyRead:
    return BookingPolicyRead(department_id=department_id, **service.policy_values(row))


@router.get(
    "/booking-policy", response_model=BookingPolicyRead, summary="The booking policy in force"
)
async def get_booking_policy(
    ctx: CtxDep, actor: ActorDep, department_id: uuid.UUID | None = None
) -> BookingPolicyRead:
    async with ctx.db.read() as session:
        row = None
        if department_id is not None:
            row = await service.policy_row(
                session, hospital_id=actor.hospital_id, department_id=department_id
            )
        if row is None:
            row = await service.policy_row(
                session, hospital_id=actor.hospital_id, department_id=None
            )
    return _policy_read(row, department_id)


@router.put(
    "/booking-policy",
    response_model=BookingPolicyRead,
    tags=["scheduler"],
    summary="Set release window, cut-off, cancellation deadline, hold time and limits",
)
async def put_booking_policy(
    body: BookingPolicyUpdate, ctx: CtxDep, actor: ActorDep
) -> BookingPolicyRead:
    async def work(session: AsyncSession) -> BookingPolicyRead:
        row = await service.update_policy(
            session,
            actor=actor,
            department_id=body.department_id,
            changes=body.model_dump(exclude={"department_id"}, exclude_none=True),
            now=ctx.clock.now(),
        )
        return _policy_read(row, body.department_id)

    result = await ctx.db.transact(work)
    ctx.sold_out.clear()
    ctx.policies.clear()
    # The windows changed: every kept session and slot list with them.
    ctx.reads.changed(None)
    return result


# --- the hospital's structure: departments and doctors ------------------------------------


def _department_admin(department: Department) -> DepartmentAdminRead:
    return DepartmentAdminRead(
        id=department.id,
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
        active=department.active,
    )


async def _structure_change(
    ctx: StructureContext, work: Callable[[AsyncSession], Awaitable[_T]]
) -> _T:
    """Runs the change in one transaction; after the commit every cache of names, rooms
    and lists here forgets what it kept."""
    result = await ctx.db.transact(work)
    ctx.structure_changed()
    return result


@router.post(
    "/departments",
    status_code=201,
    response_model=DepartmentAdminRead,
    tags=["scheduler"],
    summary="Add a department",
)
async def create_department(
    body: DepartmentCreate, ctx: CtxDep, actor: ActorDep
) -> DepartmentAdminRead:
    require_staff(actor, Role.SCHEDULER)

    async def work(session: AsyncSession) -> DepartmentAdminRead:
        department = await service.add_department(
            session,
            actor=actor,
            facts=rules.DepartmentFacts(**body.model_dump()),
            now=ctx.clock.now(),
        )
        return _department_admin(department)

    return await _structure_change(ctx, work)


# Fields a null clears; a null anywhere else keeps the value.
_CLEARABLE = frozenset({"min_age_years", "max_age_years", "sex_restriction", "campus_id"})


@router.patch(
    "/departments/{department_id}",
    response_model=DepartmentAdminRead,
    tags=["scheduler"],
    summary="Rename or edit a department",
)
async def update_department(
    department_id: uuid.UUID, body: DepartmentUpdate, ctx: CtxDep, actor: ActorDep
) -> DepartmentAdminRead:
    require_staff(actor, Role.SCHEDULER)
    changes = {
        name: value
        for name, value in body.model_dump(exclude_unset=True).items()
        if value is not None or name in _CLEARABLE
    }

    async def work(session: AsyncSession) -> DepartmentAdminRead:
        department = await service.update_department(
            session,
            actor=actor,
            department_id=department_id,
            changes=changes,
            now=ctx.clock.now(),
        )
        return _department_admin(department)

    return await _structure_change(ctx, work)


async def _department_active(
    ctx: StructureContext, actor: Actor, department_id: uuid.UUID, *, active: bool
) -> DepartmentAdminRead:
    require_staff(actor, Role.SCHEDULER)

    async def work(session: AsyncSession) -> DepartmentAdminRead:
        department = await service.set_department_active(
            session, actor=actor, department_id=department_id, active=active, now=ctx.clock.now()
        )
        return _department_admin(department)

    return await _structure_change(ctx, work)


@router.post(
    "/departments/{department_id}/deactivate",
    response_model=DepartmentAdminRead,
    tags=["scheduler"],
    summary="Deactivate a department: hidden from patients, no new rows or sessions",
)
async def deactivate_department(
    department_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> DepartmentAdminRead:
    return await _department_active(ctx, actor, department_id, active=False)


@router.post(
    "/departments/{department_id}/reactivate",
    response_model=DepartmentAdminRead,
    tags=["scheduler"],
    summary="Bring a deactivated department back",
)
async def reactivate_department(
    department_id: uuid.UUID, ctx: CtxDep, actor: ActorDep
) -> DepartmentAdminRead:
    return await _department_active(ctx, actor, department_id, active=True)


async def _doctor_admin(session: AsyncSession, doctor: Doctor) -> DoctorAdminRead:
    level = await session.get(RegistrationLevel, doctor.level_id)
    return DoctorAdminRead(
        id=doctor.id,
        code=doctor.code,
        name=doctor.name,
        title=doctor.title,
        title_en=doctor.title_en,
        room=doctor.room,
        department_id=doctor.department_id,
        level_code=level.code if level is not None else "",
        active=doctor.active,
    )


@router.post(
    "/doctors",
    status_code=201,
    response_model=DoctorAdminRead,
    tags=["scheduler"],
    summary="Add a doctor to a department",
)
async def create_doctor(body: DoctorCreate, ctx: CtxDep, actor: ActorDep) -> DoctorAdminRead:
    require_staff(actor, Role.SCHEDULER)

    async def work(session: AsyncSession) -> DoctorAdminRead:
        doctor = await service.add_doctor(
            session,
            actor=actor,
            facts=rules.DoctorFacts(
                code=body.code,
                name=body.name,
                title=body.title,
                title_en=body.title_en,
                room=body.room,
            ),
            department_id=body.department_id,
            level_id=await _level_id(session, actor, body.level_code, None),
            now=ctx.clock.now(),
        )
        return await _doctor_admin(session, doctor)

    return await _structure_change(ctx, work)


@router.patch(
    "/doctors/{doctor_id}",
    response_model=DoctorAdminRead,
    tags=["scheduler"],
    summary="Edit a doctor: name, title, department, level, room",
)
async def edit_doctor(
    doctor_id: uuid.UUID, body: DoctorEdit, ctx: CtxDep, actor: ActorDep
) -> DoctorAdminRead:
    require_staff(actor, Role.SCHEDULER)
    sent = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}

    async def work(session: AsyncSession) -> DoctorAdminRead:
        changes = {k: v for k, v in sent.items() if k != "level_code"}
        if "level_code" in sent:
            changes["level_id"] = await _level_id(session, actor, sent["level_code"], None)
        doctor = await service.edit_doctor(
            session, actor=actor, doctor_id=doctor_id, changes=changes, now=ctx.clock.now()
        )
        return await _doctor_admin(session, doctor)

    return await _structure_change(ctx, work)


async def _doctor_active(
    ctx: StructureContext, actor: Actor, doctor_id: uuid.UUID, *, active: bool
) -> DoctorAdminRead:
    require_staff(actor, Role.SCHEDULER)

    async def work(session: AsyncSession) -> DoctorAdminRead:
        doctor = await service.set_doctor_active(
            session, actor=actor, doctor_id=doctor_id, active=active, now=ctx.clock.now()
        )
        return await _doctor_admin(session, doctor)

    return await _structure_change(ctx, work)


@router.post(
    "/doctors/{doctor_id}/deactivate",
    response_model=DoctorAdminRead,
    tags=["scheduler"],
    summary="Deactivate a doctor: no new rows or sessions, bookings untouched",
)
async def deactivate_doctor(doctor_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> DoctorAdminRead:
    return await _doctor_active(ctx, actor, doctor_id, active=False)


@router.post(
    "/doctors/{doctor_id}/reactivate",
    response_model=DoctorAdminRead,
    tags=["scheduler"],
    summary="Bring a deactivated doctor back",
)
async def reactivate_doctor(doctor_id: uuid.UUID, ctx: CtxDep, actor: ActorDep) -> DoctorAdminRead:
    return await _doctor_active(ctx, actor, doctor_id, active=True)
