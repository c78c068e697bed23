"""The hospital's wall clock: local dates and instants, and full years of age.

Instants are written in hospital time (Asia/Shanghai, UTC+8, no daylight saving)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from yuyue.kit.localtime import age_on, format_local, local_instant, local_today

TZ = "Asia/Shanghai"
SHANGHAI = ZoneInfo(TZ)


def case(id_: str, *values: object) -> Any:
    return pytest.param(*values, id=id_)


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class TestLocalToday:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            case("utc-evening-is-next-morning", utc(2026, 11, 22, 16, 0), date(2026, 11, 23)),
            case("just-before-local-midnight", utc(2026, 11, 22, 15, 59), date(2026, 11, 22)),
            case("aware-local-instant", sh(2026, 11, 23, 0, 0), date(2026, 11, 23)),
        ],
    )
    def test_the_date_is_the_hospitals(self, now: datetime, expected: date) -> None:
        assert local_today(now, TZ) == expected

    def test_another_zone_gives_another_date(self) -> None:
        assert local_today(utc(2026, 11, 22, 16, 0), "Europe/London") == date(2026, 11, 22)


class TestLocalInstants:
    @pytest.mark.parametrize(
        ("day", "at", "expected"),
        [
            case("08:00-is-00:00Z", date(2026, 11, 16), time(8, 0), utc(2026, 11, 16, 0, 0)),
            case("07:00-is-23:00Z-before", date(2026, 11, 23), time(7, 0), utc(2026, 11, 22, 23)),
            case("16:00-is-08:00Z", date(2026, 11, 22), time(16, 0), utc(2026, 11, 22, 8, 0)),
        ],
    )
    def test_hospital_wall_clock_becomes_aware_utc(
        self, day: date, at: time, expected: datetime
    ) -> None:
        instant = local_instant(day, at, TZ)

        assert instant == expected
        assert instant.tzinfo is UTC

    @pytest.mark.parametrize(
        ("instant", "expected"),
        [
            case("utc-midnight", utc(2026, 11, 16, 0, 0), "2026-11-16 08:00"),
            case("crosses-midnight", utc(2026, 11, 22, 23, 0), "2026-11-23 07:00"),
            case("seconds-dropped", sh(2026, 11, 23, 11, 0, 59), "2026-11-23 11:00"),
        ],
    )
    def test_instant_is_shown_in_hospital_time_to_the_minute(
        self, instant: datetime, expected: str
    ) -> None:
        assert format_local(instant, TZ) == expected


class TestAgeOn:
    @pytest.mark.parametrize(
        ("birth", "day", "expected"),
        [
            case("published-example", date(1949, 12, 31), date(2024, 6, 1), 74),
            case("birthday-tomorrow", date(2011, 11, 24), date(2026, 11, 23), 14),
            case("birthday-today", date(2011, 11, 23), date(2026, 11, 23), 15),
            case("birthday-yesterday", date(2011, 11, 22), date(2026, 11, 23), 15),
            case("born-today", date(2026, 11, 23), date(2026, 11, 23), 0),
            case("leap-day-on-feb-28", date(2012, 2, 29), date(2027, 2, 28), 14),
            case("leap-day-on-mar-1", date(2012, 2, 29), date(2027, 3, 1), 15),
            case("leap-day-in-leap-year", date(2012, 2, 29), date(2028, 2, 29), 16),
        ],
    )
    def test_age_in_completed_years(self, birth: date, day: date, expected: int) -> None:
        assert age_on(birth, day) == expected

    def test_day_before_birth_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="before the birth date"):
            age_on(date(2024, 6, 2), date(2024, 6, 1))
