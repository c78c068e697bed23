"""What crosses HTTP for scheduling: departments, doctors, sessions, slots, templates."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yuyue.kit.schemas import Input
from yuyue.scheduling.enums import Period, SessionStatus
from yuyue.scheduling.models import RegistrationLevel


class Named(BaseModel):
    id: uuid.UUID
    name: str


class DepartmentRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str
    category: str
    pinyin: str
    location: str
    campus: str | None
    min_age_years: int | None
    max_age_years: int | None
    sex_restriction: str | None
    description: str
    what_to_bring: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0195f3c1-0000-7000-8000-000000000001",
                    "code": "PED",
                    "name": "儿科",
                    "name_en": "Paediatrics",
                    "category": "妇儿",
                    "pinyin": "ek",
                    "location": "门诊楼3层A区",
                    "campus": "本部",
                    "min_age_years": None,
                    "max_age_years": 14,
                    "sex_restriction": None,
                    "description": "儿童常见病、多发病诊治",
                    "what_to_bring": "身份证或户口本、医保卡、既往病历",
                }
            ]
        }
    )


class LevelRead(BaseModel):
    code: str
    name: str
    name_en: str
    fee: Annotated[int, Field(description="Registration fee in fen (1 yuan = 100 fen)")]


def pick(zh: str, en: str, locale: str) -> str:
    """The English text for an English reader when there is one, else the Chinese."""
    return en if locale == "en" and en else zh


def level_read(level: RegistrationLevel, locale: str) -> LevelRead:
    return LevelRead(
        code=level.code,
        name=pick(level.name, level.name_en, locale),
        name_en=level.name_en,
        fee=level.fee_fen,
    )


class DoctorBrief(BaseModel):
    id: uuid.UUID
    name: str
    title: str


class DoctorRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    sex: str | None
    title: str
    title_en: str
    department: Named
    level: LevelRead
    specialty: str


class SessionRead(BaseModel):
    id: uuid.UUID
    date: date
    period: Period
    start: time
    end: time
    department: Named
    doctor: DoctorBrief | None = Field(
        description="null for a department session without a named doctor"
    )
    level: LevelRead
    fee: Annotated[int, Field(description="Registration fee in fen")]
    status: SessionStatus
    is_extra: bool
    capacity: int
    remaining: Annotated[int, Field(description="Places left for the caller's channel")]
    bookable_now: Annotated[
        bool,
        Field(
            description="The caller's channel can book it at this moment: open, inside the "
            "window this channel books in (release, advance cut-off, same-day registration) "
            "and a place left. The same rules booking enforces."
        ),
    ]
    opens_at: Annotated[
        datetime | None,
        Field(
            description="When not bookable now: the instant (UTC) it next becomes bookable for "
            "this channel (the release, or same-day registration after the advance cut-off); "
            "null when bookable now or when no such instant is known (stopped, over, or no "
            "place left for the channel)."
        ),
    ]
    booking_opens_at: Annotated[datetime, Field(description="The release (remote channels)")]
    booking_closes_at: Annotated[
        datetime, Field(description="Last moment a remote channel can book (same-day cut-off)")
    ]
    stop_reason: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0195f3c1-0000-7000-8000-0000000000aa",
                    "date": "2026-11-25",
                    "period": "morning",
                    "start": "08:00:00",
                    "end": "12:00:00",
                    "department": {
                        "id": "0195f3c1-0000-7000-8000-000000000001",
                        "name": "心血管内科",
                    },
                    "doctor": {
                        "id": "0195f3c1-0000-7000-8000-000000000002",
                        "name": "王建国",
                        "title": "主任医师",
                    },
                    "level": {
                        "code": "chief",
                        "name": "主任医师",
                        "name_en": "Chief physician",
                        "fee": 8000,
                    },
                    "fee": 8000,
                    "status": "open",
                    "is_extra": False,
                    "capacity": 25,
                    "remaining": 7,
                    "bookable_now": False,
                    "opens_at": "2026-11-24T23:00:00Z",
                    "booking_opens_at": "2026-11-18T00:00:00Z",
                    "booking_closes_at": "2026-11-25T03:00:00Z",
                    "stop_reason": None,
                }
            ]
        }
    )


class SlotRead(BaseModel):
    """One time slot. `bookable_now` and `opens_at` are given per slot: the session's answer
    for this slot's places (a slot with no place left is not bookable and has no opening)."""

    id: uuid.UUID
    start: time
    end: time
    remaining: Annotated[
        int, Field(description="Places left in this slot for the caller's channel")
    ]
    bookable_now: bool
    opens_at: datetime | None


