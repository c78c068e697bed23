"""Pure payment rules: the order and refund state machines, which methods each provider
takes, who may pay what, refund eligibility (seed 003) and the refund retry schedule.

No I/O: plain functions over values already loaded and an injected `now`; refusals are
`YuyueError` subclasses with stable codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from yuyue.booking.states import AppointmentStatus, CancelReason, RefundShown
from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.patients.rules import mask_id_number
from yuyue.payments.gateway import PayMethod, Provider
from yuyue.payments.states import OrderState, RefundReason, RefundState

OS = OrderState
RS = RefundState

# --- errors -------------------------------------------------------------------------------


class ProviderUnavailable(YuyueError):
    """The hospital takes no payments through this provider (not configured)."""

    code = "provider_unavailable"
    status = 422


class MethodNotAllowed(YuyueError):
    code = "method_not_allowed"
    status = 422


class NotPayable(YuyueError):
    """Only a held appointment is paid; a booked one is paid already, others are over."""

    code = "not_held"
    status = 409


class NoFee(YuyueError):
    code = "no_fee"
    status = 409


class OrderTransitionRefused(YuyueError):
    code = "invalid_state"
    status = 409


class RefundNotAtWindow(YuyueError):
    """The window refunds only what must come back there (offline, invoice, failed)."""

    code = "refund_not_at_window"
    status = 409


class InvoiceNotAllowed(YuyueError):
    code = "invoice_not_allowed"
    status = 409


class GatewayUnavailable(YuyueError):
    """The provider could not be reached or refused the order; nothing was charged."""

    code = "payment_gateway_error"
    status = 502


i18n.register(
    {
        "title.provider_unavailable": ("支付方式未开通", "Payment provider not available"),
        "error.provider_unavailable": (
            "本院未开通“{provider}”支付，请选择其他支付方式。",
            "This hospital does not take payments by {provider}; please choose another way.",
        ),
        "title.method_not_allowed": ("支付方式不支持", "Payment method not allowed"),
        "error.method_not_allowed": (
            "“{provider}”不支持“{method}”支付方式，可选：{allowed}。",
            "{provider} does not support the method {method}; allowed: {allowed}.",
        ),
        "title.not_held": ("无需支付", "Nothing to pay"),
        "error.not_held": (
            "该预约当前状态为「{state}」，只有待支付的锁号可以支付。",
            "Only a held appointment can be paid; this one is '{state}'.",
        ),
        "title.no_fee": ("无需支付", "No fee"),
        "error.no_fee": (
            "该号别不收挂号费，无需支付。",
            "This registration level has no fee; there is nothing to pay.",
        ),
        "title.refund_not_at_window": ("无需窗口退费", "Not a window refund"),
        "error.refund_not_at_window": (
            "该退款状态为「{state}」，不需要在窗口办理。",
            "This refund is '{state}' and is not handled at the window.",
        ),
        "title.invoice_not_allowed": ("不能打印发票", "Invoice not allowed"),
        "error.invoice_not_allowed": (
            "支付单状态为「{state}」，只有已支付的订单可以打印发票。",
            "Only a paid order can have its invoice printed; this one is '{state}'.",
        ),
        "what.payment_order": ("支付订单", "payment order"),
        "what.refund": ("退款", "refund"),
        "title.payment_gateway_error": ("支付渠道暂不可用", "Payment provider unavailable"),
        "error.payment_gateway_error": (
            "支付渠道暂时无法下单（{reason}），未产生扣款，请稍后重试。",
            "The payment provider could not take the order ({reason}); nothing was charged. "
            "Please try again.",
        ),
    }
)

# --- what each provider takes --------------------------------------------------------------

ONLINE_METHODS: Final[Mapping[Provider, frozenset[PayMethod]]] = {
    Provider.WECHATPAY: frozenset({PayMethod.JSAPI, PayMethod.H5, PayMethod.NATIVE}),
    Provider.ALIPAY: frozenset({PayMethod.WAP, PayMethod.PAGE}),
    Provider.INSURANCE: frozenset({PayMethod.INSURANCE_MOBILE}),
}
# At the registrar's window: cash and bank card (the window), the insurance card (the
# insurance platform, swiped at the window).
WINDOW_METHODS: Final[Mapping[PayMethod, Provider]] = {
    PayMethod.CASH: Provider.WINDOW,
    PayMethod.BANK_CARD: Provider.WINDOW,
    PayMethod.INSURANCE_CARD: Provider.INSURANCE,
}


def check_online_method(provider: Provider, method: PayMethod) -> None:
    """A patient's own payment: the provider must take the method online."""
    allowed = ONLINE_METHODS.get(provider, frozenset())
    if method not in allowed:
        raise MethodNotAllowed(
            provider=provider.value,
            method=method.value,
            allowed=", ".join(sorted(m.value for m in allowed)) or "-",
        )


def window_provider(method: PayMethod) -> Provider:
    """The provider a window payment is booked under; refuses an online method."""
    provider = WINDOW_METHODS.get(method)
    if provider is None:
        raise MethodNotAllowed(
            provider=Provider.WINDOW.value,
            method=method.value,
            allowed=", ".join(sorted(m.value for m in WINDOW_METHODS)),
        )
    return provider


