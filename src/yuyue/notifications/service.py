"""Writes outbox rows inside the caller's transaction, and the reads the web pages make of
what was delivered (the in-app inbox, the demo phone). Delivery itself is in `delivery.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.cache import TtlCache
from yuyue.kit.errors import NotFound
from yuyue.kit.rekey import SealedColumn
from yuyue.notifications import rules
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import (
    Delivery,
    DeliveryStatus,
    DemoPhoneMessage,
    InboxItem,
    MessageTemplate,
    NotificationSettings,
    OutboxMessage,
    OutboxStatus,
)
from yuyue.notifications.templates import DEFAULTS, default_template
from yuyue.patients.models import Account
from yuyue.scheduling.models import Department, Hospital
from yuyue.staff.enums import Role
from yuyue.staff.rules import Actor, require_staff
from yuyue.staff.service import record_audit

# Who sets the wording of messages and when reminders go: the outpatient office's
# schedulers, who set the booking, visit and no-show rules too (and admins).
SETTINGS_ROLES = (Role.SCHEDULER,)


def sealed_columns() -> list[SealedColumn]:
    """The number a sign-in code goes to, sealed on the message (for `yuyue keys rotate`).
    The code itself (`code_cipher` in the payload) lives for minutes and is not re-sealed."""
    return [SealedColumn(OutboxMessage, "to_phone_cipher")]


def enqueue(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    kind: MessageKind,
    patient_id: uuid.UUID | None,
    appointment_id: uuid.UUID | None,
    payload: dict[str, Any],
    now: datetime,
    account_id: uuid.UUID | None = None,
    to_phone_cipher: str | None = None,
    available_at: datetime | None = None,
) -> None:
    """Adds a message to the outbox; it is delivered after the caller's transaction commits.

    Payload fields ending in `_cipher` hold FieldCipher ciphertexts (a sign-in code as
    `code_cipher`): they are decrypted only to fill the template at send time."""
    session.add(
        OutboxMessage(
            hospital_id=hospital_id,
            kind=kind.value,
            patient_id=patient_id,
            appointment_id=appointment_id,
            account_id=account_id,
            to_phone_cipher=to_phone_cipher,
            payload=payload,
            status=OutboxStatus.PENDING,
            available_at=available_at or now,
            created_at=now,
        )
    )


# --- settings and reminders ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    reminder_offsets_hours: tuple[int, ...]
    quiet: rules.QuietHours
    timezone: str
    # False while the hospital has never saved its own settings.
    saved: bool = False


# Booking reads the settings for every booked appointment; they change by an admin's hand,
# and this process forgets its copy at once when it saves them (others within the TTL).
_SETTINGS_CACHE: TtlCache[uuid.UUID, DeliverySettings] = TtlCache(30.0)


async def load_delivery_settings(
    session: AsyncSession, *, hospital_id: uuid.UUID, use_cache: bool = False
) -> DeliverySettings:
    if use_cache:
        cached = _SETTINGS_CACHE.get(hospital_id)
        if cached is not None:
            return cached
    row = (
        await session.execute(
            select(Hospital.timezone, NotificationSettings)
            .outerjoin(NotificationSettings, NotificationSettings.hospital_id == Hospital.id)
            .where(Hospital.id == hospital_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(what="hospital")
    timezone, stored = row
    settings = (
        DeliverySettings(
            tuple(stored.reminder_offsets_hours),
            rules.QuietHours(stored.quiet_hours_start, stored.quiet_hours_end),
            timezone,
            saved=True,
        )
        if stored is not None
        else DeliverySettings(
            rules.DEFAULT_REMINDER_OFFSETS_HOURS, rules.DEFAULT_QUIET_HOURS, timezone
        )
    )
    _SETTINGS_CACHE.put(hospital_id, settings)
    return settings


async def save_notification_settings(
    session: AsyncSession,
    *,
    actor: Actor,
    reminder_offsets_hours: Sequence[int],
    quiet_hours_start: time,
    quiet_hours_end: time,
    now: datetime,
) -> DeliverySettings:
    """Sets the hospital's reminder offsets and quiet hours (scheduler or admin); the
    change is audited. Reminders already queued keep their times."""
    require_staff(actor, *SETTINGS_ROLES)
    offsets = rules.check_offsets(reminder_offsets_hours)
    start = quiet_hours_start.replace(second=0, microsecond=0, tzinfo=None)
    end = quiet_hours_end.replace(second=0, microsecond=0, tzinfo=None)
    row = await session.scalar(
        select(NotificationSettings)
        .where(NotificationSettings.hospital_id == actor.hospital_id)
        .with_for_update()
    )
    before = await load_delivery_settings(session, hospital_id=actor.hospital_id)
    if row is None:
        row = NotificationSettings(hospital_id=actor.hospital_id)
        session.add(row)
    row.reminder_offsets_hours = offsets
    row.quiet_hours_start = start
    row.quiet_hours_end = end
    row.updated_at = now
    await session.flush()
    _SETTINGS_CACHE.forget(actor.hospital_id)
    after = await load_delivery_settings(session, hospital_id=actor.hospital_id)
    record_audit(
        session,
        actor=actor,
        action="update_notification_settings",
        entity_type="hospital",
        entity_id=actor.hospital_id,
        before=_settings_json(before),
        after=_settings_json(after),
        now=now,
    )
    return after


def _settings_json(settings: DeliverySettings) -> dict[str, Any]:
    return {
        "reminder_offsets_hours": list(settings.reminder_offsets_hours),
        "quiet_hours_start": settings.quiet.start.strftime("%H:%M"),
        "quiet_hours_end": settings.quiet.end.strftime("%H:%M"),
        "custom": settings.saved,
    }


async def notification_settings(session: AsyncSession, *, actor: Actor) -> DeliverySettings:
    require_staff(actor, *SETTINGS_ROLES)
    return await load_delivery_settings(session, hospital_id=actor.hospital_id)


async def schedule_reminders(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    patient_id: uuid.UUID,
    appointment_id: uuid.UUID,
    visit_date: date,
    slot_start: time,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queues the reminders of a booked appointment: the first, held back until it is
    due, carrying the times of the others (`reminder_payload`)."""
    settings = await load_delivery_settings(session, hospital_id=hospital_id, use_cache=True)
    times = _reminder_times(settings, visit_date, slot_start, now)
    if times:
        enqueue(
            session,
            hospital_id=hospital_id,
            kind=MessageKind.REMINDER,
            patient_id=patient_id,
            appointment_id=appointment_id,
            payload={**payload, **reminder_payload(appointment_id, times[1:])},
            now=now,
            available_at=times[0],
        )


