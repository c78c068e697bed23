"""What crosses HTTP for payments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from yuyue.kit.schemas import Input
from yuyue.payments.gateway import PayMethod, Provider


class PaymentCreate(Input):
    provider: Provider
    method: PayMethod
    return_url: Annotated[str | None, Field(max_length=500)] = None
    payer_openid: Annotated[str | None, Field(max_length=128, description="JSAPI only")] = None
    insurance_id: Annotated[
        str | None,
        Field(
            max_length=40,
            description="insurance / insurance_mobile only: the insured person's number "
            "(医保号); stored encrypted, shown masked",
        ),
    ] = None


class InsuranceSplit(BaseModel):
    pool_fen: Annotated[int, Field(description="统筹基金: the insurance pool's share")]
    account_fen: Annotated[int, Field(description="个人账户: the personal account's share")]
    self_pay_fen: Annotated[int, Field(description="自付: the patient's own share")]


class CheckoutRead(BaseModel):
    """Exactly one of a redirect (H5, WAP, page), a QR code's content (Native) or JSAPI
    parameters opens the provider's cashier."""

    method: PayMethod
    redirect_url: str | None
    qr_content: str | None
    jsapi_params: dict[str, str] | None
    # Medical insurance answers at once: the fee is held (`authorized`, the appointment is
    # booked) or already settled (`paid`, with the split).
    order_state: str | None = None
    split: InsuranceSplit | None = None


class WindowPaymentCreate(Input):
    method: Annotated[PayMethod, Field(description="cash, bank_card or insurance_card")]
    receipt_no: Annotated[str, Field(min_length=1, max_length=40)]


class WindowRefund(Input):
    receipt_no: Annotated[str | None, Field(max_length=40)] = None


class RefundRead(BaseModel):
    id: uuid.UUID
    state: str
    amount_fen: int
    reason: str
    out_refund_no: str
    tries: int
    last_error: str | None
    finished_at: datetime | None


class PaymentOrderRead(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    state: str
    amount_fen: int
    currency: str
    provider: str
    method: str
    out_trade_no: str
    transaction_id: str | None
    receipt_no: str | None
    paid_at: datetime | None
    invoice_printed_at: datetime | None
    created_at: datetime
    refund: RefundRead | None = None


class ReceiptRead(BaseModel):
    """What was paid for an appointment and how."""

    appointment_id: uuid.UUID
    fee_fen: int
    state: Annotated[str, Field(description="the order: authorized (held), paid, refunding, …")]
    provider: str
    method: str
    paid_at: datetime | None
    receipt_no: Annotated[
        str, Field(description="the window's receipt, else the provider's transaction number")
    ]
    split: InsuranceSplit | None
    insured: Annotated[str | None, Field(description="the insurance number, masked")]


class PaymentSettingsRead(BaseModel):
    insurance_settlement: Annotated[
        str, Field(description="booking: settle when booked; visit: after the visit completes")
    ]


class PaymentSettingsUpdate(Input):
    insurance_settlement: Annotated[str, Field(pattern="^(booking|visit)$")]


class ReconciliationRunRead(BaseModel):
    """One provider's business day against our records. Totals are fen: payments and
    refunds on each side (ours: records of that day; theirs: the statement's lines)."""

    id: uuid.UUID
    provider: str
    business_day: date
    state: str  # running, waiting (statement not ready), done, failed
    local_count: int
    provider_count: int
    local_total_fen: int
    provider_total_fen: int
    local_refund_fen: int
    provider_refund_fen: int
    mismatches: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class ReconciliationItemRead(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    kind: str  # local_only, provider_only, amount_mismatch, duplicate_line, no_booking
    line_kind: str  # payment or refund
    out_trade_no: str
    out_refund_no: str | None
    transaction_id: str | None
    local_fen: int | None
    provider_fen: int | None
    at: datetime | None
    action: str | None  # refund_automatically or investigate
    refund_id: uuid.UUID | None
    refund_fen: int
    handled_by: str | None
    handled_at: datetime | None
    note: str | None


class ItemHandled(Input):
    note: Annotated[str, Field(min_length=1, max_length=500, description="What was done")]