def check_payable(status: AppointmentStatus, *, fee_fen: int) -> None:
    if fee_fen <= 0:
        raise NoFee()
    if status is not AppointmentStatus.HELD:
        raise NotPayable(state=status.value)


def reusable(
    state: OrderState, *, expires_at: datetime | None, hold_ends: datetime | None, now: datetime
) -> bool:
    """An open order is shown again (same cashier, same out_trade_no) while it is still
    open, not past its end, and ends with the hold; a hold extended since (a waitlist offer
    accepted) needs a new order, since the provider refuses payment after `expires_at`."""
    return (
        state is OS.CREATED
        and expires_at is not None
        and expires_at > now
        and (hold_ends is None or expires_at >= hold_ends)
    )


# --- state machines ------------------------------------------------------------------------

ORDER_TRANSITIONS: Final[Mapping[tuple[OrderState, str], OrderState]] = {
    (OS.CREATED, "pay"): OS.PAID,
    (OS.CREATED, "close"): OS.CLOSED,
    # The provider may let a payment through just as we closed the order: the money was
    # taken, so the order is paid (and then refunded, since its hold is over).
    (OS.CLOSED, "pay"): OS.PAID,
    (OS.PAID, "refund"): OS.REFUNDING,
    (OS.REFUNDING, "refunded"): OS.REFUNDED,
    (OS.REFUNDING, "refund_failed"): OS.REFUND_FAILED,
    # The money came back at the window after all.
    (OS.REFUND_FAILED, "refunded"): OS.REFUNDED,
    # Medical insurance: the platform holds the fee (the appointment is booked on it), then
    # settles it (the order is paid) or releases it. A hold granted just as we closed the
    # order is a hold all the same; a settlement that crossed a release took the money, so
    # the order is paid (and then refunded, since its booking is over).
    (OS.CREATED, "authorize"): OS.AUTHORIZED,
    (OS.CLOSED, "authorize"): OS.AUTHORIZED,
    (OS.AUTHORIZED, "settle"): OS.PAID,
    (OS.AUTHORIZED, "release"): OS.RELEASED,
    (OS.RELEASED, "settle"): OS.PAID,
}

REFUND_TRANSITIONS: Final[Mapping[tuple[RefundState, str], RefundState]] = {
    (RS.REQUESTED, "send"): RS.PROCESSING,
    (RS.REQUESTED, "succeed"): RS.SUCCEEDED,
    (RS.REQUESTED, "fail"): RS.FAILED,
    (RS.PROCESSING, "send"): RS.PROCESSING,
    (RS.PROCESSING, "succeed"): RS.SUCCEEDED,
    (RS.PROCESSING, "fail"): RS.FAILED,
    (RS.AT_WINDOW, "refund_at_window"): RS.SUCCEEDED,
    (RS.FAILED, "refund_at_window"): RS.SUCCEEDED,
}


def order_transition(state: OrderState, action: str) -> OrderState:
    try:
        return ORDER_TRANSITIONS[(state, action)]
    except KeyError:
        raise OrderTransitionRefused(state=state.value, action=action) from None


def refund_transition(state: RefundState, action: str) -> RefundState:
    try:
        return REFUND_TRANSITIONS[(state, action)]
    except KeyError:
        if action == "refund_at_window":
            raise RefundNotAtWindow(state=state.value) from None
        raise OrderTransitionRefused(state=state.value, action=action) from None


def check_invoice(state: OrderState) -> None:
    if state is not OS.PAID:
        raise InvoiceNotAllowed(state=state.value)


# --- refunds (seed 003) ---------------------------------------------------------------------


class RefundRoute(StrEnum):
    ONLINE = "online"  # back to where it came from, by the provider
    WINDOW = "window"  # at the registrar's window


def refund_route(method: PayMethod, *, invoice_printed: bool) -> RefundRoute:
    """Only an online payment is refunded online; once a paper invoice was printed the
    refund happens at the window (the invoice must be taken back)."""
    if not method.is_online or invoice_printed:
        return RefundRoute.WINDOW
    return RefundRoute.ONLINE


def initial_refund_state(route: RefundRoute) -> RefundState:
    return RS.REQUESTED if route is RefundRoute.ONLINE else RS.AT_WINDOW


def shown_state(state: RefundState) -> RefundShown:
    """What the patient sees on the appointment for the refund's state."""
    return {
        RS.REQUESTED: RefundShown.PENDING,
        RS.PROCESSING: RefundShown.PENDING,
        RS.SUCCEEDED: RefundShown.REFUNDED,
        RS.FAILED: RefundShown.FAILED,
        RS.AT_WINDOW: RefundShown.AT_WINDOW,
    }[state]


def refund_reason(reason: CancelReason) -> RefundReason:
    return RefundReason(reason.value)


# A refund the provider could not take yet is tried again after these waits, the last one
# repeating until the provider confirms; each retry reuses the same out_refund_no, so the
# provider never pays twice.
BACKOFF: Final[tuple[timedelta, ...]] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
# A refund the provider reports as still processing is asked about again after this.
PROCESSING_POLL: Final = timedelta(minutes=5)


