"""The hospital's structure from the scheduling pages (科室管理): a scheduler adds a
department, renames or edits it and deactivates it; adds a doctor with title, level and room,
edits them and deactivates them. The scheduling service is the only writer and holds every
rule (a code unique in the hospital, a name, a sensible age range…); a refusal is a sentence
on the form, which keeps what was typed, and saves nothing. Every change is audited by the
service and makes this process's caches of names and lists forget what they kept."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.frontdesk import timetable
from yuyue.frontdesk.pages import StaffDep
from yuyue.frontdesk.web import FloorVisitor, form_of, redirect, render
from yuyue.kit import i18n
from yuyue.kit.errors import NotFound
from yuyue.scheduling import rules
from yuyue.scheduling import service as scheduling
from yuyue.scheduling.models import Department, Doctor
from yuyue.scheduling.schemas import DepartmentCreate, DoctorCreate
from yuyue.web.pagekit import FormRefused, done_notice, with_query

router = APIRouter(include_in_schema=False)
DEPARTMENTS_PATH = timetable.PREFIX + "/departments"
DOCTORS_PATH = timetable.DOCTORS_PATH
ROLES = timetable.ROLES
DEPARTMENT_FIELDS = (
    "code",
    "name",
    "name_en",
    "location",
    "location_en",
    "what_to_bring",
    "what_to_bring_en",
    "min_age_years",
    "max_age_years",
    "sex_restriction",
    "campus_id",
)
DOCTOR_FIELDS = ("code", "name", "title", "title_en", "department_id", "level_code", "room")
# Named in errors as the other scheduling pages name them.
FIELDS = timetable.FIELDS
_T = TypeVar("_T")

i18n.register(
    {
        "sched.nav.departments": ("科室管理", "Departments"),
        "dept.title": ("科室管理", "Departments"),
        "dept.hint": (
            "停用的科室不在患者端显示，不能再排班、加诊或新增医生；已生成的出诊和预约保持不变"
            "（如需取消请停诊）。科室不会被删除，历史记录完整保留。",
            "A deactivated department is hidden from patients and takes no new timetable "
            "rows, sessions or doctors; sessions already made and their bookings stay (stop "
            "them to cancel). Departments are never deleted, so their history stays whole.",
        ),
        "dept.code": ("编码", "Code"),
        "dept.name": ("名称", "Name"),
        "dept.name_en": ("英文名称", "Name in English"),
        "dept.location": ("位置", "Location"),
        "dept.location_en": ("英文位置", "Location in English"),
        "dept.what_to_bring": ("就诊须带", "What to bring"),
        "dept.what_to_bring_en": ("英文就诊须带", "What to bring, in English"),
        "dept.ages": ("年龄", "Ages"),
        "dept.min_age": ("最小年龄（周岁）", "Youngest (full years)"),
        "dept.max_age": ("最大年龄（周岁）", "Oldest (full years)"),
        "dept.any_age": ("不限", "Any"),
        "dept.age_range": ("{low}–{high} 岁", "{low}–{high}"),
        "dept.age_from": ("{low} 岁及以上", "{low} and over"),
        "dept.age_to": ("{high} 岁及以下", "up to {high}"),
        "dept.sex": ("性别限制", "Sex"),
        "dept.sex.any": ("不限", "Any"),
        "dept.sex.M": ("仅男性", "Men only"),
        "dept.sex.F": ("仅女性", "Women only"),
        "dept.campus": ("院区", "Campus"),
        "dept.no_campus": ("不指定", "None"),
        "dept.state": ("状态", "State"),
        "dept.active": ("使用中", "Active"),
        "dept.inactive": ("已停用", "Deactivated"),
        "dept.edit": ("编辑", "Edit"),
        "dept.deactivate": ("停用", "Deactivate"),
        "dept.reactivate": ("恢复使用", "Reactivate"),
        "dept.add": ("新增科室", "Add a department"),
        "dept.add_button": ("新增", "Add"),
        "dept.save": ("保存", "Save"),
        "dept.back": ("返回科室列表", "Back to the departments"),
        "dept.edit_title": ("编辑科室：{name}", "Edit the department: {name}"),
        "dept.done.added": ("已新增科室。", "The department is added."),
        "dept.done.saved": ("已保存科室。", "The department is saved."),
        "dept.done.deactivated": ("科室已停用。", "The department is deactivated."),
        "dept.done.reactivated": ("科室已恢复使用。", "The department is active again."),
        "doc.add": ("新增医生", "Add a doctor"),
        "doc.add_hint": (
            "新医生在排班模板中安排出诊后，患者即可预约。工号可不填，系统自动生成。",
            "Patients can book a new doctor once a timetable row names them. Leave the code "
            "empty to get one.",
        ),
        "doc.add_button": ("新增", "Add"),
        "doc.code": ("工号（可不填）", "Code (optional)"),
        "doc.title_en": ("英文职称", "Title in English"),
        "doc.room": ("诊室", "Room"),
        "doc.edit": ("编辑", "Edit"),
        "doc.edit_title": ("编辑医生：{name}", "Edit the doctor: {name}"),
        "doc.edit_hint": (
            "调整号别或诊室后，该医生的排班随之调整；已有预约的出诊保持不变。有排班的医生不能调到"
            "其他科室。",
            "A new level or room moves the doctor's timetable rows with it; booked sessions "
            "stay as they are. A doctor with timetable rows stays in their department.",
        ),
        "doc.deactivate": ("停用", "Deactivate"),
        "doc.deactivate_hint": (
            "停用后不再生成该医生的出诊，也不能加诊；已生成的出诊和预约保持不变（如需取消请停诊）。",
            "Deactivated, the doctor gets no new sessions; sessions already made and their "
            "bookings stay (stop them to cancel).",
        ),
        "doc.reactivate": ("恢复使用", "Reactivate"),
        "doc.inactive": ("已停用的医生", "Deactivated doctors"),
        "doc.done.added": ("已新增医生 {name}。", "{name} is added."),
        "doc.done.saved": ("已保存 {name}。", "{name} is saved."),
        "doc.done.deactivated": ("已停用 {name}。", "{name} is deactivated."),
        "doc.done.reactivated": ("{name} 已恢复使用。", "{name} is active again."),
        "sched.field.code": (
            "编码（1–32 位字母、数字、- 或 _）",
            "code (1–32 letters, digits, - or _)",
        ),
        "sched.field.name": ("名称", "name"),
        "sched.field.name_en": ("英文名称", "name in English"),
        "sched.field.location": ("位置", "location"),
        "sched.field.location_en": ("英文位置", "location in English"),
        "sched.field.what_to_bring": ("就诊须带", "what to bring"),
        "sched.field.what_to_bring_en": ("英文就诊须带", "what to bring in English"),
        "sched.field.min_age_years": ("最小年龄（0–150）", "youngest age (0–150)"),
        "sched.field.max_age_years": ("最大年龄（0–150）", "oldest age (0–150)"),
        "sched.field.sex_restriction": ("性别限制", "sex"),
        "sched.field.campus_id": ("院区", "campus"),
        "sched.field.title": ("职称（最多 50 字）", "title (at most 50 characters)"),
        "sched.field.title_en": ("英文职称（最多 80 字）", "title in English (at most 80)"),
    }
)


async def _change(who: FloorVisitor, work: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
    """`work` saved (or `FormRefused`), then every process's memory of departments and
    doctors renewed."""
    result = await FIELDS.saved(who, work)
    who.ctx.structure_changed()
    return result


def _department_body(who: FloorVisitor, form: Mapping[str, str]) -> DepartmentCreate:
    """The department form in the API's shape; an empty age, sex or campus is none."""
    values: dict[str, Any] = {name: form.get(name, "").strip() for name in DEPARTMENT_FIELDS}
    for name in ("min_age_years", "max_age_years", "sex_restriction", "campus_id"):
        if not values[name]:
            values[name] = None
    return FIELDS.validated(who, DepartmentCreate, values)


