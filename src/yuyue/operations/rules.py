"""Maintenance mode: what a notice may say, and the refusal a booking gets meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yuyue.kit import i18n
from yuyue.kit.errors import ValidationFailed, YuyueError

MESSAGE_MAX = 300


@dataclass(frozen=True, slots=True)
class Notice:
    message: str
    message_en: str
    started_at: datetime
    started_by: str

    def text(self, locale: str) -> str:
        return self.message_en if locale == "en" and self.message_en else self.message


class UnderMaintenance(YuyueError):
    """New bookings are paused; check-in, the queue and the screens keep working."""

    code = "maintenance"
    status = 503

    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        return i18n.translate("error.maintenance", locale, notice=self.notice.text(locale))

    def extensions(self) -> dict[str, Any]:
        return {"since": self.notice.started_at.isoformat()}


def check_messages(message: str, message_en: str) -> tuple[str, str]:
    """The notice patients read: required in Chinese, optional in English, one line each."""
    cleaned = " ".join(message.split())
    cleaned_en = " ".join(message_en.split())
    errors = []
    if not cleaned:
        errors.append({"field": "message", "message": "required"})
    for field, text in (("message", cleaned), ("message_en", cleaned_en)):
        if len(text) > MESSAGE_MAX:
            errors.append({"field": field, "message": f"at most {MESSAGE_MAX} characters"})
    if errors:
        raise ValidationFailed(errors)
    return cleaned, cleaned_en


i18n.register(
    {
        "title.maintenance": ("系统维护中", "Under maintenance"),
        "error.maintenance": (
            "系统维护中，暂停新的预约：{notice}。已有的预约照常就诊，签到和排队不受影响；本次请求未做任何更改。",
            "New bookings are paused for maintenance: {notice}. Existing appointments stand, "
            "and check-in and the queue work as usual; nothing was changed.",
        ),
    }
)
