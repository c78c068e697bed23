"""What crosses HTTP for the no-show policy and appeals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yuyue.attendance import rules
from yuyue.attendance.models import AppealStatus
from yuyue.kit.schemas import Input


class NoShowPolicyRead(BaseModel):
    threshold: Annotated[int, Field(description="no-shows within the window that make a ban")]
    window_days: Annotated[int, Field(description="the rolling window, in days")]
    ban_days: Annotated[
        list[int],
        Field(description="ban lengths in days: first ban, second within the window, …"),
    ]
    grace_minutes: Annotated[
        int, Field(description="minutes after the session ends before a booking is a no-show")
    ]


class NoShowPolicyUpdate(Input):
    """Fields left out keep their value."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"threshold": 3, "window_days": 90, "ban_days": [90, 180, 360]}]
        }
    )

    threshold: Annotated[int | None, Field(ge=1, le=20)] = None
    window_days: Annotated[int | None, Field(ge=1, le=730)] = None
    ban_days: list[int] | None = None
    grace_minutes: Annotated[int | None, Field(ge=0, le=1440)] = None

    @field_validator("ban_days")
    @classmethod
    def _lengths(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else list(rules.check_ban_days(value))


class AppealDecision(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"decision": "reject", "note": "病假证明不清晰"}]}
    )

    decision: Literal["accept", "reject"]
    note: Annotated[
        str | None,
        Field(max_length=500, description="told to the patient; required when rejecting"),
    ] = None


class AppealBan(BaseModel):
    reason: str
    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None


class AppealRead(BaseModel):
    id: uuid.UUID
    entry_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    text: str
    status: AppealStatus
    decided_by: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None
    ban: AppealBan