def reminder_payload(appointment_id: uuid.UUID, later: Sequence[datetime]) -> dict[str, Any]:
    """A reminder's payload. One reminder of an appointment is in the outbox at a time, and
    it carries when the ones after it are due: the next is written when it goes out
    (`delivery`), so a booking writes one reminder row instead of one per offset, and a
    cancellation withdraws the one that is there."""
    payload: dict[str, Any] = {"appointment_id": str(appointment_id)}
    if later:
        payload[LATER] = [at.astimezone(UTC).isoformat() for at in later]
    return payload


def later_reminders(payload: dict[str, Any] | None) -> list[datetime]:
    """The reminder times a reminder's payload carries (`reminder_payload`)."""
    later = (payload or {}).get(LATER)
    if not isinstance(later, list):
        return []
    return [datetime.fromisoformat(at) for at in later if isinstance(at, str)]


def enqueue_next_reminder(session: AsyncSession, *, sent: OutboxMessage, now: datetime) -> None:
    """In the transaction that sends a reminder out: the next one, if any is still to come.
    Times already past (the worker was away) are skipped, not sent in a burst."""
    upcoming = [at for at in later_reminders(sent.payload) if at > now]
    if not upcoming or sent.appointment_id is None:
        return
    payload = {k: v for k, v in (sent.payload or {}).items() if k != LATER}
    payload.update(reminder_payload(sent.appointment_id, upcoming[1:]))
    enqueue(
        session,
        hospital_id=sent.hospital_id,
        kind=MessageKind.REMINDER,
        patient_id=sent.patient_id,
        appointment_id=sent.appointment_id,
        payload=payload,
        now=now,
        available_at=upcoming[0],
    )


