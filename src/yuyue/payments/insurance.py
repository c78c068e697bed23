"""Medical insurance mobile payment (医保移动支付): pre-authorisation, settlement, release.

The requirement: hold the full fee, settle after insurance, release the rest. The insurer
pays its share from the pool (统筹) and the insured person's own account (个人账户); what is
left is the patient's own payment (自付), which the payments service collects through another
provider. `Settlement` gives the three parts, which always add up to the settled total.

The protocol. The national platform's interface is not public in full; this is the one the
adapter (`providers/insurance.py`) and the simulator (`simulators/insurance.py`) speak, shaped
like the provincial platforms' published ones so that a real adapter changes only here.

- JSON over HTTPS, UTF-8, every operation a `POST` to `<base>/v1/<operation>`:

  | operation | request | answer |
  | --- | --- | --- |
  | `preauth` | `out_trade_no`, `insured_token`, `total_fen` | `auth_no`, `held_fen` |
  | `settle` | `auth_no`, `total_fen` | `settlement_no`, the three parts `*_fen`, `settled_at` |
  | `release` | `auth_no` | `released_fen` (0 when nothing was left) |
  | `refund` | `settlement_no`, `reason` | `refund_no` and the parts given back |
  | `statement` | `bill_date` (`YYYY-MM-DD`, Asia/Shanghai) | `lines` |

  A statement line is a settlement (`payment`) or its reversal (`refund`) on that day, with
  `out_trade_no`, `settlement_no`, `refund_no` (refunds), `at`, the parts and `amount_fen`:
  the insurer's share (pool and account), the money that moves through the platform. The
  statement of a day is ready once the day is over on the platform's clock.

  `insured_token` is the platform's token for the insured person (from the patient's
  authorisation in the insurance app), never an identity number. Every operation is
  idempotent: preauth by `out_trade_no`, settle and release by `auth_no`, refund by
  `settlement_no` (a settlement is refunded whole, as the platform reverses it); repeating
  a call with the same values answers as the first time did, so after a timeout the caller
  simply asks again.
- A refusal is an HTTP 4xx (or 5xx for the platform's own faults) with `code` and `message`.
- Signatures. Each request carries `X-Insurance-Org` (the hospital's code at the platform),
  `X-Insurance-Timestamp` (Unix seconds), `X-Insurance-Nonce` (32 random hex digits, used once)
  and `X-Insurance-Signature`: Base64(HMAC-SHA256(key, canonical)) where canonical is

      <first line>\\n<org code>\\n<timestamp>\\n<nonce>\\n<hex SHA-256 of the body>\\n

  and the first line is `POST /v1/<operation>` for a request. The key is the secret the
  platform issued to the hospital. The platform refuses a bad signature (`SIGNATURE_INVALID`,
  401), a timestamp more than 5 minutes from its clock (`TIMESTAMP_EXPIRED`, 401) and a nonce
  it has already seen within that window (`NONCE_REUSED`, 401).
- Answers (refusals too) are signed the same way with the first line `<HTTP status>
  /v1/<operation>` and the request's nonce echoed, so an answer cannot be moved to another
  request or have its status changed. The adapter checks signature, timestamp and nonce; an
  answer that fails is a retryable `GatewayError` (`ANSWER_SIGNATURE_INVALID`): whether the
  operation happened is unknown, and asking again (idempotent) is how to learn it.
- Notifications (`settlement.succeeded`, `settlement.refunded`) are POSTed to the hospital
  signed the same way with the first line `NOTIFY`; `verify_notification` checks them.

Money is integer fen; instants on the wire are ISO 8601 with an offset, aware UTC here."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from yuyue.payments.gateway import (
    Notification,
    NotificationKind,
    Provider,
    RefundState,
    RefundStatus,
    Statement,
    TradeState,
    TradeStatus,
)

API_VERSION = "v1"
HEADER_ORG = "X-Insurance-Org"
HEADER_TIMESTAMP = "X-Insurance-Timestamp"
HEADER_NONCE = "X-Insurance-Nonce"
HEADER_SIGNATURE = "X-Insurance-Signature"
TIMESTAMP_WINDOW = timedelta(minutes=5)
NOTIFY_LINE = "NOTIFY"


def operation_path(operation: str) -> str:
    return f"/{API_VERSION}/{operation}"


def canonical_string(
    *, first_line: str, org_code: str, timestamp: str, nonce: str, body: bytes
) -> str:
    digest = hashlib.sha256(body).hexdigest()
    return f"{first_line}\n{org_code}\n{timestamp}\n{nonce}\n{digest}\n"


def sign(
    key: bytes, *, first_line: str, org_code: str, timestamp: str, nonce: str, body: bytes
) -> str:
    canonical = canonical_string(
        first_line=first_line, org_code=org_code, timestamp=timestamp, nonce=nonce, body=body
    )
    return base64.b64encode(hmac.new(key, canonical.encode(), hashlib.sha256).digest()).decode()


def signed_headers(
    key: bytes, *, first_line: str, org_code: str, now: datetime, nonce: str, body: bytes
) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        HEADER_ORG: org_code,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(
            key,
            first_line=first_line,
            org_code=org_code,
            timestamp=timestamp,
            nonce=nonce,
            body=body,
        ),
    }


class SignatureProblem(StrEnum):
    SIGNATURE_INVALID = "SIGNATURE_INVALID"  # missing headers, another org, or a bad HMAC
    TIMESTAMP_EXPIRED = "TIMESTAMP_EXPIRED"


def check_signature(
    key: bytes,
    headers: Mapping[str, str],
    *,
    first_line: str,
    org_code: str,
    body: bytes,
    now: datetime,
) -> SignatureProblem | None:
    """None when `headers` sign `body` for `first_line` with `key`, from `org_code`, within
    the timestamp window around `now`. `headers` may be any case-insensitive mapping."""
    lowered = {name.lower(): value for name, value in headers.items()}
    org = lowered.get(HEADER_ORG.lower())
    timestamp = lowered.get(HEADER_TIMESTAMP.lower())
    nonce = lowered.get(HEADER_NONCE.lower())
    signature = lowered.get(HEADER_SIGNATURE.lower())
    if org != org_code or not timestamp or not nonce or not signature:
        return SignatureProblem.SIGNATURE_INVALID
    expected = sign(
        key, first_line=first_line, org_code=org, timestamp=timestamp, nonce=nonce, body=body
    )
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return SignatureProblem.SIGNATURE_INVALID
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError):
        return SignatureProblem.SIGNATURE_INVALID
    if abs(now - signed_at) > TIMESTAMP_WINDOW:
        return SignatureProblem.TIMESTAMP_EXPIRED
    return None


@dataclass(frozen=True)
class Preauthorization:
    auth_no: str  # the platform's number of the hold
    out_trade_no: str
    held_fen: int


@dataclass(frozen=True)
class Settlement:
    """How the platform settled a fee: the pool's share, the personal account's share and
    the patient's own payment, which add up to `total_fen`."""

    settlement_no: str
    auth_no: str
    out_trade_no: str
    pool_fen: int  # 统筹基金
    account_fen: int  # 个人账户
    self_pay_fen: int  # 自付, collected by the hospital through another provider
    settled_at: datetime

    def __post_init__(self) -> None:
        if min(self.pool_fen, self.account_fen, self.self_pay_fen) < 0:
            raise ValueError("a settlement's parts are never negative")

    @property
    def total_fen(self) -> int:
        return self.pool_fen + self.account_fen + self.self_pay_fen

    @property
    def insurer_fen(self) -> int:
        """What the insurance pays (pool and personal account)."""
        return self.pool_fen + self.account_fen


