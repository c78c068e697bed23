"""Announcements: posted and withdrawn by staff (audited), read by every patient page, the
kiosk and the waiting-room screens.

Texting the patients a notice concerns happens in the transaction that posts it: one outbox
message per patient with an active appointment in its scope and days, recorded in
`announcement_recipient`, so a notice is texted to nobody twice however often the fan-out
runs, and a post that rolls back texts nobody. Delivery (SMS, the account's inbox and
email, as for every message) happens after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking import facts as booking_facts
from yuyue.booking import service as booking_service
from yuyue.kit.cache import TtlCache
from yuyue.kit.errors import NotFound
from yuyue.kit.live import LiveBus
from yuyue.notifications import service as notifications
from yuyue.notifications.enums import MessageKind
from yuyue.operations.announcements import rules
from yuyue.operations.models import Announcement, AnnouncementRecipient
from yuyue.scheduling import service as scheduling
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

# Who may post and withdraw notices (administrators always may): the outpatient office,
# which also stops clinics.
POST_ROLES = (Role.SCHEDULER,)
# Pages read the notices in force from memory; a post or withdrawal in this process is
# seen at once, one in another process within this many seconds.
CACHE_SECONDS = 5.0
STAFF_LIST_LIMIT = 200


def posted(row: Announcement) -> rules.Posted:
    return rules.Posted(
        id=row.id,
        kind=rules.AnnouncementKind(row.kind),
        severity=rules.Severity(row.severity),
        title=row.title,
        title_en=row.title_en,
        body=row.body,
        body_en=row.body_en,
        scope=rules.Scope(
            campus_id=row.campus_id,
            department_id=row.department_id,
            session_id=row.session_id,
            day=row.day,
        ),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        created_at=row.created_at,
        withdrawn_at=row.withdrawn_at,
        withdrawn_by=row.withdrawn_by,
        notified=row.notified,
    )


def _audit_values(notice: rules.Posted) -> dict[str, object]:
    scope = notice.scope
    return {
        "kind": notice.kind.value,
        "severity": notice.severity.value,
        "title": notice.title,
        "scope": scope.level.value,
        "campus_id": str(scope.campus_id) if scope.campus_id else None,
        "department_id": str(scope.department_id) if scope.department_id else None,
        "session_id": str(scope.session_id) if scope.session_id else None,
        "day": scope.day.isoformat() if scope.day else None,
        "starts_at": notice.starts_at.isoformat(),
        "ends_at": notice.ends_at.isoformat(),
        "notified": notice.notified,
    }


async def _resolve_scope(
    session: AsyncSession, *, hospital_id: uuid.UUID, draft: rules.Draft, tz: str
) -> rules.Draft:
    """The scope's campus, department or session must be this hospital's."""
    scope = draft.scope
    if scope.campus_id is not None and not await scheduling.campus_in_hospital(
        session, hospital_id=hospital_id, campus_id=scope.campus_id
    ):
        raise rules.InvalidAnnouncement(field="campus_id", problem="unknown_campus")
    if scope.department_id is not None and not await scheduling.department_in_hospital(
        session, hospital_id=hospital_id, department_id=scope.department_id
    ):
        raise rules.InvalidAnnouncement(field="department_id", problem="unknown_department")
    if scope.session_id is not None:
        try:
            info = await booking_facts.session_info(
                session, hospital_id=hospital_id, session_id=scope.session_id
            )
        except NotFound:
            raise rules.InvalidAnnouncement(field="session_id", problem="unknown_session") from None
        return rules.with_session(draft, department_id=info.department_id, day=info.date, tz=tz)
    return draft


async def find_replayed(
    session: AsyncSession, *, actor: Actor, idempotency_key: str
) -> rules.Posted | None:
    """The notice an earlier post with the same Idempotency-Key made, if any."""
    row = await session.scalar(
        select(Announcement).where(
            Announcement.hospital_id == actor.hospital_id,
            Announcement.idempotency_key == idempotency_key,
        )
    )
    return posted(row) if row is not None else None


async def post(
    session: AsyncSession,
    *,
    actor: Actor,
    draft: rules.Draft,
    notify_patients: bool,
    now: datetime,
    idempotency_key: str | None = None,
) -> rules.Posted:
    """Posts a notice (and texts the patients it concerns when asked). A retry with the
    same `idempotency_key` returns the first notice and changes nothing."""
    require_staff(actor, *POST_ROLES)
    if idempotency_key is not None:
        replayed = await find_replayed(session, actor=actor, idempotency_key=idempotency_key)
        if replayed is not None:
            return replayed
    tz = await scheduling.hospital_timezone(session, actor.hospital_id)
    draft = rules.check_draft(draft, now=now, tz=tz)
    draft = await _resolve_scope(session, hospital_id=actor.hospital_id, draft=draft, tz=tz)
    assert draft.starts_at is not None
    if notify_patients:
        # Refused before anything is written.
        rules.notify_days(draft.scope, draft.starts_at, draft.ends_at, tz)
    scope = draft.scope
    row = Announcement(
        hospital_id=actor.hospital_id,
        kind=draft.kind.value,
        severity=draft.severity.value,
        title=draft.title,
        title_en=draft.title_en,
        body=draft.body,
        body_en=draft.body_en,
        campus_id=scope.campus_id,
        department_id=scope.department_id,
        session_id=scope.session_id,
        day=scope.day,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        notified=0,
        idempotency_key=idempotency_key,
        created_by=actor.audit_name,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    if notify_patients:
        await text_patients(session, announcement_id=row.id, hospital_id=actor.hospital_id, now=now)
    notice = posted(row)
    record_audit(
        session,
        actor=actor,
        action="announcement_post",
        entity_type="announcement",
        entity_id=row.id,
        before=None,
        after=_audit_values(notice),
        now=now,
    )
    forget(actor.hospital_id)
    return notice


async def text_patients(
    session: AsyncSession, *, announcement_id: uuid.UUID, hospital_id: uuid.UUID, now: datetime
) -> int:
    """Queues one message for each patient the notice concerns who has not had one yet;
    returns how many were queued. Running it again queues nobody twice."""
    row = await session.scalar(
        select(Announcement)
        .where(Announcement.id == announcement_id, Announcement.hospital_id == hospital_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound(what="announcement")
    notice = posted(row)
    tz = await scheduling.hospital_timezone(session, hospital_id)
    first, last = rules.notify_days(notice.scope, notice.starts_at, notice.ends_at, tz)
    scope = notice.scope
    concerned = await booking_service.patients_with_visits(
        session,
        hospital_id=hospital_id,
        first_day=first,
        last_day=last,
        campus_id=scope.campus_id,
        department_id=scope.department_id if scope.session_id is None else None,
        session_id=scope.session_id,
    )
    told = set(
        (
            await session.scalars(
                select(AnnouncementRecipient.patient_id).where(
                    AnnouncementRecipient.announcement_id == announcement_id
                )
            )
        ).all()
    )
    payload = {
        "announcement_id": str(row.id),
        "title": row.title,
        "title_en": row.title_en,
        "body": row.body,
        "body_en": row.body_en,
    }
    queued = 0
    for patient_id in concerned:
        if patient_id in told:
            continue
        session.add(
            AnnouncementRecipient(announcement_id=row.id, patient_id=patient_id, created_at=now)
        )
        notifications.enqueue(
            session,
            hospital_id=hospital_id,
            kind=MessageKind.ANNOUNCEMENT,
            patient_id=patient_id,
            appointment_id=None,
            payload=payload,
            now=now,
        )
        queued += 1
    row.notified += queued
    await session.flush()
    return queued


async def withdraw(
    session: AsyncSession, *, actor: Actor, announcement_id: uuid.UUID, now: datetime
) -> rules.Posted:
    """Takes a notice off every page at once. Withdrawing it again changes nothing."""
    require_staff(actor, *POST_ROLES)
    row = await session.scalar(
        select(Announcement)
        .where(Announcement.id == announcement_id, Announcement.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound(what="announcement")
    if row.withdrawn_at is not None:
        return posted(row)
    row.withdrawn_at, row.withdrawn_by = now, actor.audit_name
    await session.flush()
    notice = posted(row)
    record_audit(
        session,
        actor=actor,
        action="announcement_withdraw",
        entity_type="announcement",
        entity_id=row.id,
        before={"withdrawn_at": None},
        after={"withdrawn_at": now.isoformat(), "title": row.title},
        now=now,
    )
    forget(actor.hospital_id)
    return notice


async def in_force(
    session: AsyncSession, *, hospital_id: uuid.UUID, now: datetime
) -> list[rules.Posted]:
    """The hospital's notices not withdrawn and not over at `now` (some may start later:
    pages filter with `rules.shown_on` at their own moment)."""
    rows = await session.scalars(
        select(Announcement)
        .where(
            Announcement.hospital_id == hospital_id,
            Announcement.withdrawn_at.is_(None),
            Announcement.ends_at > now,
        )
        .order_by(Announcement.starts_at.desc())
    )
    return [posted(row) for row in rows]


async def all_notices(
    session: AsyncSession, *, actor: Actor, limit: int = STAFF_LIST_LIMIT
) -> list[rules.Posted]:
    """Every notice, newest first, withdrawn and ended ones too: for staff."""
    require_staff(actor, *POST_ROLES)
    rows = await session.scalars(
        select(Announcement)
        .where(Announcement.hospital_id == actor.hospital_id)
        .order_by(Announcement.created_at.desc())
        .limit(limit)
    )
    return [posted(row) for row in rows]


async def place_of(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    campus_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    day: date | None = None,
) -> rules.Place:
    """The place a page (or a channel app's screen) is about, completed upwards: a session
    brings its department and day, a department its campus."""
    if session_id is not None:
        info = await booking_facts.session_info(
            session, hospital_id=hospital_id, session_id=session_id
        )
        department_id, day = info.department_id, day or info.date
    campuses = [campus_id]
    if department_id is not None:
        found = await scheduling.department_campuses(
            session, hospital_id=hospital_id, department_ids=[department_id]
        )
        if department_id not in found:
            raise NotFound(what="department")
        campuses.append(found[department_id])
    return rules.Place.of(
        campuses=campuses, departments=[department_id], sessions=[session_id], days=[day]
    )


# --- the pages' view ---------------------------------------------------------------------

_cache: TtlCache[uuid.UUID, list[rules.Posted]] = TtlCache(CACHE_SECONDS)


def forget(hospital_id: uuid.UUID) -> None:
    _cache.forget(hospital_id)


async def cached_in_force(
    read: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    *,
    hospital_id: uuid.UUID,
    now: datetime,
) -> list[rules.Posted]:
    """`in_force` from memory, asking the database at most every `CACHE_SECONDS`. Every
    patient page reads this, so a busy hour costs one query per process every few seconds."""
    found = _cache.get(hospital_id)
    if found is None:
        async with read() as session:
            found = await in_force(session, hospital_id=hospital_id, now=now)
        _cache.put(hospital_id, found)
    return found


async def publish_change(
    bus: LiveBus, *, hospital_id: uuid.UUID, announcement_id: uuid.UUID
) -> None:
    """After the commit: open kiosks and waiting-room screens read their notices again."""
    await bus.publish(
        rules.live_channel(hospital_id), {"kind": "announcement", "id": str(announcement_id)}
    )
