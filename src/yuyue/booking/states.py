"""An appointment's states and why one was cancelled. No SQLAlchemy here, so the pure rules
and every context can use them."""

from __future__ import annotations

from enum import StrEnum


class AppointmentStatus(StrEnum):
    HELD = "held"
    BOOKED = "booked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


# Statuses that occupy a place; the partial unique indexes in models.py use the same list.
ACTIVE_STATUSES = (AppointmentStatus.HELD, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


class CancelReason(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"
    STOP_CLINIC = "stop_clinic"
    RESCHEDULED = "rescheduled"
    # A place offered from the waitlist that the patient declined or let lapse.
    WAITLIST_OFFER = "waitlist_offer"


class RefundShown(StrEnum):
    """What the patient sees of their money's way back, kept on the appointment. Payments
    decides it (through `booking.service.note_refund`); booking only stores and shows it."""

    NONE = "none"
    PENDING = "pending"  # an online refund is on its way
    REFUNDED = "refunded"
    FAILED = "failed"  # the online refund failed: the patient is asked to come to the window
    AT_WINDOW = "at_window"  # paid offline or invoice printed: refunded at the window
