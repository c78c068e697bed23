"""Writes outbox rows inside the caller's transaction, and the reads the web pages make of
what was delivered (the in-app inbox, the demo phone). Delivery itself is in `delivery.py`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit.errors import NotFound
from yuyue.notifications import rules
from yuyue.notifications.models import (
    Delivery,
    DeliveryStatus,
    DemoPhoneMessage,
    InboxItem,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
)
from yuyue.patients.models import Account


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