LATER = "later"


def cached_reminder_times(
    *, hospital_id: uuid.UUID, visit_date: date, slot_start: time, now: datetime
) -> list[datetime] | None:
    """`reminder_times_for` when the hospital's settings are in memory, else None."""
    settings = _SETTINGS_CACHE.get(hospital_id)
    if settings is None:
        return None
    return _reminder_times(settings, visit_date, slot_start, now)


def _reminder_times(
    settings: DeliverySettings, visit_date: date, slot_start: time, now: datetime
) -> list[datetime]:
    visit_start = datetime.combine(visit_date, slot_start, tzinfo=ZoneInfo(settings.timezone))
    return list(
        rules.reminder_times(
            visit_start=visit_start.astimezone(UTC),
            offsets_hours=settings.reminder_offsets_hours,
            now=now,
            quiet=settings.quiet,
            tz=settings.timezone,
        )
    )


async def reminder_times_for(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    visit_date: date,
    slot_start: time,
    now: datetime,
) -> list[datetime]:
    """When a booked appointment's reminders fall due (quiet hours respected); for callers
    that write the reminder rows themselves, such as booking's hot path."""
    settings = await load_delivery_settings(session, hospital_id=hospital_id, use_cache=True)
    return _reminder_times(settings, visit_date, slot_start, now)


# --- templates ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateView:
    kind: MessageKind
    locale: str
    department_id: uuid.UUID | None
    subject: str
    body: str
    # False for the built-in default (no row in the hospital's table).
    custom: bool
    placeholders: tuple[str, ...]


async def list_templates(session: AsyncSession, *, actor: Actor) -> list[TemplateView]:
    """Every kind in every language (the hospital's wording or the default), then the
    department-specific ones."""
    require_staff(actor, *SETTINGS_ROLES)
    rows = (
        await session.scalars(
            select(MessageTemplate).where(MessageTemplate.hospital_id == actor.hospital_id)
        )
    ).all()
    own = {(r.kind, r.locale, r.department_id): r for r in rows}
    views: list[TemplateView] = []
    for (kind, locale), (subject, body) in DEFAULTS.items():
        row = own.pop((kind.value, locale, None), None)
        views.append(
            TemplateView(
                kind,
                locale,
                None,
                row.subject if row else subject,
                row.body if row else body,
                row is not None,
                tuple(sorted(rules.PLACEHOLDERS[kind])),
            )
        )
    for (kind_value, locale, department_id), row in sorted(
        own.items(), key=lambda item: (item[0][0], item[0][1], str(item[0][2]))
    ):
        kind = MessageKind(kind_value)
        views.append(
            TemplateView(
                kind,
                locale,
                department_id,
                row.subject,
                row.body,
                True,
                tuple(sorted(rules.PLACEHOLDERS[kind])),
            )
        )
    return views


