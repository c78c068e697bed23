"""The hospital's wall clock. Instants are stored as aware UTC datetimes; clinic sessions
have local dates and times in the hospital's time zone. Every context converts with these."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def local_today(now: datetime, tz: str) -> date:
    """The date the hospital's calendar shows at `now`."""
    return now.astimezone(ZoneInfo(tz)).date()


def local_instant(day: date, at: time, tz: str) -> datetime:
    """The aware UTC instant of the hospital's wall-clock `at` on `day`."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def format_local(instant: datetime, tz: str) -> str:
    """The instant as the hospital's clock reads it, to the minute (`2026-11-23 07:00`)."""
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def age_on(birth_date: date, day: date) -> int:
    """Full years (周岁) on ``day``; someone born on 29 February turns a year older on 1 March."""
    if day < birth_date:
        raise ValueError(f"{day} is before the birth date {birth_date}")
    had_birthday = (day.month, day.day) >= (birth_date.month, birth_date.day)
    return day.year - birth_date.year - (0 if had_birthday else 1)
