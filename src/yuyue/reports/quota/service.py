"""The quota advice's use cases: advice for every department and doctor from the last
weeks' summary rows (`report_session`), and accepting it, which writes the pool ratios
through scheduling (its validation and its audit row apply) and records what was advised
and what was written. Services never commit; the routes own the transaction."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import NotFound, ValidationFailed
from yuyue.reports import service as reports
from yuyue.reports import sources
from yuyue.reports.models import ReportSession
from yuyue.reports.quota import rules
from yuyue.reports.quota.rules import Advice, Demand
from yuyue.scheduling import service as scheduling
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

DEFAULT_WEEKS = 4
MAX_WEEKS = 12
_SUMS = (
    "capacity",
    "remote_capacity",
    "remote_used",
    "local_used",
    "waitlist_joined",
    "waitlist_accepted",
    "attended",
    "no_show",
)


@dataclass(frozen=True, slots=True)
class Period:
    """The visit days the advice reads: `weeks` whole weeks up to yesterday (today's
    sessions are not over)."""

    first: date
    last: date
    weeks: int


def period_of(today: date, weeks: int = DEFAULT_WEEKS) -> Period:
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValidationFailed(
            errors=[{"loc": ["query", "weeks"], "msg": f"between 1 and {MAX_WEEKS}"}],
            summary="weeks",
        )
    last = today - timedelta(days=1)
    return Period(last - timedelta(days=7 * weeks - 1), last, weeks)


@dataclass(frozen=True, slots=True)
class ScopeAdvice:
    department_id: uuid.UUID
    department: tuple[str, str]  # zh-CN, English
    doctor_id: uuid.UUID | None
    doctor: str | None
    demand: Demand
    advice: Advice


def _demand(sums: Mapping[str, int], sellouts: list[int]) -> Demand:
    return Demand(
        sessions=sums["sessions"],
        capacity=sums["capacity"],
        remote_capacity=sums["remote_capacity"],
        remote_used=sums["remote_used"],
        local_used=sums["local_used"],
        sold_out=sums["sold_out"],
        median_sellout_minutes=rules.median(sellouts),
        waitlist_joined=sums["waitlist_joined"],
        waitlist_accepted=sums["waitlist_accepted"],
        attended=sums["attended"],
        no_show=sums["no_show"],
    )


async def advise(
    session: AsyncSession,
    *,
    actor: Actor,
    period: Period,
    department_id: uuid.UUID | None = None,
) -> list[ScopeAdvice]:
    """Advice for each department with sessions in the period, each followed by its doctors'
    (sessions with a doctor). Read-only; refused (403) without a reports role."""
    reports.require_reader(actor)
    hospital_id = actor.hospital_id
    s = ReportSession
    where = [s.hospital_id == hospital_id, s.day >= period.first, s.day <= period.last]
    if department_id is not None:
        where.append(s.department_id == department_id)
    grouped = await session.execute(
        select(
            s.department_id,
            s.doctor_id,
            func.count().label("sessions"),
            func.coalesce(func.sum(case((s.sold_out_at.is_not(None), 1), else_=0)), 0).label(
                "sold_out"
            ),
            *[func.coalesce(func.sum(getattr(s, name)), 0).label(name) for name in _SUMS],
        )
        .where(*where)
        .group_by(s.department_id, s.doctor_id)
    )
    minutes = await session.execute(
        select(s.department_id, s.doctor_id, s.sellout_minutes).where(
            *where, s.sellout_minutes.is_not(None)
        )
    )
    keys = ("sessions", "sold_out", *_SUMS)
    per_department: defaultdict[uuid.UUID, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(keys, 0)
    )
    per_doctor: dict[tuple[uuid.UUID, uuid.UUID], dict[str, int]] = {}
    for row in grouped:
        sums = {key: int(row._mapping[key]) for key in keys}
        for key in keys:
            per_department[row.department_id][key] += sums[key]
        if row.doctor_id is not None:
            per_doctor[(row.department_id, row.doctor_id)] = sums
    sellouts_department: defaultdict[uuid.UUID, list[int]] = defaultdict(list)
    sellouts_doctor: defaultdict[tuple[uuid.UUID, uuid.UUID], list[int]] = defaultdict(list)
    for department, doctor, value in minutes:
        sellouts_department[department].append(int(value or 0))
        if doctor is not None:
            sellouts_doctor[(department, doctor)].append(int(value or 0))

    known = await sources.names(session, hospital_id=hospital_id)
    departments, doctors = known["department"], known["doctor"]
    out: list[ScopeAdvice] = []
    for department in sorted(per_department, key=lambda key: departments.get(key, ("", ""))[0]):
        demand = _demand(per_department[department], sellouts_department[department])
        current = await scheduling.pool_ratios(
            session, hospital_id=hospital_id, department_id=department, doctor_id=None
        )
        name = departments.get(department, ("-", "-"))
        out.append(ScopeAdvice(department, name, None, None, demand, rules.advise(demand, current)))
        mine = sorted(
            (doctor for dep, doctor in per_doctor if dep == department),
            key=lambda key: doctors.get(key, ("", ""))[0],
        )
        for doctor in mine:
            scope = (department, doctor)
            demand = _demand(per_doctor[scope], sellouts_doctor[scope])
            current = await scheduling.pool_ratios(
                session, hospital_id=hospital_id, department_id=department, doctor_id=doctor
            )
            out.append(
                ScopeAdvice(
                    department,
                    name,
                    doctor,
                    doctors.get(doctor, ("-", "-"))[0],
                    demand,
                    rules.advise(demand, current),
                )
            )
    return out


def advice_record(item: ScopeAdvice, period: Period) -> dict[str, Any]:
    """What the audit row keeps of the advice (and the JSON answer shows)."""
    return {
        "date_from": period.first.isoformat(),
        "date_to": period.last.isoformat(),
        "capacity_change": item.advice.capacity_change,
        "current": dict(item.advice.current),
        "ratios": dict(item.advice.ratios),
        "reasons": [
            {"code": reason.code.value, "values": dict(reason.values)}
            for reason in item.advice.reasons
        ],
    }


@dataclass(frozen=True, slots=True)
class Accepted:
    advice: ScopeAdvice | None  # None: no sessions in the period, nothing was advised
    written: dict[str, int]
    edited: bool


async def accept(
    session: AsyncSession,
    *,
    actor: Actor,
    department_id: uuid.UUID,
    doctor_id: uuid.UUID | None,
    ratios: dict[str, int],
    period: Period,
    now: datetime,
) -> Accepted:
    """Writes `ratios` (the advice, or the scheduler's edit of it) as the department's or the
    doctor's pool ratios, for sessions generated from now on. Only the scheduler (and
    administrators); bad ratios are refused by scheduling's validation before anything is
    written, and the transaction rolls back whole."""
    require_staff(actor, Role.SCHEDULER)
    hospital_id = actor.hospital_id
    if not await scheduling.department_in_hospital(
        session, hospital_id=hospital_id, department_id=department_id
    ):
        raise NotFound(what="department")
    if doctor_id is not None:
        mine = await sources.department_doctors(session, hospital_id=hospital_id)
        if (department_id, doctor_id) not in {(dep, doc) for dep, doc, _ in mine}:
            raise NotFound(what="doctor")
    found = [
        item
        for item in await advise(session, actor=actor, period=period, department_id=department_id)
        if item.doctor_id == doctor_id
    ]
    item = found[0] if found else None
    # Doctor rows carry no department (scheduling resolves doctor → department → hospital).
    await scheduling.set_pool_ratios(
        session,
        actor=actor,
        ratios=dict(ratios),
        department_id=None if doctor_id else department_id,
        doctor_id=doctor_id,
        now=now,
    )
    edited = item is None or dict(item.advice.ratios) != dict(ratios)
    record_audit(
        session,
        actor=actor,
        action="quota_advice_accepted",
        entity_type="doctor" if doctor_id else "department",
        entity_id=doctor_id or department_id,
        before={"ratios": dict(item.advice.current)} if item else None,
        after={
            "advice": advice_record(item, period) if item else None,
            "written": dict(ratios),
            "edited": edited,
        },
        now=now,
    )
    return Accepted(item, dict(ratios), edited)


async def current_ratios(
    session: AsyncSession, *, actor: Actor, scope: ScopeAdvice
) -> dict[str, int]:
    """The split sessions of this scope are generated with now."""
    reports.require_reader(actor)
    return await scheduling.pool_ratios(
        session,
        hospital_id=actor.hospital_id,
        department_id=scope.department_id,
        doctor_id=scope.doctor_id,
    )
