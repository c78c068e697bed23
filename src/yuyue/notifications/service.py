"""Writes outbox rows inside the caller's transaction; delivery arrives with the worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.notifications.models import MessageKind, OutboxMessage


def enqueue(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    kind: MessageKind,
    patient_id: uuid.UUID | None,
    appointment_id: uuid.UUID | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    session.add(
        OutboxMessage(
            hospital_id=hospital_id,
            kind=kind.value,
            patient_id=patient_id,
            appointment_id=appointment_id,
            payload=payload,
            available_at=now,
            created_at=now,
        )
    )
