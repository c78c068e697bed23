"""Maintenance mode: started and ended by an administrator, audited, read by every booking
path through a short-lived cache (a change reaches every process within `NOTICE_SECONDS`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.flights import Flights
from yuyue.operations import rules
from yuyue.operations.models import Maintenance
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

NOTICE_SECONDS = 2.0


def _notice(row: Maintenance) -> rules.Notice:
    return rules.Notice(row.message, row.message_en, row.started_at, row.started_by)


async def current(session: AsyncSession, *, hospital_id: uuid.UUID) -> rules.Notice | None:
    row = await session.get(Maintenance, hospital_id, populate_existing=True)
    return _notice(row) if row is not None else None


async def start(
    session: AsyncSession, *, actor: Actor, message: str, message_en: str, now: datetime
) -> rules.Notice:
    """Pauses new bookings with a notice (or changes the notice of a pause under way)."""
    require_staff(actor, Role.ADMIN)
    message, message_en = rules.check_messages(message, message_en)
    row = await session.get(Maintenance, actor.hospital_id, with_for_update=True)
    before = None
    if row is None:
        row = Maintenance(
            hospital_id=actor.hospital_id,
            message=message,
            message_en=message_en,
            started_at=now,
            started_by=actor.audit_name,
        )
        session.add(row)
    else:
        before = {"message": row.message, "message_en": row.message_en}
        row.message, row.message_en = message, message_en
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="maintenance_start" if before is None else "maintenance_notice",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before=before,
        after={"message": message, "message_en": message_en},
        now=now,
    )
    forget(actor.hospital_id)
    return _notice(row)


async def end(session: AsyncSession, *, actor: Actor, now: datetime) -> bool:
    """Resumes bookings; False when none were paused."""
    require_staff(actor, Role.ADMIN)
    ended = await session.execute(
        delete(Maintenance)
        .where(Maintenance.hospital_id == actor.hospital_id)
        .returning(Maintenance.message)
    )
    message = ended.scalar_one_or_none()
    forget(actor.hospital_id)
    if message is None:
        return False
    record_audit(
        session,
        actor=actor,
        action="maintenance_end",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before={"message": message},
        after=None,
        now=now,
    )
    return True


# --- the booking paths' view -------------------------------------------------------------

_cache: dict[uuid.UUID, tuple[float, rules.Notice | None]] = {}
# The look-up under way per hospital: when the memory goes stale at the release peak, every
# booking in flight would otherwise ask the database the same question at once. A failed
# look-up is no answer: those who waited for it ask for themselves.
_asking: Flights[uuid.UUID, rules.Notice | None] = Flights(share_failures=False)


def forget(hospital_id: uuid.UUID) -> None:
    _cache.pop(hospital_id, None)
    _asking.forget(hospital_id)


def cached(hospital_id: uuid.UUID) -> tuple[bool, rules.Notice | None]:
    """(known, notice) from memory: known is False when the database must be asked."""
    entry = _cache.get(hospital_id)
    if entry is None or time.monotonic() - entry[0] > NOTICE_SECONDS:
        return False, None
    return True, entry[1]


async def ensure_bookable(
    read: Callable[[], AbstractAsyncContextManager[AsyncSession]], *, hospital_id: uuid.UUID
) -> None:
    """Refuses a new booking while the hospital's bookings are paused. From memory on the
    hot path; the database is asked at most every `NOTICE_SECONDS` per process."""
    known, notice = cached(hospital_id)
    if not known:
        notice = await _ask(read, hospital_id)
    if notice is not None:
        raise rules.UnderMaintenance(notice)


async def _ask(
    read: Callable[[], AbstractAsyncContextManager[AsyncSession]], hospital_id: uuid.UUID
) -> rules.Notice | None:
    """Reads the notice in force, once for all the callers that ask meanwhile. A caller
    whose look-up failed or was abandoned leaves the others to ask for themselves."""

    async def look_up() -> rules.Notice | None:
        async with read() as session:
            notice = await current(session, hospital_id=hospital_id)
        _cache[hospital_id] = (time.monotonic(), notice)
        return notice

    return await _asking.run(hospital_id, look_up)
