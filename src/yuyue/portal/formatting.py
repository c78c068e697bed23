"""How dates, times and money read on the patient pages, in either language."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from yuyue.kit import i18n

_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def money(fen: int, locale: str) -> str:
    if fen == 0:
        return i18n.translate("page.free", locale)
    return f"¥{fen // 100}.{fen % 100:02d}"


def day(value: date, locale: str) -> str:
    if locale == "en":
        return f"{_WEEKDAYS_EN[value.weekday()]} {value.day} {_MONTHS_EN[value.month - 1]}"
    return f"{value.month}月{value.day}日 周{_WEEKDAYS_ZH[value.weekday()]}"


def clock(value: time) -> str:
    return value.strftime("%H:%M")


def local(instant: datetime, timezone: str, locale: str) -> str:
    moment = instant.astimezone(ZoneInfo(timezone))
    return f"{day(moment.date(), locale)} {moment:%H:%M}"
