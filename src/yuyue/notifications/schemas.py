"""What crosses HTTP for message templates and notification settings."""

from __future__ import annotations

import uuid
from datetime import time

from pydantic import BaseModel, Field

from yuyue.notifications.enums import MessageKind


class MessageTemplateRead(BaseModel):
    kind: MessageKind
    locale: str
    department_id: uuid.UUID | None
    subject: str
    body: str
    custom: bool = Field(description="false: the built-in default wording")
    placeholders: list[str] = Field(description="the {names} this kind of message can use")


class MessageTemplateUpdate(BaseModel):
    kind: MessageKind
    locale: str = Field(examples=["zh-CN", "en"])
    department_id: uuid.UUID | None = Field(
        default=None, description="only for this department; none: for every department"
    )
    subject: str = Field(max_length=200, description="inbox title and email subject")
    body: str = Field(max_length=2000, description="the text; SMS sends this")


class NotificationSettingsRead(BaseModel):
    reminder_offsets_hours: list[int]
    quiet_hours_start: time
    quiet_hours_end: time
    timezone: str
    custom: bool


class NotificationSettingsUpdate(BaseModel):
    reminder_offsets_hours: list[int] = Field(
        description="hours before the visit's slot start, e.g. [168, 72, 24]", max_length=20
    )
    quiet_hours_start: time = Field(description="hospital local time, e.g. 22:00")
    quiet_hours_end: time = Field(description="e.g. 08:00; equal to the start: no quiet hours")
