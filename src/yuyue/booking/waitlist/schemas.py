"""What crosses HTTP for the waitlist."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from yuyue.booking.waitlist.states import WaitlistStatus
from yuyue.kit.schemas import Input
from yuyue.scheduling.enums import Period


class WaitlistJoin(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"patient_id": "0195f3c1-0000-7000-8000-000000000101"}]}
    )

    patient_id: uuid.UUID


class WaitlistSession(BaseModel):
    id: uuid.UUID
    date: date
    period: Period
    start: time
    end: time
    department: str
    doctor: str | None


class WaitlistOffer(BaseModel):
    appointment_id: uuid.UUID
    expires_at: Annotated[
        datetime | None, Field(description="the offer's deadline while it is open")
    ]


class WaitlistEntryRead(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    status: WaitlistStatus
    status_text: Annotated[str, Field(description="the status in the caller's language")]
    reason: Annotated[
        str | None,
        Field(description="why the entry was skipped or closed (a refusal code)"),
    ]
    channel: str
    session: WaitlistSession
    position: Annotated[int | None, Field(description="1 = next in line; only while waiting")]
    offer: WaitlistOffer | None
    created_at: datetime
    updated_at: datetime
