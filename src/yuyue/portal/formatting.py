"""How dates, times and money read on the patient pages, in either language."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from yuyue.kit import i18n


def money(fen: int, locale: str) -> str:
    if fen == 0:
        return i18n.translate("page.free", locale)
    return f"¥{fen // 100}.{fen % 100:02d}"


def day(value: date, locale: str) -> str:
    # The same words as the refusals' sentences, so a page never shows a day two ways.
    return i18n.format_day(value, locale)


def clock(value: time) -> str:
    return value.strftime("%H:%M")


def local(instant: datetime, timezone: str, locale: str) -> str:
    return i18n.format_wall_clock(instant.astimezone(ZoneInfo(timezone)), locale)
