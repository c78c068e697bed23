"""Reading the audit trail: who did what to which record and when, for the people allowed
to read it. Filters by person (the actor), record (type and id), action, kind (changes, or
the reads of patient data: look-ups, records shown, unmaskings) and time; newest first, a
page at a time. Exporting it is itself audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.staff.models import AuditEntry
from yuyue.staff.rules import AUDIT_READERS, READ_ACTIONS_PREFIX, Actor, ReadKind, require_staff
from yuyue.staff.service import record_audit

PAGE_SIZE = 50
# The kinds of entry the viewer filters by: changes (every action but reads), every read of
# patient data, or one kind of read.
CHANGES = "changes"
READS = "reads"
KINDS: tuple[str, ...] = (CHANGES, READS, *(kind.value for kind in ReadKind))
# An export beyond this asks for a narrower filter rather than a file nobody opens.
EXPORT_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to look for; every part optional. `person` matches part of the actor's audit
    name (its display name or id); `action` a whole action or its prefix (`staff.`)."""

    person: str = ""
    entity_type: str = ""
    entity_id: uuid.UUID | None = None
    action: str = ""
    since: datetime | None = None
    until: datetime | None = None
    # One of KINDS, or "" for every entry.
    kind: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "person": self.person or None,
            "entity_type": self.entity_type or None,
            "entity_id": str(self.entity_id) if self.entity_id else None,
            "action": self.action or None,
            "kind": self.kind or None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    page: int
    has_next: bool


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(hospital_id: uuid.UUID, query: AuditQuery) -> Select[AuditEntry]:
    statement = select(AuditEntry).where(AuditEntry.hospital_id == hospital_id)
    if query.person:
        statement = statement.where(
            func.lower(AuditEntry.actor).like(_like(query.person.lower()), escape="\\")
        )
    if query.entity_type:
        statement = statement.where(AuditEntry.entity_type == query.entity_type)
    if query.entity_id is not None:
        statement = statement.where(AuditEntry.entity_id == query.entity_id)
    if query.action:
        statement = statement.where(
            (AuditEntry.action == query.action)
            | AuditEntry.action.like(query.action.rstrip(".") + ".%")
        )
    reads = AuditEntry.action.like(READ_ACTIONS_PREFIX + "%")
    if query.kind == CHANGES:
        statement = statement.where(~reads)
    elif query.kind == READS:
        statement = statement.where(reads)
    elif query.kind:
        statement = statement.where(AuditEntry.action == query.kind)
    if query.since is not None:
        statement = statement.where(AuditEntry.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEntry.at < query.until)
    return statement.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


async def search(
    session: AsyncSession, *, actor: Actor, query: AuditQuery, page: int = 1
) -> AuditPage:
    """One page of the entries that match, newest first."""
    require_staff(actor, *AUDIT_READERS)
    page = max(1, page)
    rows = (
        await session.scalars(
            _filtered(actor.hospital_id, query).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)
        )
    ).all()
    return AuditPage(list(rows[:PAGE_SIZE]), page, len(rows) > PAGE_SIZE)


async def export(
    session: AsyncSession,
    *,
    actor: Actor,
    query: AuditQuery,
    now: datetime,
) -> list[AuditEntry]:
    """Every entry that matches (up to EXPORT_LIMIT), newest first; the export is recorded
    in the trail with its filter, so reading the trail in bulk leaves a trace too."""
    require_staff(actor, *AUDIT_READERS)
    rows = list(
        (await session.scalars(_filtered(actor.hospital_id, query).limit(EXPORT_LIMIT))).all()
    )
    record_audit(
        session,
        actor=actor,
        action="audit.exported",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before=None,
        after={"filter": query.to_json(), "rows": len(rows)},
        now=now,
    )
    return rows


async def entity_types(session: AsyncSession, *, actor: Actor) -> list[str]:
    """The kinds of record the hospital's trail holds, for the filter's choice."""
    require_staff(actor, *AUDIT_READERS)
    found = await session.scalars(
        select(AuditEntry.entity_type)
        .distinct()
        .where(AuditEntry.hospital_id == actor.hospital_id)
        .order_by(AuditEntry.entity_type)
    )
    return [str(kind) for kind in found.all()]