class TemplateCreate(Input):
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None = None
    level_code: str | None = Field(None, description="defaults to the doctor's level")
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday")]
    period: Period
    start: time | None = Field(None, description="defaults to the period's usual hours")
    end: time | None = None
    capacity: Annotated[int, Field(ge=1, le=500)] = 25
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    room: Annotated[str, Field(max_length=100)] = ""
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _hours(self) -> TemplateCreate:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("end must be after start")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_until must not be before valid_from")
        return self


class TemplateUpdate(Input):
    """A timetable row's new shape; its department, doctor and weekday stay."""

    level_code: Annotated[str, Field(min_length=1, max_length=32)]
    period: Period
    start: time | None = Field(None, description="defaults to the period's usual hours")
    end: time | None = None
    capacity: Annotated[int, Field(ge=1, le=500)] = 25
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    room: Annotated[str, Field(max_length=100)] = ""

    @model_validator(mode="after")
    def _hours(self) -> TemplateUpdate:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("end must be after start")
        return self


class DoctorUpdate(Input):
    level_code: Annotated[str, Field(min_length=1, max_length=32)]
    room: Annotated[
        str | None, Field(max_length=100, description="the room of all the doctor's rows")
    ] = None


class TemplateRead(BaseModel):
    id: uuid.UUID
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None
    weekday: int
    period: Period
    start: time
    end: time
    capacity: int
    slot_minutes: int


class GenerateRequest(Input):
    start: date | None = Field(None, description="defaults to today")
    days: Annotated[int, Field(ge=1, le=60)] = 14


class GenerateReport(BaseModel):
    created: int
    rebuilt: int
    unchanged: int
    kept_with_bookings: int


class ExtraSessionCreate(Input):
    department_id: uuid.UUID
    doctor_id: uuid.UUID | None = None
    level_code: str | None = None
    date: date
    period: Period
    start: time | None = None
    end: time | None = None
    capacity: Annotated[int, Field(ge=1, le=500)] = 25
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    room: Annotated[str, Field(max_length=100)] = ""


class ExtraPlacesCreate(Input):
    count: Annotated[int, Field(ge=1, le=100)]
    pool: str = Field("appointment", description="onsite, reserved, appointment or a channel name")
    slot_id: uuid.UUID | None = Field(None, description="defaults to the last slot")


class StopClinicRequest(Input):
    reason: Annotated[str, Field(min_length=2, max_length=500, examples=["医生临时外出会诊"])]
    substitute_session_id: uuid.UUID | None = Field(
        None,
        description="替诊: a session of the same day, department, registration level and fee "
        "that takes over the bookings (numbers and times kept where it has them free); "
        "bookings it has no room for are cancelled",
    )


class MovedBooking(BaseModel):
    from_appointment_id: uuid.UUID
    # None in a preview: nothing was booked.
    appointment_id: uuid.UUID | None
    sequence_number: int
    slot_start: time
    number_kept: bool
    time_kept: bool


class StopClinicResult(BaseModel):
    session_id: uuid.UUID
    status: SessionStatus
    cancelled_appointments: list[uuid.UUID]
    moved_appointments: list[MovedBooking] = []
    substitute_session_id: uuid.UUID | None = None
    # True for `stop/preview`: what stopping would do now; nothing was changed.
    preview: bool = False


class SubstituteRead(BaseModel):
    """A session that could take over a stopped clinic's bookings."""

    session_id: uuid.UUID
    date: date
    period: str
    start_time: time
    end_time: time
    doctor_id: uuid.UUID | None
    doctor_name: str | None
    free_places: int


class PoolRatiosUpdate(Input):
    department_id: uuid.UUID | None = None
    doctor_id: uuid.UUID | None = None
    ratios: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(
        examples=[{"appointment": 60, "onsite": 30, "reserved": 10}]
    )


class BookingPolicyRead(BaseModel):
    department_id: uuid.UUID | None
    release_days_ahead: int
    release_time: time
    advance_cutoff_time: time
    same_day_booking: bool
    same_day_open_time: time
    same_day_cutoff_minutes: int
    cancel_days_before: int
    cancel_deadline_time: time
    hold_minutes: int
    limit_per_doctor_per_day: int
    limit_per_department_per_day: int
    limit_per_day: int
    limit_per_7_days: int
    limit_per_90_days: int
    limit_active: int
    account_patients_max: int
    waitlist_enabled: bool
    waitlist_closes_minutes: int
    waitlist_offer_minutes: int
    waitlist_max_active: int
    reserved_release_time: time | None


