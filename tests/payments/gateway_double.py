"""A test double of the Gateway protocol that behaves like a provider: it keeps the orders
it was asked to create, takes a payment for one (producing the signed notification a real
provider would send), refunds (idempotent by out_refund_no), closes, and fails on demand.

Notifications are signed with HMAC-SHA256 under a key made at run time, so a forged or
altered body fails `verify_notification` the way a bad RSA signature does."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from yuyue.payments.gateway import (
    Checkout,
    GatewayError,
    InvalidNotification,
    Notification,
    NotificationKind,
    NotificationReply,
    PayMethod,
    PayRequest,
    Provider,
    RefundRequest,
    RefundState,
    RefundStatus,
    Statement,
    TradeState,
    TradeStatus,
)

SIGNATURE = "X-Double-Signature"


@dataclass
class DoubleOrder:
    request: PayRequest
    state: TradeState = TradeState.NOT_PAID
    transaction_id: str | None = None


@dataclass
class GatewayDouble:
    provider: Provider = Provider.WECHATPAY
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    orders: dict[str, DoubleOrder] = field(default_factory=dict)
    refunds: dict[str, RefundStatus] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    # Failures on demand: each call pops the next error of its queue, if any.
    create_errors: list[GatewayError] = field(default_factory=list)
    refund_errors: list[GatewayError] = field(default_factory=list)
    close_errors: list[GatewayError] = field(default_factory=list)
    # What a refund answers when no error is queued.
    refund_answer: RefundState = RefundState.SUCCEEDED
    _events: int = 0

    # --- the provider's side ---------------------------------------------------------------

    async def create(self, request: PayRequest) -> Checkout:
        self.calls.append(("create", request.out_trade_no))
        if self.create_errors:
            raise self.create_errors.pop(0)
        self.orders.setdefault(request.out_trade_no, DoubleOrder(request))
        if request.method is PayMethod.NATIVE:  # a QR code's content, as WeChat Pay's code_url
            return Checkout(
                method=request.method,
                qr_content=f"weixin://wxpay/bizpayurl?pr={request.out_trade_no[:10]}",
                provider_reference=f"prepay-{request.out_trade_no[:8]}",
            )
        return Checkout(
            method=request.method,
            redirect_url=f"https://cashier.test/{request.out_trade_no}",
            provider_reference=f"prepay-{request.out_trade_no[:8]}",
        )

    async def query(self, out_trade_no: str) -> TradeStatus:
        self.calls.append(("query", out_trade_no))
        order = self.orders[out_trade_no]
        return TradeStatus(
            out_trade_no, order.state, order.request.amount_fen, order.transaction_id
        )

    async def close(self, out_trade_no: str) -> None:
        self.calls.append(("close", out_trade_no))
        if self.close_errors:
            raise self.close_errors.pop(0)
        order = self.orders.get(out_trade_no)
        if order is not None and order.state is TradeState.NOT_PAID:
            order.state = TradeState.CLOSED

    async def refund(self, request: RefundRequest) -> RefundStatus:
        self.calls.append(("refund", request.out_refund_no))
        if self.refund_errors:
            raise self.refund_errors.pop(0)
        known = self.refunds.get(request.out_refund_no)
        if known is not None:
            return known  # the same out_refund_no never pays twice
        status = RefundStatus(
            request.out_refund_no,
            self.refund_answer,
            refund_fen=request.refund_fen,
            refund_id=f"rf-{request.out_refund_no[-8:]}",
            finished_at=datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
            if self.refund_answer is not RefundState.PROCESSING
            else None,
            failure="ACCOUNT_FROZEN" if self.refund_answer is RefundState.FAILED else None,
        )
        self.refunds[request.out_refund_no] = status
        return status

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        return self.refunds[out_refund_no]

    async def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        signature = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE.lower(), "")
        expected = hmac.new(self.key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidNotification("bad signature")
        data = json.loads(body)
        if data["kind"] == "payment":
            return Notification(
                kind=NotificationKind.PAYMENT,
                event_id=data["event_id"],
                trade=TradeStatus(
                    data["out_trade_no"],
                    TradeState(data["state"]),
                    amount_fen=data["amount_fen"],
                    transaction_id=data["transaction_id"],
                    paid_at=datetime.fromisoformat(data["paid_at"]),
                ),
            )
        return Notification(
            kind=NotificationKind.REFUND,
            event_id=data["event_id"],
            refund=RefundStatus(
                data["out_refund_no"],
                RefundState(data["state"]),
                refund_fen=data["amount_fen"],
                refund_id=data["refund_id"],
            ),
            out_trade_no=data["out_trade_no"],
        )

    def reply(self, *, accepted: bool) -> NotificationReply:
        if accepted:
            return NotificationReply(204, b"", "text/plain")
        return NotificationReply(
            500, b'{"code":"FAIL","message":"not recorded"}', "application/json"
        )

    async def download_statement(self, bill_date: date) -> Statement:
        return Statement(self.provider, bill_date, ())

    # --- what a test does as the payer ------------------------------------------------------

    def sign(self, body: bytes) -> dict[str, str]:
        return {SIGNATURE: hmac.new(self.key, body, hashlib.sha256).hexdigest()}

    def pay(
        self, out_trade_no: str, *, amount_fen: int | None = None, at: datetime | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The payer pays: the order is paid here and the notification (headers, body) that
        the provider would send is returned. `amount_fen` forges another amount, signed."""
        order = self.orders[out_trade_no]
        order.state = TradeState.PAID
        order.transaction_id = order.transaction_id or f"tx{secrets.token_hex(8)}"
        self._events += 1
        body = json.dumps(
            {
                "kind": "payment",
                "event_id": f"ev-{self._events}",
                "out_trade_no": out_trade_no,
                "state": "paid",
                "amount_fen": order.request.amount_fen if amount_fen is None else amount_fen,
                "transaction_id": order.transaction_id,
                "paid_at": (at or datetime(2026, 11, 20, 2, 5, tzinfo=UTC)).isoformat(),
            }
        ).encode()
        return self.sign(body), body

    def refund_notification(
        self, out_trade_no: str, out_refund_no: str, state: RefundState, amount_fen: int
    ) -> tuple[dict[str, str], bytes]:
        self._events += 1
        body = json.dumps(
            {
                "kind": "refund",
                "event_id": f"ev-{self._events}",
                "out_trade_no": out_trade_no,
                "out_refund_no": out_refund_no,
                "state": state.value,
                "amount_fen": amount_fen,
                "refund_id": f"rf-{out_refund_no[-8:]}",
            }
        ).encode()
        return self.sign(body), body
