"""Handing the visit day's unused reserved places to on-site registration.

Reserved places (return visits, referrals, the green channel) are kept back from every
channel; at the policy's time on the visit day (default 07:00) whatever is left of them goes
to the patients standing in the hospital. Each pool row owns a range of sequence numbers,
so the hand-over relabels the rows: the numbers, and any place already taken, stay put.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.localtime import local_today
from yuyue.scheduling import rules, service
from yuyue.scheduling.enums import SessionStatus
from yuyue.scheduling.models import ClinicSession, SlotPool
from yuyue.staff.rules import Actor
from yuyue.staff.service import record_audit


async def release_reserved_places(
    session: AsyncSession, *, actor: Actor, now: datetime
) -> list[uuid.UUID]:
    """Relabels today's reserved pool rows of open sessions whose release time has come;
    returns the sessions that gained on-site places. Running it again changes nothing."""
    timezone = await service.hospital_timezone(session, actor.hospital_id)
    today = local_today(now, timezone)
    default_time, by_department = await service.reserved_release_times(session, actor.hospital_id)
    candidates = (
        await session.execute(
            select(ClinicSession.id, ClinicSession.department_id)
            .where(
                ClinicSession.hospital_id == actor.hospital_id,
                ClinicSession.date == today,
                ClinicSession.status == SessionStatus.OPEN,
                ClinicSession.id.in_(
                    select(SlotPool.session_id).where(SlotPool.pool == rules.RESERVED)
                ),
            )
            .order_by(ClinicSession.start_time, ClinicSession.id)
        )
    ).all()
    due = [
        session_id
        for session_id, department_id in candidates
        if rules.reserved_release_due(
            by_department.get(department_id, default_time),
            day=today,
            now=now,
            tz=timezone,
        )
    ]
    for session_id in due:
        moved = await session.execute(
            update(SlotPool)
            .where(SlotPool.session_id == session_id, SlotPool.pool == rules.RESERVED)
            .values(pool=rules.ONSITE)
            .execution_options(synchronize_session=False)
        )
        record_audit(
            session,
            actor=actor,
            action="release_reserved",
            entity_type="session",
            entity_id=session_id,
            before={"pool": rules.RESERVED},
            after={"pool": rules.ONSITE, "rows": moved.rowcount},  # type: ignore[attr-defined]
            now=now,
        )
    return due