async def save_template(
    session: AsyncSession,
    *,
    actor: Actor,
    kind: MessageKind,
    locale: str,
    department_id: uuid.UUID | None,
    subject: str,
    body: str,
    now: datetime,
) -> TemplateView:
    """Sets the hospital's wording of a kind of message in a language, for all departments
    or for one (scheduler or admin); placeholders the renderer does not know are refused
    and nothing is saved. The change is audited with the wording before and after."""
    require_staff(actor, *SETTINGS_ROLES)
    rules.check_locale(locale)
    rules.check_template(kind, subject=subject, body=body)
    rules.check_template_scope(kind, for_department=department_id is not None)
    await _check_department(session, actor=actor, department_id=department_id)
    row = await _own_template(
        session,
        hospital_id=actor.hospital_id,
        kind=kind,
        locale=locale,
        department_id=department_id,
        lock=True,
    )
    before = _template_json(row)
    if row is None:
        row = MessageTemplate(
            hospital_id=actor.hospital_id,
            kind=kind.value,
            locale=locale,
            department_id=department_id,
        )
        session.add(row)
    row.subject = subject.strip()
    row.body = body.strip()
    row.updated_at = now
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="save_message_template",
        entity_type="department" if department_id is not None else "hospital",
        entity_id=department_id or actor.hospital_id,
        before=before,
        after=_template_json(row),
        now=now,
    )
    return TemplateView(
        kind,
        locale,
        department_id,
        row.subject,
        row.body,
        True,
        tuple(sorted(rules.PLACEHOLDERS[kind])),
    )


async def remove_template(
    session: AsyncSession,
    *,
    actor: Actor,
    kind: MessageKind,
    locale: str,
    department_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Drops the hospital's own wording of a kind of message in a language, for one
    department (its messages then use the hospital's wording) or for all (the default
    wording); audited. False, and nothing changed, when there was none."""
    require_staff(actor, *SETTINGS_ROLES)
    rules.check_locale(locale)
    await _check_department(session, actor=actor, department_id=department_id)
    row = await _own_template(
        session,
        hospital_id=actor.hospital_id,
        kind=kind,
        locale=locale,
        department_id=department_id,
        lock=True,
    )
    if row is None:
        return False
    before = _template_json(row)
    await session.delete(row)
    await session.flush()
    record_audit(
        session,
        actor=actor,
        action="remove_message_template",
        entity_type="department" if department_id is not None else "hospital",
        entity_id=department_id or actor.hospital_id,
        before=before,
        after=None,
        now=now,
    )
    return True


class TemplateSource(StrEnum):
    """Where the wording in force comes from."""

    DEPARTMENT = "department"
    HOSPITAL = "hospital"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class TemplateInForce:
    subject: str
    body: str
    source: TemplateSource


async def template_in_force(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    kind: MessageKind,
    locale: str,
    department_id: uuid.UUID | None,
) -> TemplateInForce:
    """The wording a message of this kind in this language is rendered with, for an
    appointment of this department (None: one without a department): the department's own,
    else the hospital's, else the default."""
    rows = (
        await session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.hospital_id == hospital_id,
                MessageTemplate.kind == kind.value,
                MessageTemplate.locale == locale,
                or_(
                    MessageTemplate.department_id.is_(None),
                    MessageTemplate.department_id == department_id,
                ),
            )
        )
    ).all()
    own = next((r for r in rows if r.department_id is not None), None)
    if own is not None:
        return TemplateInForce(own.subject, own.body, TemplateSource.DEPARTMENT)
    hospital = next(iter(rows), None)
    if hospital is not None:
        return TemplateInForce(hospital.subject, hospital.body, TemplateSource.HOSPITAL)
    subject, body = default_template(kind, locale)
    return TemplateInForce(subject, body, TemplateSource.DEFAULT)


async def _check_department(
    session: AsyncSession, *, actor: Actor, department_id: uuid.UUID | None
) -> None:
    if department_id is None:
        return
    owner = await session.scalar(
        select(Department.hospital_id).where(Department.id == department_id)
    )
    if owner != actor.hospital_id:
        raise NotFound(what="department")


