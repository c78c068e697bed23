"""The kinds of message a patient can be sent. No SQLAlchemy here, so the pure rules and
every context can use them."""

from __future__ import annotations

from enum import StrEnum


class MessageKind(StrEnum):
    BOOKING_CONFIRMED = "booking_confirmed"
    BOOKING_HELD = "booking_held"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    STOP_CLINIC = "stop_clinic"
    # A stopped clinic's booking taken over by another doctor (替诊).
    SUBSTITUTED = "substituted"
    # An approved change of patient: the booking now belongs to the patient told, and the
    # one it was taken from is told it is no longer theirs.
    PATIENT_CHANGED = "patient_changed"
    BOOKING_TRANSFERRED = "booking_transferred"
    HOLD_EXPIRED = "hold_expired"
    SIGN_IN_CODE = "sign_in_code"
    WAITLIST_OFFER = "waitlist_offer"
    REMINDER = "reminder"
    NO_SHOW = "no_show"
    BLACKLISTED = "blacklisted"
    APPEAL_ACCEPTED = "appeal_accepted"
    APPEAL_REJECTED = "appeal_rejected"
    # Money (payments): where the fee of a booking is going.
    REFUND_STARTED = "refund_started"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    REFUND_AT_WINDOW = "refund_at_window"
    LATE_PAYMENT_REFUND = "late_payment_refund"
    PAYMENT_CARRIED_OVER = "payment_carried_over"
    # A hospital notice (公告) texted to the patients it concerns (operations).
    ANNOUNCEMENT = "announcement"