class BookingPolicyUpdate(Input):
    """Fields left out keep their value; a department row starts as a copy of the
    hospital's and then overrides it."""

    department_id: uuid.UUID | None = None
    release_days_ahead: Annotated[int | None, Field(ge=0, le=90)] = None
    release_time: time | None = None
    advance_cutoff_time: time | None = None
    same_day_booking: bool | None = None
    same_day_open_time: time | None = None
    same_day_cutoff_minutes: Annotated[int | None, Field(ge=0, le=600)] = None
    cancel_days_before: Annotated[int | None, Field(ge=0, le=30)] = None
    cancel_deadline_time: time | None = None
    hold_minutes: Annotated[int | None, Field(ge=1, le=1440)] = None
    limit_per_doctor_per_day: Annotated[int | None, Field(ge=1, le=50)] = None
    limit_per_department_per_day: Annotated[int | None, Field(ge=1, le=50)] = None
    limit_per_day: Annotated[int | None, Field(ge=1, le=50)] = None
    limit_per_7_days: Annotated[int | None, Field(ge=1, le=100)] = None
    limit_per_90_days: Annotated[int | None, Field(ge=1, le=500)] = None
    limit_active: Annotated[int | None, Field(ge=1, le=100)] = None
    account_patients_max: Annotated[int | None, Field(ge=1, le=20)] = None
    waitlist_enabled: bool | None = None
    waitlist_closes_minutes: Annotated[
        int | None, Field(ge=0, le=10080, description="minutes before the session starts")
    ] = None
    waitlist_offer_minutes: Annotated[int | None, Field(ge=1, le=1440)] = None
    waitlist_max_active: Annotated[int | None, Field(ge=1, le=20)] = None
    reserved_release_time: Annotated[
        time | None,
        Field(description="visit-day time the reserved pool goes to on-site registration"),
    ] = None


# --- the hospital's structure (the scheduler's) -------------------------------------------
# Shapes only; what makes a department or doctor valid (a code unique in the hospital, a
# name, a sensible age range) is scheduling.rules', answered as `invalid_structure` or
# `code_taken`.

_Text = Annotated[str, Field(max_length=2000)]
_Age = Annotated[int, Field(ge=0, le=150)]


class DepartmentCreate(Input):
    code: Annotated[str, Field(max_length=32, description="unique in the hospital")]
    name: Annotated[str, Field(max_length=100)]
    name_en: _Text = ""
    location: _Text = ""
    location_en: _Text = ""
    what_to_bring: _Text = ""
    what_to_bring_en: _Text = ""
    min_age_years: _Age | None = None
    max_age_years: _Age | None = Field(
        None, description="the last age in full years the department sees"
    )
    sex_restriction: Literal["M", "F"] | None = None
    campus_id: uuid.UUID | None = None


class DepartmentUpdate(Input):
    """Only the fields sent change; send null to clear an age, sex or campus."""

    code: Annotated[str, Field(max_length=32)] | None = None
    name: Annotated[str, Field(max_length=100)] | None = None
    name_en: _Text | None = None
    location: _Text | None = None
    location_en: _Text | None = None
    what_to_bring: _Text | None = None
    what_to_bring_en: _Text | None = None
    min_age_years: _Age | None = None
    max_age_years: _Age | None = None
    sex_restriction: Literal["M", "F"] | None = None
    campus_id: uuid.UUID | None = None


class DepartmentAdminRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    name_en: str
    location: str
    location_en: str
    what_to_bring: str
    what_to_bring_en: str
    min_age_years: int | None
    max_age_years: int | None
    sex_restriction: str | None
    campus_id: uuid.UUID | None
    active: bool


class DoctorCreate(Input):
    code: Annotated[str, Field(max_length=32, description="empty: one is given")] = ""
    name: Annotated[str, Field(max_length=50)]
    title: Annotated[str, Field(max_length=50)] = ""
    title_en: Annotated[str, Field(max_length=80)] = ""
    department_id: uuid.UUID
    level_code: Annotated[str, Field(min_length=1, max_length=32)]
    room: Annotated[str, Field(max_length=100, description="诊室 of new rows")] = ""


class DoctorEdit(Input):
    """Only the fields sent change."""

    code: Annotated[str, Field(max_length=32)] | None = None
    name: Annotated[str, Field(max_length=50)] | None = None
    title: Annotated[str, Field(max_length=50)] | None = None
    title_en: Annotated[str, Field(max_length=80)] | None = None
    department_id: uuid.UUID | None = None
    level_code: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    room: Annotated[str, Field(max_length=100)] | None = None


class DoctorAdminRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    title: str
    title_en: str
    room: str
    department_id: uuid.UUID
    level_code: str
    active: bool
