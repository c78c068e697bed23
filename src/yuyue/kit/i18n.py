"""One translation layer for every sentence a person reads (zh-CN default, English available).

Catalogues are plain Python dictionaries keyed by a stable message id; values are
`str.format` templates. Keeping them in code means no compile step and a test can check
that every id exists in every language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Final

DEFAULT_LOCALE: Final = "zh-CN"
LOCALES: Final = ("zh-CN", "en")

_CATALOGUES: dict[str, dict[str, str]] = {"zh-CN": {}, "en": {}}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """Adds messages as ``{id: (zh_cn, en)}``; each context registers its own."""
    for key, (zh, en) in messages.items():
        _CATALOGUES["zh-CN"][key] = zh
        _CATALOGUES["en"][key] = en


def negotiate(accept_language: str | None) -> str:
    """Picks zh-CN or en from an Accept-Language header, zh-CN when unsure."""
    if not accept_language:
        return DEFAULT_LOCALE
    best: tuple[float, str] | None = None
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = "en" if tag.startswith("en") else "zh-CN" if tag.startswith("zh") else None
        if locale and (best is None or quality > best[0]):
            best = (quality, locale)
    return best[1] if best else DEFAULT_LOCALE


def translate(key: str, locale: str = DEFAULT_LOCALE, /, **values: object) -> str:
    catalogue = _CATALOGUES.get(locale, _CATALOGUES[DEFAULT_LOCALE])
    template = catalogue.get(key) or _CATALOGUES[DEFAULT_LOCALE].get(key) or key
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def message_ids(locale: str) -> set[str]:
    return set(_CATALOGUES[locale])


def catalogue(locale: str) -> Mapping[str, str]:
    """Every registered sentence of one language, read-only (for checks over all of them)."""
    return MappingProxyType(_CATALOGUES[locale])


# --- dates and times as a person reads them --------------------------------------------------

_WEEKDAYS_ZH: Final = "一二三四五六日"
_WEEKDAYS_EN: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_WALL_CLOCK: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}))?")


def format_day(day: date, locale: str, *, year: bool = False) -> str:
    """ "12月6日 周日" / "Sun 6 Dec": the one way pages and sentences write a day; with the
    year ("2027年5月1日 周六" / "Sat 1 May 2027") for a day that may be months away."""
    if locale == "en":
        written = f"{_WEEKDAYS_EN[day.weekday()]} {day.day} {_MONTHS_EN[day.month - 1]}"
        return f"{written} {day.year}" if year else written
    written = f"{day.month}月{day.day}日 周{_WEEKDAYS_ZH[day.weekday()]}"
    return f"{day.year}年{written}" if year else written


def format_wall_clock(moment: datetime, locale: str, *, year: bool = False) -> str:
    """A local date and time ("12月6日 周日 16:00" / "Sun 6 Dec 16:00"), read as it is:
    the caller has already moved it into the hospital's zone."""
    return f"{format_day(moment.date(), locale, year=year)} {moment:%H:%M}"


def localise_wall_clock(value: str, locale: str, *, year: bool = False) -> str:
    """A local date ("2026-12-06") or date and time ("2026-12-06 16:00") written the
    reader's way; anything else unchanged."""
    found = _WALL_CLOCK.fullmatch(value)
    if found is None:
        return value
    yyyy, mm, dd, hour, minute = found.groups()
    try:
        if hour is None:
            return format_day(date(int(yyyy), int(mm), int(dd)), locale, year=year)
        moment = datetime(int(yyyy), int(mm), int(dd), int(hour), int(minute))
    except ValueError:
        return value
    return format_wall_clock(moment, locale, year=year)
