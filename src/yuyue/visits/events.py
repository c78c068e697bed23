"""Queue events for the screens, published after the change is committed.

Every change the waiting-room screens, the desk and the doctor's page must show (check-in,
call, recall, skip, start, finish, move, priority) is announced as a :class:`QueueEvent`
by the entry point *after* its transaction commits, so a screen never shows what was
rolled back. Publishing is in-process and safe with no subscribers: the context's
:class:`QueueEvents` holds async callables (an SSE fan-out, a Redis publisher) and each is
awaited in turn; one failing subscriber is logged and never fails the request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

log = logging.getLogger(__name__)


class QueueEventKind(StrEnum):
    CHECKED_IN = "checked_in"
    CALLED = "called"
    RECALLED = "recalled"
    SKIPPED = "skipped"
    STARTED = "started"
    FINISHED = "finished"
    MOVED = "moved"
    PRIORITY_SET = "priority_set"
    RETURN_VISIT = "return_visit"


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """Something happened in one clinic session's queue; subscribers re-read what they show."""

    kind: QueueEventKind
    hospital_id: uuid.UUID
    session_id: uuid.UUID
    department_id: uuid.UUID
    visit_id: uuid.UUID
    queue_number: int
    at: datetime


Subscriber = Callable[[QueueEvent], Awaitable[None]]


@dataclass
class QueueEvents:
    """The subscribers of one process; kept on the application context."""

    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds a subscriber; returns a function that removes it again."""
        self.subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self.subscribers:
                self.subscribers.remove(subscriber)

        return unsubscribe


async def publish(ctx: object, event: QueueEvent) -> None:
    """Hands the event to every subscriber of ``ctx.queue_events``; call only after the
    transaction committed. A context without subscribers makes this a no-op."""
    events = getattr(ctx, "queue_events", None)
    if not isinstance(events, QueueEvents):
        return
    for subscriber in list(events.subscribers):
        try:
            await subscriber(event)
        except Exception:
            log.exception("queue event subscriber failed on %s", event.kind)