@dataclass(frozen=True)
class SettlementRefund:
    refund_no: str
    settlement_no: str
    out_trade_no: str
    pool_fen: int
    account_fen: int
    self_pay_fen: int
    refunded_at: datetime

    @property
    def total_fen(self) -> int:
        return self.pool_fen + self.account_fen + self.self_pay_fen

    @property
    def insurer_fen(self) -> int:
        return self.pool_fen + self.account_fen


class InsuranceEvent(StrEnum):
    SETTLED = "settlement.succeeded"
    REFUNDED = "settlement.refunded"


@dataclass(frozen=True)
class InsuranceNotification:
    event_id: str
    event: InsuranceEvent
    settlement: Settlement
    refund: SettlementRefund | None = None  # for REFUNDED

    def as_notification(self) -> Notification:
        """The gateway's uniform notification, for the payments service's common path. Its
        amounts are the insurer's share, the money that moves through this provider (as in
        its statement); the patient's own payment is a charge of another provider."""
        if self.refund is None:
            return Notification(
                kind=NotificationKind.PAYMENT,
                event_id=self.event_id,
                trade=TradeStatus(
                    out_trade_no=self.settlement.out_trade_no,
                    state=TradeState.PAID,
                    amount_fen=self.settlement.insurer_fen,
                    transaction_id=self.settlement.settlement_no,
                    paid_at=self.settlement.settled_at,
                ),
            )
        return Notification(
            kind=NotificationKind.REFUND,
            event_id=self.event_id,
            out_trade_no=self.settlement.out_trade_no,
            refund=RefundStatus(
                out_refund_no=self.refund.refund_no,
                state=RefundState.SUCCEEDED,
                refund_fen=self.refund.insurer_fen,
                refund_id=self.refund.refund_no,
                finished_at=self.refund.refunded_at,
            ),
        )


class InsuranceGateway(Protocol):
    provider: Provider

    async def preauthorize(
        self, *, out_trade_no: str, insured_token: str, total_fen: int
    ) -> Preauthorization:
        """Holds `total_fen` against the insured person's cover."""
        ...

    async def settle(self, *, auth_no: str, total_fen: int) -> Settlement:
        """Settles at most the held amount; the parts add up to `total_fen` exactly."""
        ...

    async def release(self, auth_no: str) -> None:
        """Releases whatever is held and not settled; idempotent."""
        ...

    async def refund_settlement(self, *, settlement_no: str, reason: str) -> SettlementRefund:
        """Reverses a settlement whole; idempotent."""
        ...

    async def verify_notification(
        self, headers: Mapping[str, str], body: bytes
    ) -> InsuranceNotification:
        """Raises InvalidNotification; never changes anything itself."""
        ...

    async def download_statement(self, bill_date: date) -> Statement:
        """Raises StatementNotReady before the day is over."""
        ...
