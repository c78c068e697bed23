"""The payments context's states and kinds. No SQLAlchemy here, so the pure rules, the
reconciliation and every route can use them."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    """A payment order: created → paid → refunding → refunded | refund_failed, or
    created → closed (the hold ended or the patient chose another way to pay).

    Medical insurance pre-authorises instead: created → authorized (the platform holds the
    fee; the appointment is booked) → paid (settled) → refunding → …, or authorized →
    released (cancelled or a no-show before settlement: nothing was taken)."""

    CREATED = "created"
    PAID = "paid"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    REFUND_FAILED = "refund_failed"
    CLOSED = "closed"
    AUTHORIZED = "authorized"
    RELEASED = "released"


class RefundState(StrEnum):
    """Our refund (the provider's view is `gateway.RefundState`): requested → processing →
    succeeded | failed; at_window when the money can only come back at the registrar's
    window (paid offline, or a paper invoice was printed)."""

    REQUESTED = "requested"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    AT_WINDOW = "at_window"


class RefundReason(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"
    STOP_CLINIC = "stop_clinic"
    RESCHEDULED = "rescheduled"
    WAITLIST_OFFER = "waitlist_offer"
    LATE_PAYMENT = "late_payment"  # paid after the hold expired and the place was gone
    DUPLICATE = "duplicate"  # a second payment for an appointment already paid
    UNCLAIMED = "unclaimed"  # the safety net: paid, cancelled or expired, no refund found
    RECONCILIATION = "reconciliation"  # a charge with no booking, found by the T+1 run


class AttemptKind(StrEnum):
    """Every call to a provider and every notification received, for the audit of money."""

    CREATE = "create"
    QUERY = "query"
    CLOSE = "close"
    REFUND = "refund"
    QUERY_REFUND = "query_refund"
    NOTIFICATION = "notification"
    # Medical insurance's pre-authorisation, settlement and release of a hold.
    PREAUTHORIZE = "preauthorize"
    SETTLE = "settle"
    RELEASE = "release"


class AttemptOutcome(StrEnum):
    OK = "ok"
    ERROR = "error"  # the call failed (retryable or not: see error_code)
    REJECTED = "rejected"  # a notification that failed verification
    DUPLICATE = "duplicate"  # a notification for what was already recorded
    ANOMALY = "anomaly"  # verified, but the amount or the order does not match


class ReconciliationItemKind(StrEnum):
    LOCAL_ONLY = "local_only"
    PROVIDER_ONLY = "provider_only"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_LINE = "duplicate_line"
    NO_BOOKING = "no_booking"


class ReconciliationRunState(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"  # the provider's statement is not ready yet: asked again later
    DONE = "done"
    FAILED = "failed"
