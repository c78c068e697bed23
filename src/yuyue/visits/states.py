"""A visit's states and the priority classes of the line. No SQLAlchemy here, so the pure
rules can use them."""

from __future__ import annotations

from enum import StrEnum


class VisitStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    IN_CONSULTATION = "in_consultation"
    # 过号: called and not there; back in the line by the late rule, and can be recalled.
    SKIPPED = "skipped"
    FINISHED = "finished"


class PriorityClass(StrEnum):
    EMERGENCY = "emergency"
    MILITARY = "military"
    DISABLED = "disabled"
    ELDERLY = "elderly"
    # 回诊: back with test results the doctor asked for earlier today.
    RETURN_VISIT = "return_visit"


# Classes in force by default, highest first.
DEFAULT_PRIORITY_ORDER = ("emergency", "military", "disabled", "elderly", "return_visit")

# The line: visits waiting to be called, in `position` order.
IN_LINE = (VisitStatus.WAITING, VisitStatus.SKIPPED)