def _department_form(department: Department) -> dict[str, str]:
    return {
        name: "" if getattr(department, name) is None else str(getattr(department, name))
        for name in DEPARTMENT_FIELDS
    }


# --- departments ---------------------------------------------------------------------------


async def _departments_page(
    request: Request,
    who: FloorVisitor,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        departments = await scheduling.all_departments(session, hospital_id=who.hospital.id)
        campuses = await scheduling.campuses(session, hospital_id=who.hospital.id)
    return render(
        request,
        who,
        "scheduling_departments.html",
        status=status,
        error=error,
        done=done_notice(
            request, who, "dept.done.{done}", ("added", "saved", "deactivated", "reactivated")
        ),
        departments=departments,
        campuses=campuses,
        form=form or {},
        nav="departments",
    )


@router.get(DEPARTMENTS_PATH, response_class=HTMLResponse)
async def departments_view(request: Request, who: StaffDep) -> Response:
    return await _departments_page(request, who)


@router.post(DEPARTMENTS_PATH, response_class=HTMLResponse)
async def add_department(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = _department_body(who, form)

        async def work(session: AsyncSession) -> None:
            await scheduling.add_department(
                session,
                actor=actor,
                facts=rules.DepartmentFacts(**body.model_dump()),
                now=who.ctx.clock.now(),
            )

        await _change(who, work)
    except FormRefused as refused:
        return await _departments_page(
            request, who, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(DEPARTMENTS_PATH, done="added"))


async def _department_page(
    request: Request,
    who: FloorVisitor,
    department_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        department = await session.get(Department, department_id)
        if department is None or department.hospital_id != who.hospital.id:
            raise NotFound(what="department")
        campuses = await scheduling.campuses(session, hospital_id=who.hospital.id)
    return render(
        request,
        who,
        "scheduling_department.html",
        status=status,
        error=error,
        department=department,
        campuses=campuses,
        form=form or _department_form(department),
        nav="departments",
    )


@router.get(DEPARTMENTS_PATH + "/{department_id}", response_class=HTMLResponse)
async def department_view(request: Request, who: StaffDep, department_id: uuid.UUID) -> Response:
    return await _department_page(request, who, department_id)


@router.post(DEPARTMENTS_PATH + "/{department_id}", response_class=HTMLResponse)
async def save_department(request: Request, who: StaffDep, department_id: uuid.UUID) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = _department_body(who, form)

        async def work(session: AsyncSession) -> None:
            await scheduling.update_department(
                session,
                actor=actor,
                department_id=department_id,
                changes=body.model_dump(),
                now=who.ctx.clock.now(),
            )

        await _change(who, work)
    except FormRefused as refused:
        return await _department_page(
            request, who, department_id, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(DEPARTMENTS_PATH, done="saved"))


async def _department_active(
    request: Request, who: FloorVisitor, department_id: uuid.UUID, *, active: bool
) -> Response:
    actor = who.require(request, *ROLES)
    await form_of(request, who)

    async def work(session: AsyncSession) -> None:
        await scheduling.set_department_active(
            session,
            actor=actor,
            department_id=department_id,
            active=active,
            now=who.ctx.clock.now(),
        )

    try:
        await _change(who, work)
    except FormRefused as refused:
        return await _departments_page(request, who, error=refused.sentence, status=refused.status)
    done = "reactivated" if active else "deactivated"
    return redirect(with_query(DEPARTMENTS_PATH, done=done))


@router.post(DEPARTMENTS_PATH + "/{department_id}/deactivate", response_class=HTMLResponse)
async def deactivate_department(
    request: Request, who: StaffDep, department_id: uuid.UUID
) -> Response:
    return await _department_active(request, who, department_id, active=False)


@router.post(DEPARTMENTS_PATH + "/{department_id}/reactivate", response_class=HTMLResponse)
async def reactivate_department(
    request: Request, who: StaffDep, department_id: uuid.UUID
) -> Response:
    return await _department_active(request, who, department_id, active=True)


# --- doctors -------------------------------------------------------------------------------


def _doctor_body(who: FloorVisitor, form: Mapping[str, str]) -> DoctorCreate:
    values = {name: form.get(name, "").strip() for name in DOCTOR_FIELDS}
    return FIELDS.validated(who, DoctorCreate, values)


def _doctor_done(request: Request, who: FloorVisitor) -> str | None:
    done = request.query_params.get("done", "")
    if done in ("added", "saved", "deactivated", "reactivated"):
        return who.t(f"doc.done.{done}", name=request.query_params.get("name", "")[:50])
    return None


@router.post(DOCTORS_PATH, response_class=HTMLResponse)
async def add_doctor(request: Request, who: StaffDep) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = _doctor_body(who, form)

        async def work(session: AsyncSession) -> str:
            doctor = await scheduling.add_doctor(
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
                level_id=await scheduling.resolve_level(
                    session,
                    hospital_id=actor.hospital_id,
                    level_code=body.level_code,
                    doctor_id=None,
                ),
                now=who.ctx.clock.now(),
            )
            return doctor.name

        name = await _change(who, work)
    except FormRefused as refused:
        return await timetable.doctors_page(
            request, who, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(DOCTORS_PATH, done="added", name=name))


async def _doctor_page(
    request: Request,
    who: FloorVisitor,
    doctor_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
    form: Mapping[str, str] | None = None,
) -> Response:
    who.require(request, *ROLES)
    async with who.ctx.db.read() as session:
        doctor = await session.get(Doctor, doctor_id)
        if doctor is None or doctor.hospital_id != who.hospital.id:
            raise NotFound(what="doctor")
        departments = await scheduling.active_departments(session, hospital_id=who.hospital.id)
        if doctor.department_id not in {d.id for d in departments}:
            # A deactivated department's doctor is shown where they are.
            own = await session.get(Department, doctor.department_id)
            departments = [*departments, *([own] if own is not None else [])]
        levels = await scheduling.levels(session, hospital_id=who.hospital.id)
    level_code = next((level.code for level in levels if level.id == doctor.level_id), "")
    return render(
        request,
        who,
        "scheduling_doctor.html",
        status=status,
        error=error,
        done=_doctor_done(request, who),
        doctor=doctor,
        departments=departments,
        levels=levels,
        form=form
        or {
            "code": doctor.code,
            "name": doctor.name,
            "title": doctor.title,
            "title_en": doctor.title_en,
            "room": doctor.room,
            "department_id": str(doctor.department_id),
            "level_code": level_code,
        },
        nav="doctors",
    )


@router.get(DOCTORS_PATH + "/{doctor_id}", response_class=HTMLResponse)
async def doctor_view(request: Request, who: StaffDep, doctor_id: uuid.UUID) -> Response:
    return await _doctor_page(request, who, doctor_id)


@router.post(DOCTORS_PATH + "/{doctor_id}/edit", response_class=HTMLResponse)
async def edit_doctor(request: Request, who: StaffDep, doctor_id: uuid.UUID) -> Response:
    actor = who.require(request, *ROLES)
    form = await form_of(request, who)
    try:
        body = _doctor_body(who, form)

        async def work(session: AsyncSession) -> str:
            doctor = await scheduling.edit_doctor(
                session,
                actor=actor,
                doctor_id=doctor_id,
                changes={
                    "code": body.code,
                    "name": body.name,
                    "title": body.title,
                    "title_en": body.title_en,
                    "room": body.room,
                    "department_id": body.department_id,
                    "level_id": await scheduling.resolve_level(
                        session,
                        hospital_id=actor.hospital_id,
                        level_code=body.level_code,
                        doctor_id=None,
                    ),
                },
                now=who.ctx.clock.now(),
            )
            return doctor.name

        name = await _change(who, work)
    except FormRefused as refused:
        return await _doctor_page(
            request, who, doctor_id, error=refused.sentence, status=refused.status, form=form
        )
    return redirect(with_query(DOCTORS_PATH, done="saved", name=name))


async def _doctor_active(
    request: Request, who: FloorVisitor, doctor_id: uuid.UUID, *, active: bool
) -> Response:
    actor = who.require(request, *ROLES)
    await form_of(request, who)

    async def work(session: AsyncSession) -> str:
        doctor = await scheduling.set_doctor_active(
            session, actor=actor, doctor_id=doctor_id, active=active, now=who.ctx.clock.now()
        )
        return doctor.name

    try:
        name = await _change(who, work)
    except FormRefused as refused:
        return await timetable.doctors_page(
            request, who, error=refused.sentence, status=refused.status
        )
    done = "reactivated" if active else "deactivated"
    return redirect(with_query(DOCTORS_PATH, done=done, name=name))


@router.post(DOCTORS_PATH + "/{doctor_id}/deactivate", response_class=HTMLResponse)
async def deactivate_doctor(request: Request, who: StaffDep, doctor_id: uuid.UUID) -> Response:
    return await _doctor_active(request, who, doctor_id, active=False)


@router.post(DOCTORS_PATH + "/{doctor_id}/reactivate", response_class=HTMLResponse)
async def reactivate_doctor(request: Request, who: StaffDep, doctor_id: uuid.UUID) -> Response:
    return await _doctor_active(request, who, doctor_id, active=True)
