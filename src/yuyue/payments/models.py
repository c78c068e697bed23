"""Payments' tables: orders, every provider call and notification, refunds, and the T+1
reconciliation runs with what they found. Money is integer fen."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yuyue.kit.db import Base
from yuyue.kit.ids import new_id
from yuyue.payments.states import OrderState, RefundState

_OPEN_SQL = text("state = 'created'")


class PaymentOrder(Base):
    """One attempt to collect one appointment's fee through one provider and method."""

    __tablename__ = "payment_order"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # One open order per appointment, provider and method: a second "pay" click shows
        # the same cashier instead of creating a second order the patient could also pay.
        Index(
            "uq_payment_order_open",
            "appointment_id",
            "provider",
            "method",
            unique=True,
            postgresql_where=_OPEN_SQL,
            sqlite_where=_OPEN_SQL,
        ),
        Index("ix_payment_order_appointment", "appointment_id"),
        Index("ix_payment_order_state_expires_at", "state", "expires_at"),
        Index("ix_payment_order_transaction_id", "transaction_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointment.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    amount_fen: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    provider: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[OrderState] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]  # the hold's end: the provider refuses after it
    # What the patient's client needs to open the cashier again (no secrets: a URL, a QR
    # content or JSAPI parameters signed for this order only).
    checkout: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Set once the provider was told to close the order (the job does it after commit).
    provider_closed_at: Mapped[datetime | None]
    invoice_printed_at: Mapped[datetime | None]
    receipt_no: Mapped[str | None] = mapped_column(String(40))  # window payments
    # Medical insurance split (统筹 / 个人账户 / 自付), when the insurer settled it.
    pool_fen: Mapped[int | None] = mapped_column(Integer)
    account_fen: Mapped[int | None] = mapped_column(Integer)
    self_pay_fen: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentAttempt(Base):
    """Every call to a provider and every notification received, verified or not. Keeps a
    digest of the body, never the body's secrets nor any key."""

    __tablename__ = "payment_attempt"
    __table_args__ = (
        Index("ix_payment_attempt_order", "order_id", "at"),
        Index("ix_payment_attempt_event", "provider", "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Unknown for a notification that failed verification.
    hospital_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hospital.id"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payment_order.id"))
    refund_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("refund.id"))
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str | None] = mapped_column(String(100))
    verified: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    body_digest: Mapped[str | None] = mapped_column(String(64))  # sha256 hex of the body
    at: Mapped[datetime]


class Refund(Base):
    """Money going back for one paid order: online through the provider (retried until it
    confirms) or at the registrar's window.

    A charge the provider took for an order we never had (found by the T+1 reconciliation)
    has no order and no appointment: its refund carries the provider, the provider's
    out_trade_no and the charge's total itself, and is sent by the same job."""

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # An order is refunded once, in full: a second refund could pay the patient twice.
        UniqueConstraint("order_id"),
        Index("ix_refund_state_next_try_at", "state", "next_try_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payment_order.id"))
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    # Only for a refund without an order (a provider-only charge).
    provider: Mapped[str | None] = mapped_column(String(16))
    out_trade_no: Mapped[str | None] = mapped_column(String(32))
    total_fen: Mapped[int | None] = mapped_column(Integer)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    state: Mapped[RefundState] = mapped_column(String(16))
    provider_refund_id: Mapped[str | None] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_try_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]
    window_receipt_no: Mapped[str | None] = mapped_column(String(40))
    handled_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReconciliationRun(Base):
    """One provider's statement for one business day, matched against our records."""

    __tablename__ = "reconciliation_run"
    __table_args__ = (UniqueConstraint("hospital_id", "provider", "business_day"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    provider: Mapped[str] = mapped_column(String(16))
    business_day: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))
    local_count: Mapped[int] = mapped_column(Integer, default=0)
    provider_count: Mapped[int] = mapped_column(Integer, default=0)
    local_total_fen: Mapped[int] = mapped_column(Integer, default=0)
    provider_total_fen: Mapped[int] = mapped_column(Integer, default=0)
    local_refund_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    provider_refund_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mismatches: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # A statement not ready yet (state waiting) is asked for again from this instant.
    tries: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    next_try_at: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ReconciliationItem(Base):
    """One difference found by a run, and what finance did about it."""

    __tablename__ = "reconciliation_item"
    __table_args__ = (Index("ix_reconciliation_item_run", "run_id", "kind"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_run.id"))
    kind: Mapped[str] = mapped_column(String(16))
    line_kind: Mapped[str] = mapped_column(String(8), default="payment", server_default="payment")
    out_trade_no: Mapped[str] = mapped_column(String(32))
    out_refund_no: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    local_fen: Mapped[int | None] = mapped_column(Integer)
    provider_fen: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str | None] = mapped_column(String(32))  # e.g. refunded automatically
    at: Mapped[datetime | None]  # the provider's time of the line, else ours
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment.id"))
    refund_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The automatic refund this item started (its out_refund_no is the same on every run).
    refund_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("refund.id"))
    handled_by: Mapped[str | None] = mapped_column(String(80))
    handled_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class InsuranceHold(Base):
    """A medical-insurance pre-authorisation behind one order: whose cover it is (the
    insured person's number, encrypted; masked for screens), the platform's hold number and
    what is still to be done there. `settle_due_at` and `release_due_at` are intents written
    in the transaction that decided them; the insurance pass (or the request itself) then
    calls the platform after commit and records `settled_at` / `released_at`."""

    __tablename__ = "insurance_hold"
    __table_args__ = (
        UniqueConstraint("order_id"),
        Index("ix_insurance_hold_next_try_at", "next_try_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_order.id"))
    insured_cipher: Mapped[str] = mapped_column(String(200))
    insured_masked: Mapped[str] = mapped_column(String(40))
    auth_no: Mapped[str | None] = mapped_column(String(64))
    held_fen: Mapped[int] = mapped_column(Integer)
    settle_due_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    release_due_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    # When the pass may call the platform again for what is due (a lease and a back-off).
    next_try_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(SmallInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentSettings(Base):
    """A hospital's payment settings; no row means the defaults."""

    __tablename__ = "payment_settings"

    hospital_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hospital.id"), primary_key=True)
    # payments.rules.InsuranceSettlement: settle a pre-authorised fee at booking or after
    # the visit.
    insurance_settlement: Mapped[str] = mapped_column(String(16))
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime]
