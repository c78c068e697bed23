from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from yuyue.booking.rules import ChangeKind, RequestState
from yuyue.booking.states import AppointmentStatus
from yuyue.kit.schemas import Input
from yuyue.scheduling.enums import Period
from yuyue.scheduling.schemas import DoctorBrief, Named


class AppointmentCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "0195f3c1-0000-7000-8000-000000000101",
                    "session_id": "0195f3c1-0000-7000-8000-0000000000aa",
                }
            ]
        },
    )

    patient_id: uuid.UUID
    session_id: uuid.UUID
    slot_id: uuid.UUID | None = Field(None, description="omit to take the earliest free slot")


class Reschedule(Input):
    session_id: uuid.UUID
    slot_id: uuid.UUID | None = None


class CancelRequest(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "家里有事，改天再来"}]},
    )

    note: Annotated[
        str | None, Field(max_length=500, description="why it is cancelled (kept on the record)")
    ] = None
    # Many channel clients call it `reason`; both names mean the same note.
    reason: Annotated[
        str | None, Field(max_length=500, description="another name for `note`; send either")
    ] = None

    @field_validator("reason")
    @classmethod
    def _agrees_with_note(cls, reason: str | None, info: ValidationInfo) -> str | None:
        note = info.data.get("note")
        if reason is not None and note is not None and reason != note:
            raise ValueError("`reason` and `note` are the same field; send one, or the same text")
        return reason

    @property
    def cancel_note(self) -> str | None:
        return self.note if self.note is not None else self.reason


class SlotBrief(BaseModel):
    id: uuid.UUID
    start: time
    end: time


class SessionBrief(BaseModel):
    id: uuid.UUID
    date: date
    period: Period
    department: Named
    doctor: DoctorBrief | None
    level: str
    location: str


class Voucher(BaseModel):
    code: Annotated[str, Field(description="short numeric code for phone and window use")]
    token: Annotated[str, Field(description="signed, expiring token carried by the QR code")]


class PaymentSplit(BaseModel):
    """How medical insurance settled the fee; the three parts add up to it."""

    pool_fen: Annotated[int, Field(description="统筹基金: the insurance pool's share")]
    account_fen: Annotated[int, Field(description="个人账户: the personal account's share")]
    self_pay_fen: Annotated[int, Field(description="自付: the patient's own share")]


class PaymentBrief(BaseModel):
    state: Annotated[
        str,
        Field(description="paid, refunding, refunded, refund_failed (go to the window)"),
    ]
    amount_fen: int
    provider: Annotated[str | None, Field(description="wechatpay, alipay, insurance, window")]
    split: Annotated[
        PaymentSplit | None,
        Field(description="medical insurance only, once settled (null while only held)"),
    ] = None


class RefundBrief(BaseModel):
    state: Annotated[
        str, Field(description="pending, refunded, failed (go to the window), at_window")
    ]


class AppointmentRead(BaseModel):
    id: uuid.UUID
    status: AppointmentStatus
    sequence_number: Annotated[
        int, Field(description="就诊序号, unique in the session, in slot order")
    ]
    patient_id: uuid.UUID
    channel: str
    fee: Annotated[int, Field(description="fen")]
    session: SessionBrief
    slot: SlotBrief
    voucher: Voucher | None = Field(description="present once booked (not while an unpaid hold)")
    hold_expires_at: datetime | None
    cancellation_deadline: datetime
    booked_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    created_at: datetime
    payment: PaymentBrief | None = Field(
        default=None, description="what was paid, once paid (the fee stays in `fee`)"
    )
    refund: RefundBrief | None = Field(
        default=None, description="where the money of a cancelled paid booking is"
    )
    payment_carried_over: bool | None = Field(
        default=None,
        description="a reschedule's answer: true when the old payment now covers this "
        "appointment, false when the old payment is refunded (and this one is paid anew)",
    )


class PaymentConfirmation(Input):
    paid_fen: Annotated[int, Field(ge=0)]
    payment_reference: Annotated[str, Field(min_length=1, max_length=100)]


class BlacklistCreate(Input):
    patient_id: uuid.UUID
    reason: Annotated[str, Field(min_length=2, max_length=500)]
    ends_at: AwareDatetime


class ChangeRequestCreate(Input):
    kind: Annotated[
        ChangeKind,
        Field(description="cancel_late (退号 after the deadline), move, or change_patient"),
    ]
    reason: Annotated[str, Field(min_length=2, max_length=500, examples=["患者突发高烧住院"])]
    session_id: uuid.UUID | None = Field(None, description="move: the session to move to")
    slot_id: uuid.UUID | None = Field(None, description="move: a slot of that session")
    patient_id: uuid.UUID | None = Field(None, description="change_patient: the new patient")


class ChangeRequestDecision(Input):
    note: Annotated[str | None, Field(max_length=500, description="required to reject")] = None


class ChangeRequestRead(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    kind: ChangeKind
    state: RequestState
    reason: str
    details: dict[str, Any]
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    outcome: dict[str, Any] | None
