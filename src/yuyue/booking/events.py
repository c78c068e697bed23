"""What booking tells other contexts, inside the transaction that made the change.

Booking stays the only writer of appointments, yet a cancelled or expired appointment has
consequences elsewhere (its payment must be refunded or its open order closed). Booking
must not know those contexts (it is upstream of them: the import contract forbids it), so
it publishes an event and whoever cares subscribes when its module is imported.

Unlike the queue events (published after the commit, for screens), these subscribers are
awaited *in the same session and transaction* as the change: a cancellation and the refund
it owes are committed together or not at all (guarantee 2, "nothing lost"). A subscriber
must therefore not call the network (it queues work for a job instead) and must not commit;
an exception from it rolls the whole change back, which is what we want.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.states import CancelReason
from yuyue.staff.rules import Actor


@dataclass(frozen=True, slots=True)
class AppointmentCancelled:
    """Any cancellation: patient, staff, stop-clinic, the booking a reschedule replaced and
    a declined or lapsed waitlist offer. `payment_follows` is set when a reschedule carries
    the payment over to the new appointment (see `PaymentCarriedOver`): nothing to refund."""

    hospital_id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    reason: CancelReason
    actor: Actor
    at: datetime
    payment_follows: bool = False


@dataclass(frozen=True, slots=True)
class AppointmentExpired:
    """An unpaid hold ran out and its place went back to the pool."""

    hospital_id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    actor: Actor
    at: datetime


@dataclass(frozen=True, slots=True)
class PaymentCarriedOver:
    """A reschedule to a level of the same fee, or a stopped clinic's substitute: the paid
    booking `from_appointment_id` was replaced by `to_appointment_id`, booked (not held) on
    the strength of the same payment."""

    hospital_id: uuid.UUID
    from_appointment_id: uuid.UUID
    to_appointment_id: uuid.UUID
    patient_id: uuid.UUID
    actor: Actor
    at: datetime
    # The patient was told of the move in booking's own message (a substitute's), which
    # says the fee stands: payments sends no message of its own.
    told: bool = False


@dataclass(frozen=True, slots=True)
class AppointmentCompleted:
    """The consultation is over (`change_status` "complete"): a fee held rather than taken
    (medical insurance's pre-authorisation) may be settled now."""

    hospital_id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    actor: Actor
    at: datetime


@dataclass(frozen=True, slots=True)
class AppointmentMissed:
    """The patient did not come (`change_status` "mark_no_show"): a fee held rather than
    taken is released."""

    hospital_id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    actor: Actor
    at: datetime


BookingEvent = (
    AppointmentCancelled
    | AppointmentExpired
    | PaymentCarriedOver
    | AppointmentCompleted
    | AppointmentMissed
)
Subscriber = Callable[[AsyncSession, BookingEvent], Awaitable[None]]

_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    """Adds a subscriber for this process; adding the same one twice keeps one."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


async def publish(session: AsyncSession, event: BookingEvent) -> None:
    """Awaits every subscriber in turn, in the caller's transaction."""
    for subscriber in list(_subscribers):
        await subscriber(session, event)
