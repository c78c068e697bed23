"""What the visit-day routes take and answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yuyue.booking.states import AppointmentStatus
from yuyue.kit.schemas import Input
from yuyue.visits.states import PriorityClass, VisitStatus

Reason = Annotated[str, Field(min_length=1, max_length=500)]


class CheckInCreate(Input):
    """Either the scanned voucher token, or the 8-digit short code with the last four
    digits of the patient's mobile number."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token": "eyJhaWQiOi….Qm9v"}, {"code": "40217765", "phone_last4": "5678"}]
        }
    )

    token: Annotated[str | None, Field(max_length=2000)] = None
    code: Annotated[str | None, Field(pattern=r"^\d{8}$")] = None
    phone_last4: Annotated[str | None, Field(pattern=r"^\d{4}$")] = None

    @model_validator(mode="after")
    def _one_way(self) -> CheckInCreate:
        if (self.token is None) == (self.code is None) or (
            self.code is not None and self.phone_last4 is None
        ):
            raise ValueError("send either token, or code with phone_last4")
        return self


class DeskLookup(Input):
    """What the triage desk looks up: a voucher token, an 8-digit short code, an ID number
    or a mobile number. In the body, never in the address (logs and history keep those)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"q": "110101199003074514"}]})

    q: Annotated[str, Field(min_length=4, max_length=2000)]


class DeskCheckIn(Input):
    appointment_id: uuid.UUID


class QueueTicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    visit_id: uuid.UUID
    appointment_id: uuid.UUID
    session_id: uuid.UUID
    queue_number: int
    status: VisitStatus
    room: str
    department: str
    doctor: str | None
    slot_start: time
    position: int | None
    people_ahead: int | None
    estimated_wait_minutes: int | None
    priority: PriorityClass | None
    late: bool
    checked_in_at: datetime
    walk_in: bool = Field(
        False, description="a walk-in: queue_number is of the session's walk-in series (现1, 现2…)"
    )


class CheckInRead(BaseModel):
    already_checked_in: bool = Field(
        description="true when the voucher had been checked in before: nothing changed"
    )
    ticket: QueueTicketRead


class DeskMatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    phone_masked: str
    id_masked: str
    session_id: uuid.UUID
    department: str
    doctor: str | None
    slot_start: time
    queue_number: int
    appointment_status: AppointmentStatus
    visit_id: uuid.UUID | None
    visit_status: VisitStatus | None
    walk_in: bool = False


class WalkInCreate(Input):
    patient_id: uuid.UUID
    session_id: uuid.UUID
    slot_id: uuid.UUID | None = Field(None, description="omit to take the earliest free slot")
    priority: PriorityClass | None = None
    priority_reason: Annotated[str | None, Field(max_length=500)] = None
    payment_reference: Annotated[
        str | None,
        Field(max_length=100, description="the desk's receipt; required when the level has a fee"),
    ] = None


class PriorityUpdate(Input):
    priority: PriorityClass | None = Field(description="null clears the priority")
    reason: Reason


class MoveRequest(Input):
    before: uuid.UUID | None = Field(None, description="put the visit directly before this one")
    after: uuid.UUID | None = Field(None, description="put the visit directly after this one")
    reason: Reason

    @model_validator(mode="after")
    def _one_target(self) -> MoveRequest:
        if (self.before is None) == (self.after is None):
            raise ValueError("send exactly one of before and after")
        return self


class ReturnVisitUpdate(Input):
    needed: bool = True


class QueueRowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    visit_id: uuid.UUID
    queue_number: int
    patient_name: str
    status: VisitStatus
    position: int | None
    slot_start: time
    priority: PriorityClass | None
    priority_reason: str | None
    late: bool
    walk_in: bool
    call_count: int
    return_visit_needed: bool
    checked_in_at: datetime
    called_at: datetime | None


class QueueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    session_id: uuid.UUID
    date: date
    room: str
    department: str
    doctor: str | None
    current: list[QueueRowRead]
    waiting: list[QueueRowRead]
    finished: list[QueueRowRead]
    estimated_minutes_per_patient: int


class BoardRoomRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    session_id: uuid.UUID
    room: str
    doctor: str | None
    current: list[QueueRowRead]
    next: list[QueueRowRead]


class VisitPolicyRead(BaseModel):
    check_in_minutes_before: int
    late_grace_minutes: int
    batch_slots: int
    elderly_age: int
    priority_classes: list[PriorityClass] = Field(description="classes in force, highest first")
    estimate_min_samples: int
    code_attempts_max: int
    code_lockout_minutes: int
    come_back_ahead: int
    travel_minutes: int = Field(description='0: no "leave home" notice')


class VisitPolicyUpdate(Input):
    """Fields left out keep their value."""

    check_in_minutes_before: Annotated[int | None, Field(ge=0, le=1440)] = None
    late_grace_minutes: Annotated[int | None, Field(ge=0, le=240)] = None
    batch_slots: Annotated[int | None, Field(ge=1, le=20)] = None
    elderly_age: Annotated[int | None, Field(ge=50, le=120)] = None
    priority_classes: Annotated[list[PriorityClass] | None, Field(max_length=10)] = None
    estimate_min_samples: Annotated[int | None, Field(ge=1, le=100)] = None
    code_attempts_max: Annotated[int | None, Field(ge=1, le=50)] = None
    code_lockout_minutes: Annotated[int | None, Field(ge=1, le=1440)] = None
    come_back_ahead: Annotated[int | None, Field(ge=0, le=50)] = None
    travel_minutes: Annotated[int | None, Field(ge=0, le=600)] = None

    @model_validator(mode="after")
    def _classes_once(self) -> VisitPolicyUpdate:
        if self.priority_classes is not None and len(set(self.priority_classes)) != len(
            self.priority_classes
        ):
            raise ValueError("priority_classes lists a class twice")
        return self
