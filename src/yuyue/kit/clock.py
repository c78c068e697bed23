"""Every "now" in yuyue comes from one injectable clock so tests can travel in time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware UTC instant."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and what-if runs."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def epoch_seconds(clock: Clock) -> Callable[[], float]:
    """The clock's "now" as seconds since the epoch, cheaply: the system clock's is
    `time.time` (a tenth of the cost of building an aware datetime and converting it back,
    for the hot path's counters); any other clock's is its `now()`."""
    if type(clock) is SystemClock:
        return time.time
    return lambda: clock.now().timestamp()
