"""The scheduling vocabulary other modules share: a session's period and status, and the
channels patients book through. No SQLAlchemy here, so pure rules can use them."""

from __future__ import annotations

from enum import StrEnum


class Period(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"


class SessionStatus(StrEnum):
    OPEN = "open"
    STOPPED = "stopped"


class Channel(StrEnum):
    APP = "app"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    WEB = "web"
    KIOSK = "kiosk"
    PHONE = "phone"
    COMMUNITY = "community"
    WINDOW = "window"