async def _own_template(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    kind: MessageKind,
    locale: str,
    department_id: uuid.UUID | None,
    lock: bool = False,
) -> MessageTemplate | None:
    scope = (
        MessageTemplate.department_id.is_(None)
        if department_id is None
        else MessageTemplate.department_id == department_id
    )
    query = select(MessageTemplate).where(
        MessageTemplate.hospital_id == hospital_id,
        MessageTemplate.kind == kind.value,
        MessageTemplate.locale == locale,
        scope,
    )
    return await session.scalar(query.with_for_update() if lock else query)


def _template_json(row: MessageTemplate | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"kind": row.kind, "locale": row.locale, "subject": row.subject, "body": row.body}


async def withdraw_reminders(session: AsyncSession, *, appointment_id: uuid.UUID) -> None:
    """Reminders of an appointment that is no longer booked are never sent: those not yet
    fanned out and their deliveries not yet claimed are withdrawn here, in the caller's
    transaction; the worker re-checks the appointment before sending any claimed one."""
    reminders = select(OutboxMessage.id).where(
        OutboxMessage.appointment_id == appointment_id,
        OutboxMessage.kind == MessageKind.REMINDER.value,
    )
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.appointment_id == appointment_id,
            OutboxMessage.kind == MessageKind.REMINDER.value,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.WITHDRAWN)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.message_id.in_(reminders), Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.WITHDRAWN)
        .execution_options(synchronize_session=False)
    )


async def set_account_preferences(
    session: AsyncSession, *, account_id: uuid.UUID, email: str | None, locale: str
) -> Account:
    """Where messages go besides SMS and the inbox (email, or none), and their language."""
    address = rules.normalise_email(email)
    rules.check_locale(locale)
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(what="account")
    account.email = address
    account.locale = locale
    await session.flush()
    return account


# --- reads for the pages ------------------------------------------------------------------


async def pending_reminders(session: AsyncSession, *, appointment_id: uuid.UUID) -> list[datetime]:
    """When the appointment's reminders that have not gone out yet are due: the pending one
    and those it carries."""
    rows = await session.execute(
        select(OutboxMessage.available_at, OutboxMessage.payload).where(
            OutboxMessage.appointment_id == appointment_id,
            OutboxMessage.kind == MessageKind.REMINDER.value,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
    )
    times: list[datetime] = []
    for available_at, payload in rows.all():
        times.append(available_at)
        times.extend(later_reminders(payload))
    return sorted(times)


async def inbox_for_account(
    session: AsyncSession, *, account_id: uuid.UUID, limit: int = 50
) -> list[InboxItem]:
    """The account's inbox, newest first."""
    rows = await session.scalars(
        select(InboxItem)
        .where(InboxItem.account_id == account_id)
        .order_by(InboxItem.created_at.desc(), InboxItem.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def unread_count(session: AsyncSession, *, account_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(InboxItem)
        .where(InboxItem.account_id == account_id, InboxItem.read_at.is_(None))
    )
    return int(count or 0)


async def mark_inbox_read(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID] | None,
    now: datetime | None = None,
) -> None:
    """Marks these items (all unread ones when `item_ids` is None) as read; items of other
    accounts are left alone."""
    query = (
        update(InboxItem)
        .where(InboxItem.account_id == account_id, InboxItem.read_at.is_(None))
        .values(read_at=now or datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if item_ids is not None:
        if not item_ids:
            return
        query = query.where(InboxItem.id.in_(list(item_ids)))
    await session.execute(query)


async def demo_phone_messages(
    session: AsyncSession, *, hospital_id: uuid.UUID, limit: int = 30
) -> list[DemoPhoneMessage]:
    """What the console SMS channel 'sent' in demo mode, newest first."""
    rows = await session.scalars(
        select(DemoPhoneMessage)
        .where(DemoPhoneMessage.hospital_id == hospital_id)
        .order_by(DemoPhoneMessage.created_at.desc(), DemoPhoneMessage.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def backlog(session: AsyncSession) -> int:
    """Messages waiting for delivery, for the operator's metrics."""
    count = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
    )
    return int(count or 0)
