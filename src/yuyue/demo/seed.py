"""Loads the demo hospital from the catalogue. Running it again changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.demo import catalogue as c
from yuyue.demo.history import HistorySummary
from yuyue.kit.crypto import FieldCipher
from yuyue.patients import service as patient_service
from yuyue.patients.rules import IdType
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import (
    BookingPolicy,
    Campus,
    Department,
    Doctor,
    Hospital,
    PoolRatio,
    RegistrationLevel,
    ScheduleTemplate,
)
from yuyue.scheduling.rules import DEFAULT_POOL_RATIOS
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role
from yuyue.staff.models import StaffUser

DAYS_OF_SESSIONS = 14


@dataclass(frozen=True, slots=True)
class DemoSummary:
    hospital_id: uuid.UUID
    created: bool
    departments: int
    doctors: int
    sessions_created: int
    patients: dict[str, uuid.UUID]
    history: HistorySummary | None = None

    def __str__(self) -> str:
        state = "created" if self.created else "already present"
        told = (
            f"{state}; {self.departments} departments, {self.doctors} doctors, "
            f"{self.sessions_created} new sessions, {len(self.patients)} demo patients"
        )
        return f"{told}; {self.history}" if self.history is not None else told


async def _hospital(session: AsyncSession, now: datetime) -> tuple[Hospital, bool]:
    existing = await session.scalar(select(Hospital).where(Hospital.code == c.HOSPITAL.code))
    if existing is not None:
        return existing, False
    hospital = Hospital(
        code=c.HOSPITAL.code,
        name=c.HOSPITAL.name_zh,
        name_en=c.HOSPITAL.name_en,
        timezone=c.HOSPITAL.timezone,
        created_at=now,
    )
    session.add(hospital)
    await session.flush()
    # The printed demo logins work with a password alone; an administrator says which roles
    # must use a second factor (PUT /api/v1/staff/second-factor-roles).
    staff_service.opt_out_of_second_factor(session, hospital_id=hospital.id, now=now)
    return hospital, True


async def _structure(session: AsyncSession, hospital: Hospital, now: datetime) -> None:
    hid = hospital.id
    session.add(BookingPolicy(hospital_id=hid))
    for pool, percent in DEFAULT_POOL_RATIOS.items():
        session.add(PoolRatio(hospital_id=hid, pool=pool, percent=percent))
    campuses: dict[str, uuid.UUID] = {}
    for campus in c.CAMPUSES:
        row = Campus(
            hospital_id=hid,
            code=campus.code,
            name=campus.name_zh,
            name_en=campus.name_en,
            address=campus.address_zh,
        )
        session.add(row)
        await session.flush()
        campuses[campus.code] = row.id
    levels: dict[str, uuid.UUID] = {}
    for rank, level in enumerate(c.LEVELS):
        level_row = RegistrationLevel(
            hospital_id=hid,
            code=level.code,
            name=level.name_zh,
            name_en=level.name_en,
            fee_fen=level.fee_fen,
            rank=rank,
        )
        session.add(level_row)
        await session.flush()
        levels[level.code] = level_row.id
    categories = {cat.code: cat for cat in c.CATEGORIES}
    titles = {t.code: t for t in c.TITLES}
    departments: dict[str, uuid.UUID] = {}
    for order, dep in enumerate(c.DEPARTMENTS):
        category = categories[dep.category_code]
        dep_row = Department(
            hospital_id=hid,
            campus_id=campuses[dep.campus_code],
            code=dep.code,
            name=dep.name_zh,
            name_en=dep.name_en,
            category=category.name_zh,
            category_en=category.name_en,
            pinyin=dep.pinyin,
            location=dep.location_zh,
            location_en=dep.location_en,
            description=dep.description_zh,
            description_en=dep.description_en,
            what_to_bring=dep.bring_zh,
            what_to_bring_en=dep.bring_en,
            min_age_years=dep.min_age_years,
            max_age_years=dep.max_age_years,
            sex_restriction=dep.sex,
            sort_order=order,
        )
        session.add(dep_row)
        await session.flush()
        departments[dep.code] = dep_row.id
    doctors: dict[str, uuid.UUID] = {}
    # Each doctor sees patients in a room (诊室) of their own, numbered within the
    # department; a department's sessions without a named doctor take the next one.
    rooms_used: dict[str, int] = {}

    def next_room(department_code: str) -> str:
        rooms_used[department_code] = rooms_used.get(department_code, 0) + 1
        return f"{rooms_used[department_code]}诊室"

    for doc in c.DOCTORS:
        room = next_room(doc.department_code)
        title = titles[doc.title_code]
        doc_row = Doctor(
            hospital_id=hid,
            department_id=departments[doc.department_code],
            level_id=levels[doc.level_code],
            code=doc.code,
            name=doc.name_zh,
            sex=doc.sex,
            title=title.name_zh,
            title_en=title.name_en,
            specialty=doc.specialty_zh,
            specialty_en=doc.specialty_en,
            room=room,
        )
        session.add(doc_row)
        await session.flush()
        doctors[doc.code] = doc_row.id
        for weekday, period in doc.timetable:
            start, end = c.PERIOD_HOURS[period]
            session.add(
                ScheduleTemplate(
                    hospital_id=hid,
                    department_id=doc_row.department_id,
                    doctor_id=doc_row.id,
                    level_id=doc_row.level_id,
                    weekday=weekday,
                    period=Period(period),
                    start_time=start,
                    end_time=end,
                    capacity=doc.capacity,
                    slot_minutes=30,
                    room=room,
                )
            )
    department_rooms: dict[str, str] = {}
    for dep_session in c.DEPARTMENT_SESSIONS:
        start, end = c.PERIOD_HOURS[dep_session.period]
        code = dep_session.department_code
        if code not in department_rooms:
            department_rooms[code] = next_room(code)
        session.add(
            ScheduleTemplate(
                hospital_id=hid,
                department_id=departments[dep_session.department_code],
                doctor_id=None,
                level_id=levels[dep_session.level_code],
                weekday=dep_session.weekday,
                period=Period(dep_session.period),
                start_time=start,
                end_time=end,
                capacity=dep_session.capacity,
                slot_minutes=30,
                room=department_rooms[code],
            )
        )
    await session.flush()


async def _staff(
    session: AsyncSession, hospital: Hospital, *, cipher: FieldCipher, now: datetime
) -> None:
    """The printed logins; one added to the catalogue later appears in an existing demo."""
    present = set(
        (
            await session.scalars(
                select(StaffUser.username).where(StaffUser.hospital_id == hospital.id)
            )
        ).all()
    )
    rows = await session.execute(
        select(Doctor.code, Doctor.id).where(Doctor.hospital_id == hospital.id)
    )
    doctors: dict[str, uuid.UUID] = dict(rows.all())
    for account in c.STAFF:
        if account.username in present:
            continue
        user = await staff_service.create_staff(
            session,
            hospital_id=hospital.id,
            username=account.username,
            display_name=account.display_name,
            password=account.password,
            roles=[Role(r) for r in account.roles],
            doctor_id=doctors.get(account.doctor_code) if account.doctor_code else None,
            now=now,
        )
        if account.totp_secret is not None:
            # Enrolled and in force: this account's sign-in asks for the code whatever the
            # hospital's second-factor roles say.
            user.totp_secret = cipher.encrypt(account.totp_secret)
            user.totp_confirmed_at = now
    await session.flush()


async def seed_demo(
    session: AsyncSession, *, cipher: FieldCipher, now: datetime, today: date
) -> DemoSummary:
    hospital, created = await _hospital(session, now)
    if created:
        await _structure(session, hospital, now)
    await _staff(session, hospital, cipher=cipher, now=now)
    report = await scheduling_service.generate_sessions(
        session, hospital_id=hospital.id, start=today, days=DAYS_OF_SESSIONS, now=now
    )
    patients: dict[str, uuid.UUID] = {}
    for demo in c.DEMO_PATIENTS:
        found = await patient_service.find_by_identity(
            session,
            hospital_id=hospital.id,
            cipher=cipher,
            id_type=IdType.RESIDENT_ID,
            id_number=demo.id_number,
            today=today,
        )
        if found is None:
            found = await patient_service.register_patient(
                session,
                hospital_id=hospital.id,
                cipher=cipher,
                name=demo.name_zh,
                id_type=IdType.RESIDENT_ID,
                id_number=demo.id_number,
                phone=demo.phone,
                account_phone=demo.account_phone,
                birth_date=None,
                sex=None,
                account_patients_max=5,
                today=today,
                now=now,
            )
        # The demo prints an app-channel key and these patients to try it with: the app
        # registered them, so the key may read them back (docs/api.md, reading a patient).
        await patient_service.remember_channel(
            session, hospital_id=hospital.id, patient_id=found.id, channel=Channel.APP, now=now
        )
        patients[demo.name_zh] = found.id
    return DemoSummary(
        hospital_id=hospital.id,
        created=created,
        departments=len(c.DEPARTMENTS),
        doctors=len(c.DOCTORS),
        sessions_created=report.created,
        patients=patients,
    )
