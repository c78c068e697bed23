"""The one interface every payment provider sits behind.

An adapter speaks its provider's real protocol (WeChat Pay API v3, Alipay's open API, the
medical-insurance platform, the registrar's window) and answers in these value objects, so
the payments service never learns a provider's field names. Adapters make network calls;
the service never calls them inside a database transaction.

Money is integer fen; instants are aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


class Provider(StrEnum):
    WECHATPAY = "wechatpay"
    ALIPAY = "alipay"
    INSURANCE = "insurance"  # 医保移动支付 and the insurance card at the window
    WINDOW = "window"  # cash or bank card taken by a registrar


class PayMethod(StrEnum):
    JSAPI = "jsapi"  # WeChat Pay inside WeChat (official account or mini program)
    H5 = "h5"  # WeChat Pay from a mobile browser
    NATIVE = "native"  # WeChat Pay QR code shown on a kiosk or desktop
    WAP = "wap"  # Alipay from a mobile browser
    PAGE = "page"  # Alipay from a desktop browser
    CASH = "cash"
    BANK_CARD = "bank_card"
    INSURANCE_CARD = "insurance_card"
    INSURANCE_MOBILE = "insurance_mobile"

    @property
    def is_online(self) -> bool:
        """Only an online payment may be refunded online (seed 003)."""
        return self not in {PayMethod.CASH, PayMethod.BANK_CARD, PayMethod.INSURANCE_CARD}


@dataclass(frozen=True)
class PayRequest:
    out_trade_no: str  # ours, unique per order, 6–32 characters of [0-9A-Za-z_-]
    amount_fen: int
    description: str  # shown on the patient's cashier and bill, e.g. "北京协和医院-心内科 主任医师"
    method: PayMethod
    expires_at: datetime  # the hold's end: the provider refuses payment after it
    notify_url: str
    return_url: str | None = None  # where the cashier sends the patient back (H5, WAP, page)
    payer_openid: str | None = None  # JSAPI only
    client_ip: str | None = None  # H5 scene information


@dataclass(frozen=True)
class Checkout:
    """What the patient's client needs to open the provider's cashier: exactly one of a
    redirect (H5, WAP, page), a QR code's content (Native), or JSAPI parameters."""

    method: PayMethod
    redirect_url: str | None = None
    qr_content: str | None = None
    jsapi_params: Mapping[str, str] | None = None
    provider_reference: str | None = None  # prepay_id and the like


class TradeState(StrEnum):
    NOT_PAID = "not_paid"  # created, waiting for the payer
    PAID = "paid"
    CLOSED = "closed"  # closed or revoked before payment
    REFUNDED = "refunded"  # paid, then refunded in part or in full
    FAILED = "failed"


@dataclass(frozen=True)
class TradeStatus:
    out_trade_no: str
    state: TradeState
    amount_fen: int | None = None  # what the payer paid, when known
    transaction_id: str | None = None  # the provider's id of the charge
    paid_at: datetime | None = None
    payer: str | None = None  # openid / buyer id, never shown unmasked


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str  # ours, unique per refund; retrying with the same number is safe
    refund_fen: int
    total_fen: int
    reason: str
    notify_url: str


class RefundState(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider gave up (closed, abnormal); the patient goes to the window


@dataclass(frozen=True)
class RefundStatus:
    out_refund_no: str
    state: RefundState
    refund_fen: int | None = None
    refund_id: str | None = None  # the provider's id of the refund
    finished_at: datetime | None = None
    failure: str | None = None  # the provider's reason, for finance


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class Notification:
    """A provider's asynchronous notification, verified and decoded."""

    kind: NotificationKind
    event_id: str  # the provider's id of this notification, for the log
    trade: TradeStatus | None = None  # for PAYMENT
    refund: RefundStatus | None = None  # for REFUND
    out_trade_no: str | None = None  # the order a REFUND belongs to


@dataclass(frozen=True)
class NotificationReply:
    """How the provider expects to be answered: WeChat Pay reads the status code (and a JSON
    body on failure), Alipay reads the body `success`."""

    status_code: int
    body: bytes
    content_type: str


class StatementKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class StatementLine:
    kind: StatementKind
    out_trade_no: str
    transaction_id: str | None
    amount_fen: int  # the charge, or the refund's amount
    at: datetime
    out_refund_no: str | None = None
    refund_id: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict)  # the provider's row, for finance


@dataclass(frozen=True)
class Statement:
    provider: Provider
    bill_date: date  # the provider's business day (Asia/Shanghai)
    lines: tuple[StatementLine, ...]


class GatewayError(Exception):
    """A provider call failed. `retryable` says whether trying again later may succeed
    (network, 5xx, SYSTEM_ERROR) or not (a refused parameter, insufficient balance)."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class InvalidNotification(Exception):
    """A notification that failed verification: bad signature, a timestamp outside the
    replay window, unknown certificate, or a body that does not decrypt. Nothing changes."""


class StatementNotReady(GatewayError):
    """The provider has no statement for that day yet (or no trade happened)."""

    def __init__(self, message: str) -> None:
        super().__init__("STATEMENT_NOT_READY", message, retryable=True)


class Gateway(Protocol):
    provider: Provider

    async def create(self, request: PayRequest) -> Checkout: ...

    async def query(self, out_trade_no: str) -> TradeStatus: ...

    async def close(self, out_trade_no: str) -> None: ...

    async def refund(self, request: RefundRequest) -> RefundStatus: ...

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> RefundStatus: ...

    async def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Raises InvalidNotification; never changes anything itself."""
        ...

    def reply(self, *, accepted: bool) -> NotificationReply:
        """The answer once the notification is safely recorded (accepted) or not (the
        provider will retry)."""
        ...

    async def download_statement(self, bill_date: date) -> Statement: ...
