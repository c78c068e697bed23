"""Typed factories with keyword-only defaults; they go through the services where one exists."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.crypto import FieldCipher
from yuyue.patients import service as patient_service
from yuyue.patients.models import Patient
from yuyue.patients.rules import IdType
from yuyue.scheduling import service as scheduling_service
from yuyue.scheduling.enums import Channel, Period
from yuyue.scheduling.models import (
    BookingPolicy,
    ClinicSession,
    Department,
    Doctor,
    Hospital,
    PoolRatio,
    RegistrationLevel,
)
from yuyue.staff import service as staff_service
from yuyue.staff.enums import Role

_counter = itertools.count(1)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(
    *, birth: date = date(1990, 1, 1), sex: str = "M", region: str | None = None
) -> str:
    """A fresh valid GB 11643 number: sequence digits and district from a counter."""
    n = next(_counter)
    sequence = (n % 500) * 2 + (1 if sex == "M" else 0)
    body = f"{region or f'1101{(n // 500) % 100:02d}'}{birth:%Y%m%d}{sequence:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    return body + check


def phone() -> str:
    return f"139{next(_counter) % 10**8:08d}"


async def make_hospital(
    session: AsyncSession,
    *,
    now: datetime,
    code: str | None = None,
    ratios: dict[str, int] | None = None,
    **policy: object,
) -> Hospital:
    hospital = Hospital(
        code=code or f"h{next(_counter)}", name="测试医院", name_en="Test Hospital", created_at=now
    )
    session.add(hospital)
    await session.flush()
    session.add(BookingPolicy(hospital_id=hospital.id, **policy))
    # Test staff sign in with a password alone; tests of the second factor say which roles
    # need one (PUT /api/v1/staff/second-factor-roles). Without this row every role would.
    staff_service.opt_out_of_second_factor(session, hospital_id=hospital.id, now=now)
    for pool, percent in (ratios or {}).items():
        session.add(PoolRatio(hospital_id=hospital.id, pool=pool, percent=percent))
    await session.flush()
    return hospital


async def make_level(
    session: AsyncSession, *, hospital: Hospital, code: str = "general", fee_fen: int = 0
) -> RegistrationLevel:
    level = RegistrationLevel(
        hospital_id=hospital.id, code=f"{code}{next(_counter)}", name=code, fee_fen=fee_fen
    )
    session.add(level)
    await session.flush()
    return level


async def make_department(
    session: AsyncSession,
    *,
    hospital: Hospital,
    name: str = "内科",
    min_age: int | None = None,
    max_age: int | None = None,
    sex: str | None = None,
) -> Department:
    department = Department(
        hospital_id=hospital.id,
        code=f"D{next(_counter)}",
        name=name,
        min_age_years=min_age,
        max_age_years=max_age,
        sex_restriction=sex,
    )
    session.add(department)
    await session.flush()
    return department


async def make_doctor(
    session: AsyncSession,
    *,
    hospital: Hospital,
    department: Department,
    level: RegistrationLevel,
    name: str = "王医生",
) -> Doctor:
    doctor = Doctor(
        hospital_id=hospital.id,
        department_id=department.id,
        level_id=level.id,
        code=f"DR{next(_counter)}",
        name=name,
        title="主任医师",
    )
    session.add(doctor)
    await session.flush()
    return doctor


async def make_session(
    session: AsyncSession,
    *,
    hospital: Hospital,
    department: Department,
    level: RegistrationLevel,
    doctor: Doctor | None = None,
    day: date,
    period: Period = Period.MORNING,
    start: time = time(8, 0),
    end: time = time(12, 0),
    capacity: int = 25,
    slot_minutes: int = 30,
    now: datetime,
) -> ClinicSession:
    shape = scheduling_service.SessionShape(
        department_id=department.id,
        doctor_id=doctor.id if doctor else None,
        level_id=level.id,
        date=day,
        period=period,
        start_time=start,
        end_time=end,
        capacity=capacity,
        slot_minutes=slot_minutes,
    )
    return await scheduling_service.create_session(
        session, hospital_id=hospital.id, shape=shape, template_id=None, is_extra=False, now=now
    )


async def make_patient(
    session: AsyncSession,
    *,
    hospital: Hospital,
    cipher: FieldCipher,
    now: datetime,
    name: str = "张三",
    birth: date = date(1990, 1, 1),
    sex: str = "M",
    account_phone: str | None = None,
    through: Channel | None = None,
) -> Patient:
    return await patient_service.register_patient(
        session,
        hospital_id=hospital.id,
        cipher=cipher,
        name=name,
        id_type=IdType.RESIDENT_ID,
        id_number=resident_id(birth=birth, sex=sex),
        phone=phone(),
        account_phone=account_phone,
        birth_date=None,
        sex=None,
        account_patients_max=5,
        today=now.date(),
        now=now,
        through=through,
    )


async def make_api_key(
    session: AsyncSession, *, hospital: Hospital, channel: Channel = Channel.APP, now: datetime
) -> str:
    key, _row = await staff_service.create_api_key(
        session, hospital_id=hospital.id, channel=channel, name=f"{channel.value} test", now=now
    )
    return key


async def make_staff(
    session: AsyncSession,
    *,
    hospital: Hospital,
    roles: list[Role],
    now: datetime,
    password: str = "secret-pass",
    doctor: Doctor | None = None,
) -> str:
    username = f"u{next(_counter)}"
    await staff_service.create_staff(
        session,
        hospital_id=hospital.id,
        username=username,
        display_name=username,
        password=password,
        roles=roles,
        now=now,
        doctor_id=doctor.id if doctor else None,
    )
    return username


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()