def next_try(tries: int, *, now: datetime) -> datetime:
    """When to try again after `tries` failed attempts (1 → one minute, … capped)."""
    index = min(max(tries, 1), len(BACKOFF)) - 1
    return now + BACKOFF[index]


# --- medical insurance ----------------------------------------------------------------------


class InsuranceSettlement(StrEnum):
    """When a hospital settles a pre-authorised fee with the insurance platform (its
    payment setting): at booking, or once the visit is over (a no-show or a cancellation
    then releases the hold and nothing is ever taken)."""

    AT_BOOKING = "booking"
    AFTER_VISIT = "visit"


DEFAULT_INSURANCE_SETTLEMENT: Final = InsuranceSettlement.AFTER_VISIT


class AppointmentMoment(StrEnum):
    """What happened to an appointment paid by pre-authorisation."""

    BOOKED = "booked"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class InsuranceStep(StrEnum):
    SETTLE = "settle"
    RELEASE = "release"
    NOTHING = "nothing"


def insurance_step(
    state: OrderState, moment: AppointmentMoment, *, settlement: InsuranceSettlement
) -> InsuranceStep:
    """What a pre-authorised order does next. Only a hold still unsettled moves: it is
    settled at booking or after the visit as the hospital chose, and released when the
    appointment is cancelled or missed. A settled order's cancellation is a refund, which
    the common refund path handles."""
    if state is not OS.AUTHORIZED:
        return InsuranceStep.NOTHING
    if moment is AppointmentMoment.BOOKED:
        if settlement is InsuranceSettlement.AT_BOOKING:
            return InsuranceStep.SETTLE
        return InsuranceStep.NOTHING
    if moment is AppointmentMoment.COMPLETED:
        return InsuranceStep.SETTLE
    return InsuranceStep.RELEASE


@dataclass(frozen=True)
class Split:
    """A settled fee: the pool's share (统筹), the personal account's (个人账户) and the
    patient's own payment (自付)."""

    pool_fen: int
    account_fen: int
    self_pay_fen: int

    @property
    def total_fen(self) -> int:
        return self.pool_fen + self.account_fen + self.self_pay_fen

    @property
    def insurer_fen(self) -> int:
        return self.pool_fen + self.account_fen


class SplitMismatch(YuyueError):
    """The platform's parts do not add up to the fee held: not a settlement to book."""

    code = "insurance_split_mismatch"
    status = 502


def check_split(split: Split, *, fee_fen: int) -> Split:
    if min(split.pool_fen, split.account_fen, split.self_pay_fen) < 0:
        raise SplitMismatch(total=split.total_fen, fee=fee_fen)
    if split.total_fen != fee_fen:
        raise SplitMismatch(total=split.total_fen, fee=fee_fen)
    return split


class InsuranceIdRequired(YuyueError):
    code = "insurance_id_required"
    status = 422


class InvalidInsuranceId(YuyueError):
    code = "invalid_insurance_id"
    status = 422


class InsuranceRefused(YuyueError):
    """The platform refused the pre-authorisation (unknown insured person, no cover);
    nothing is held and the appointment stays held for another way to pay."""

    code = "insurance_refused"
    status = 422


_INSURANCE_ID = re.compile(r"[0-9A-Z]{6,32}")


def insurance_id(text: str | None) -> str:
    """The insured person's number as the platform knows it: letters and digits, spaces
    and dashes ignored, upper case."""
    if text is None or not text.strip():
        raise InsuranceIdRequired()
    number = re.sub(r"[\s-]", "", text).upper()
    if not _INSURANCE_ID.fullmatch(number):
        raise InvalidInsuranceId()
    return number


def mask_insurance_id(number: str) -> str:
    """Enough for the patient to recognise their own number, never most of it: an 18-digit
    number (the identity number) shows as identity numbers do, a shorter card number keeps
    two characters at each end."""
    if len(number) >= 16:
        return mask_id_number(number)
    keep = 2
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]


i18n.register(
    {
        "title.insurance_split_mismatch": ("医保结算金额不符", "Insurance split mismatch"),
        "error.insurance_split_mismatch": (
            "医保结算各部分合计 {total} 分，与费用 {fee} 分不符。",
            "The insurance parts add up to {total} fen, not the fee of {fee} fen.",
        ),
        "title.insurance_id_required": ("请填写医保号", "Insurance number required"),
        "error.insurance_id_required": (
            "医保支付需要填写参保人的医保号。",
            "Paying by medical insurance needs the insured person's number.",
        ),
        "title.invalid_insurance_id": ("医保号有误", "Invalid insurance number"),
        "error.invalid_insurance_id": (
            "医保号应为 6 至 32 位字母或数字。",
            "An insurance number is 6 to 32 letters or digits.",
        ),
        "title.insurance_refused": ("医保未能授权", "Insurance refused"),
        "error.insurance_refused": (
            "医保平台未能授权本次支付（{reason}），未产生扣款，请选择其他支付方式。",
            "The insurance platform did not authorise the payment ({reason}); nothing was "
            "held. Please choose another way to pay.",
        ),
    }
)
