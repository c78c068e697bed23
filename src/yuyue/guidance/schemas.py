"""What crosses HTTP for guidance (contract: POST /api/v1/guidance)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field


class GuidanceRequest(BaseModel):
    text: str = Field(
        min_length=1, max_length=500, description="The symptoms, in the patient's words"
    )
    age: int | None = Field(default=None, ge=0, le=130, description="Full years")
    sex: Literal["F", "M"] | None = None
    patient_id: uuid.UUID | None = Field(
        default=None,
        description="Takes age and sex from this patient; needs the caller's API key or token",
    )


class SuggestedDepartment(BaseModel):
    department_id: uuid.UUID
    name: str
    reason: str
    kind: str = Field(description="The department kind in the guidance knowledge")


class GuidanceRead(BaseModel):
    emergency: bool
    advice: str
    departments: list[SuggestedDepartment]
    action: Literal["call_120", "emergency_department", "crisis_line"] | None = Field(
        default=None,
        description="For an emergency: call 120, go to the emergency department, "
        "or call the psychological crisis line",
    )
