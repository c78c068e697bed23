"""Queue events onto the live bus: which channels an event is announced on.

`visits.events.publish(ctx, event)` hands each committed change to the context's queue
subscribers; the one installed by the application context forwards it to the live bus
(in-process, or Redis pub/sub between processes) on three channels:

- ``board:{department_id}``: the department's waiting-room screens (today's rooms);
- ``queue:{session_id}``: the doctor's and the desk's view of that queue, and the phones
  of the patients waiting in it (everyone's position moves when one patient is called);
- ``visit:{visit_id}``: one visit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from yuyue.kit.live import LiveBus
from yuyue.visits.events import QueueEvent


def board_channel(department_id: uuid.UUID) -> str:
    return f"board:{department_id}"


def queue_channel(session_id: uuid.UUID) -> str:
    return f"queue:{session_id}"


def visit_channel(visit_id: uuid.UUID) -> str:
    return f"visit:{visit_id}"


def payload(event: QueueEvent) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "session_id": str(event.session_id),
        "department_id": str(event.department_id),
        "visit_id": str(event.visit_id),
        "queue_number": event.queue_number,
        "at": event.at.isoformat(),
    }


def forward_to(bus: LiveBus) -> Callable[[QueueEvent], Awaitable[None]]:
    """A queue-event subscriber that announces each event on the live bus."""

    async def forward(event: QueueEvent) -> None:
        body = payload(event)
        for channel in (
            board_channel(event.department_id),
            queue_channel(event.session_id),
            visit_channel(event.visit_id),
        ):
            await bus.publish(channel, body)

    return forward
