"""A waitlist entry's states. No SQLAlchemy here, so the pure rules can use them."""

from __future__ import annotations

from enum import StrEnum


class WaitlistStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LAPSED = "lapsed"
    LEFT = "left"
    CLOSED = "closed"
    SKIPPED = "skipped"


# Entries still in line or holding an offer; one per patient and session (an index in models.py).
ACTIVE_ENTRY_STATUSES = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)
