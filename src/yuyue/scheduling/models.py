"""Hospitals, departments, doctors, schedule templates and the bookable inventory."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id
from yuyue.scheduling.enums import Period, SessionStatus


class Hospital(Base):
    __tablename__ = "hospital"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(150), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime]


class Campus(Base):
    __tablename__ = "campus"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(150), default="")
    address: Mapped[str] = mapped_column(String(200), default="")


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (
        UniqueConstraint("hospital_id", "code"),
        CheckConstraint("sex_restriction IN ('M', 'F')", name="sex_restriction"),
        CheckConstraint(
            "min_age_years IS NULL OR max_age_years IS NULL OR min_age_years <= max_age_years",
            name="age_range",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), index=True)
    campus_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campus.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(150), default="")
    category: Mapped[str] = mapped_column(String(50), default="")
    category_en: Mapped[str] = mapped_column(String(80), default="")
    pinyin: Mapped[str] = mapped_column(String(50), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    location_en: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    what_to_bring: Mapped[str] = mapped_column(Text, default="")
    what_to_bring_en: Mapped[str] = mapped_column(Text, default="")
    # Last allowed age in full years is max_age_years (a paediatric clinic to 14 takes
    # children until their 15th birthday).
    min_age_years: Mapped[int | None] = mapped_column(SmallInteger)
    max_age_years: Mapped[int | None] = mapped_column(SmallInteger)
    sex_restriction: Mapped[str | None] = mapped_column(String(1))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RegistrationLevel(Base):
    __tablename__ = "registration_level"
    __table_args__ = (
        UniqueConstraint("hospital_id", "code"),
        CheckConstraint("fee_fen >= 0", name="fee_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80), default="")
    fee_fen: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(SmallInteger, default=0)


class Doctor(Base):
    __tablename__ = "doctor"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"), index=True)
    level_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registration_level.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    sex: Mapped[str | None] = mapped_column(String(1))
    title: Mapped[str] = mapped_column(String(50), default="")
    title_en: Mapped[str] = mapped_column(String(80), default="")
    specialty: Mapped[str] = mapped_column(Text, default="")
    specialty_en: Mapped[str] = mapped_column(Text, default="")
    # The room (诊室) new timetable rows of the doctor start with; each row keeps its own.
    room: Mapped[str] = mapped_column(String(100), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class BookingPolicy(Base):
    """The hospital's booking rules; a row with a department overrides the hospital's row."""

    __tablename__ = "booking_policy"
    __table_args__ = (
        Index(
            "uq_booking_policy_hospital_default",
            "hospital_id",
            unique=True,
            postgresql_where=text("department_id IS NULL"),
            sqlite_where=text("department_id IS NULL"),
        ),
        UniqueConstraint("hospital_id", "department_id"),
        CheckConstraint("release_days_ahead BETWEEN 0 AND 90", name="release_days_ahead"),
        CheckConstraint("hold_minutes BETWEEN 1 AND 1440", name="hold_minutes"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("department.id"))
    release_days_ahead: Mapped[int] = mapped_column(SmallInteger, default=7)
    release_time: Mapped[time] = mapped_column(Time, default=time(8, 0))
    advance_cutoff_time: Mapped[time] = mapped_column(Time, default=time(16, 0))
    same_day_booking: Mapped[bool] = mapped_column(Boolean, default=True)
    same_day_open_time: Mapped[time] = mapped_column(Time, default=time(7, 0))
    same_day_cutoff_minutes: Mapped[int] = mapped_column(SmallInteger, default=60)
    cancel_days_before: Mapped[int] = mapped_column(SmallInteger, default=1)
    cancel_deadline_time: Mapped[time] = mapped_column(Time, default=time(15, 0))
    hold_minutes: Mapped[int] = mapped_column(SmallInteger, default=15)
    limit_per_doctor_per_day: Mapped[int] = mapped_column(SmallInteger, default=1)
    limit_per_department_per_day: Mapped[int] = mapped_column(SmallInteger, default=1)
    limit_per_day: Mapped[int] = mapped_column(SmallInteger, default=2)
    limit_per_7_days: Mapped[int] = mapped_column(SmallInteger, default=3)
    limit_per_90_days: Mapped[int] = mapped_column(SmallInteger, default=5)
    limit_active: Mapped[int] = mapped_column(SmallInteger, default=3)
    account_patients_max: Mapped[int] = mapped_column(SmallInteger, default=5)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    waitlist_closes_minutes: Mapped[int] = mapped_column(
        SmallInteger, default=120, server_default=text("120")
    )
    waitlist_offer_minutes: Mapped[int] = mapped_column(
        SmallInteger, default=30, server_default=text("30")
    )
    waitlist_max_active: Mapped[int] = mapped_column(
        SmallInteger, default=3, server_default=text("3")
    )
    # On the visit day at this time the reserved pool (return visits, referrals, green
    # channel) is handed to on-site registration; null keeps it reserved all day.
    reserved_release_time: Mapped[time | None] = mapped_column(
        Time, default=time(7, 0), server_default=text("'07:00:00'")
    )


class PoolRatio(Base):
    """Share of a session's places for one pool; doctor rows beat department rows beat
    the hospital's."""

    __tablename__ = "pool_ratio"
    __table_args__ = (
        UniqueConstraint("hospital_id", "department_id", "doctor_id", "pool"),
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    pool: Mapped[str] = mapped_column(String(32))
    percent: Mapped[int] = mapped_column(SmallInteger)


class ScheduleTemplate(Base):
    __tablename__ = "schedule_template"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("capacity BETWEEN 1 AND 500", name="capacity"),
        CheckConstraint("slot_minutes BETWEEN 5 AND 240", name="slot_minutes"),
        CheckConstraint("start_time < end_time", name="hours"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), index=True)
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    level_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registration_level.id"))
    weekday: Mapped[int] = mapped_column(SmallInteger)
    period: Mapped[Period] = mapped_column(String(16))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column(SmallInteger, default=25)
    slot_minutes: Mapped[int] = mapped_column(SmallInteger, default=30)
    room: Mapped[str] = mapped_column(String(100), default="")
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ClinicSession(Base):
    __tablename__ = "clinic_session"
    __table_args__ = (
        UniqueConstraint("template_id", "date"),
        Index("ix_clinic_session_hospital_date", "hospital_id", "date"),
        Index("ix_clinic_session_department_date", "department_id", "date"),
        Index("ix_clinic_session_doctor_date", "doctor_id", "date"),
        CheckConstraint("status IN ('open', 'stopped')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"))
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("doctor.id"))
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedule_template.id"))
    level_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registration_level.id"))
    date: Mapped[date] = mapped_column(Date)
    period: Mapped[Period] = mapped_column(String(16))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(SmallInteger)
    capacity: Mapped[int] = mapped_column(SmallInteger)
    # Snapshot at generation: a later fee change does not reprice published sessions.
    fee_fen: Mapped[int] = mapped_column(Integer)
    room: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[SessionStatus] = mapped_column(String(16), default=SessionStatus.OPEN)
    is_extra: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    stopped_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class TimeSlot(Base):
    __tablename__ = "time_slot"
    __table_args__ = (UniqueConstraint("session_id", "ordinal"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic_session.id"))
    ordinal: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class SlotPool(Base):
    """Places of one slot for one pool. `taken` only moves by conditional UPDATE; the CHECK
    is the last line of defence against overbooking. Each pool owns the sequence numbers
    first_number .. first_number + capacity - 1."""

    __tablename__ = "slot_pool"
    __table_args__ = (
        CheckConstraint("taken >= 0", name="taken_not_negative"),
        CheckConstraint("taken <= capacity", name="taken_within_capacity"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        Index("ix_slot_pool_session_pool", "session_id", "pool"),
        UniqueConstraint("session_id", "first_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clinic_session.id"))
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("time_slot.id"), index=True)
    slot_ordinal: Mapped[int] = mapped_column(SmallInteger)
    # Copied from the slot so the claim's RETURNING carries all an answer shows.
    slot_start: Mapped[time] = mapped_column(Time)
    slot_end: Mapped[time] = mapped_column(Time)
    pool: Mapped[str] = mapped_column(String(32))
    capacity: Mapped[int] = mapped_column(SmallInteger)
    taken: Mapped[int] = mapped_column(SmallInteger, default=0)
    first_number: Mapped[int] = mapped_column(SmallInteger)
    # Closed when the clinic stops; the claim re-checks it on the row it locks, so a booking
    # racing a stop-clinic can never land in a stopped session.
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    is_extra: Mapped[bool] = mapped_column(Boolean, default=False)
