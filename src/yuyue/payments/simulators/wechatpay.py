"""A local WeChat Pay (API v3, direct merchant) for the demo and the tests.

It plays api.mch.weixin.qq.com closely enough that the real `wechatpayv3` library talks to it
unchanged: it checks the merchant's `Authorization: WECHATPAY2-SHA256-RSA2048 …` signature
with the merchant's public key, signs every answer with its platform key (public-key mode:
`Wechatpay-Serial` is the public key's id), and serves prepay (JSAPI, H5, Native), query,
close, refunds, the trade bill in WeChat's CSV format and its download. A small cashier page
(`GET {base}/cashier/{prepay_id}`) stands in for the WeChat client: 确认支付 marks the trade
paid and sends the notification.

Notifications go out like WeChat Pay's: an encrypted resource (AEAD_AES_256_GCM with the
APIv3 key) in a signed JSON body, first at once, then again on WeChat's schedule while the
merchant does not answer 2xx. They are sent from a background thread; tests scale the
schedule to milliseconds and use the controls (hold, release in any order, duplicate, faults,
refund outcomes, provider-only trades, bill tampering).

Mount it anywhere (the demo mounts it at /sim/wechatpay and points wechatpay_gateway_url
there); the URLs it hands out (h5_url, code_url, download_url) start with `public_base_url`,
or with the URL it was reached at when none is configured."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import heapq
import io
import itertools
import json
import logging
import os
import secrets
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import jinja2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from yuyue.kit.clock import Clock, SystemClock
from yuyue.payments.providers.wechatpay import WechatPayCredentials

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
# WeChat Pay's documented notification retries, in seconds: 15s, 15s, 30s, 3m, 10m, 20m,
# 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h.
WECHAT_RETRY_INTERVALS: tuple[float, ...] = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)
# fmt: off
BILL_COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)
BILL_SUMMARY_COLUMNS = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
    "订单总金额", "申请退款总金额",
)
# fmt: on
FEE_RATE = Decimal("0.006")

Fault = Literal["bad_signature", "stale_timestamp", "bad_ciphertext", "wrong_apiv3_key"]
RefundOutcome = Literal["SUCCESS", "ABNORMAL", "CLOSED", "PROCESSING"]


def _pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _pem_public(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True, repr=False)
class WechatPaySimulatorKeys:
    """Both sides' keys, generated at run time and never written to the repository."""

    mchid: str
    appid: str
    merchant_serial_no: str
    merchant_private_key_pem: str
    merchant_public_key_pem: str
    platform_private_key_pem: str
    platform_public_key_pem: str
    public_key_id: str
    apiv3_key: str

    def __repr__(self) -> str:
        return f"WechatPaySimulatorKeys(mchid={self.mchid!r}, appid={self.appid!r})"

    @classmethod
    def generate(
        cls, *, mchid: str = "1900000109", appid: str = "wxd678efh567hg6787"
    ) -> WechatPaySimulatorKeys:
        merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        alphabet = string.ascii_letters + string.digits
        return cls(
            mchid=mchid,
            appid=appid,
            merchant_serial_no=secrets.token_hex(20).upper(),
            merchant_private_key_pem=_pem_private(merchant),
            merchant_public_key_pem=_pem_public(merchant.public_key()),
            platform_private_key_pem=_pem_private(platform),
            platform_public_key_pem=_pem_public(platform.public_key()),
            public_key_id="PUB_KEY_ID_" + secrets.token_hex(16).upper(),
            apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
        )

    def merchant_credentials(self) -> WechatPayCredentials:
        """What the merchant (the adapter) holds."""
        return WechatPayCredentials(
            mchid=self.mchid,
            appid=self.appid,
            cert_serial_no=self.merchant_serial_no,
            private_key_pem=self.merchant_private_key_pem,
            apiv3_key=self.apiv3_key,
            public_key_pem=self.platform_public_key_pem,
            public_key_id=self.public_key_id,
        )

    def write_merchant_files(self, directory: Path) -> dict[str, Any]:
        """Writes the merchant's key files (owner-only) and answers the matching settings."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "wechatpay_private_key_file": ("merchant_key.pem", self.merchant_private_key_pem),
            "wechatpay_apiv3_key_file": ("apiv3_key.txt", self.apiv3_key),
            "wechatpay_public_key_file": ("wechatpay_public_key.pem", self.platform_public_key_pem),
        }
        settings: dict[str, Any] = {
            "wechatpay_mchid": self.mchid,
            "wechatpay_appid": self.appid,
            "wechatpay_cert_serial_no": self.merchant_serial_no,
            "wechatpay_public_key_id": self.public_key_id,
        }
        for name, (filename, content) in files.items():
            path = directory / filename
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(content)
            settings[name] = path
        return settings


@dataclass
class SimTrade:
    out_trade_no: str
    description: str
    amount_fen: int
    trade_type: str  # JSAPI, MWEB (H5), NATIVE
    notify_url: str
    prepay_id: str
    expires_at: datetime | None
    openid: str | None = None
    state: str = "NOTPAY"  # NOTPAY, SUCCESS, REFUND, CLOSED
    transaction_id: str | None = None
    paid_at: datetime | None = None
    bill_amount_fen: int | None = None  # set by tamper_bill_amount
    provider_only: bool = False


@dataclass
class SimRefund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    refund_fen: int
    total_fen: int
    reason: str | None
    notify_url: str | None
    created_at: datetime
    status: str = "PROCESSING"  # PROCESSING, SUCCESS, ABNORMAL, CLOSED
    success_time: datetime | None = None


@dataclass
class SentNotification:
    """One notification (WeChat's `id`) and what became of its deliveries."""

    event_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    url: str
    resource: dict[str, Any]
    create_time: str
    summary: str
    original_type: str
    held: bool = False


@dataclass
class DeliveryAttempt:
    event_id: str
    event_type: str
    status_code: int | None  # None when the merchant could not be reached
    fault: str | None
    at: float  # time.monotonic()


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    notification: SentNotification = field(compare=False)
    retry_index: int = field(compare=False, default=0)


class SimulatorError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


CASHIER_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信支付</title>
<style>
body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; background: #ededed;
       margin: 0; color: #111; }
main { max-width: 26rem; margin: 0 auto; padding: 2rem 1rem; text-align: center; }
.merchant { color: #555; margin: 0 0 .5rem; }
.amount { font-size: 2.5rem; font-weight: 600; margin: .5rem 0 1.5rem; }
.description { color: #333; margin-bottom: 2rem; }
button { width: 100%; padding: .9rem; font-size: 1.1rem; color: #fff; background: #07c160;
         border: 0; border-radius: .4rem; }
a.cancel { display: block; margin-top: 1rem; color: #576b95; }
.note { color: #888; font-size: .85rem; margin-top: 2rem; }
</style>
</head>
<body>
<main>
  <p class="merchant" data-testid="merchant">{{ merchant_name }}</p>
  <p class="amount" data-testid="amount">¥{{ amount }}</p>
  <p class="description" data-testid="description">{{ description }}</p>
  {% if state == "NOTPAY" and not expired %}
  <form method="post" action="{{ pay_action }}">
    <input type="hidden" name="redirect_url" value="{{ redirect_url or '' }}">
    <button type="submit">确认支付</button>
  </form>
  <a class="cancel" href="{{ cancel_url }}">取消</a>
  {% elif state in ("SUCCESS", "REFUND") %}
  <p data-testid="state">支付成功</p>
  {% if redirect_url %}<a href="{{ redirect_url }}">返回商户</a>{% endif %}
  {% elif state == "CLOSED" or expired %}
  <p data-testid="state">订单已关闭</p>
  {% if redirect_url %}<a href="{{ redirect_url }}">返回商户</a>{% endif %}
  {% endif %}
  {% if cancelled %}<p data-testid="state">已取消支付</p>{% endif %}
  <p class="note">模拟微信支付收银台，不产生真实交易</p>
</main>
</body>
</html>
"""
)


class WechatPaySimulator:
    """The simulator's state and its test controls; `app` serves it."""

    def __init__(
        self,
        *,
        keys: WechatPaySimulatorKeys,
        merchant_name: str = "预约挂号示范医院",
        public_base_url: str | None = None,
        retry_intervals: tuple[float, ...] = WECHAT_RETRY_INTERVALS,
        clock: Clock | None = None,
        delivery_timeout: float = 5.0,
        platform_certificate: bool = False,
    ) -> None:
        self.keys = keys
        self.merchant_name = merchant_name
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.retry_intervals = retry_intervals
        self.clock = clock or SystemClock()
        self.delivery_timeout = delivery_timeout
        self._merchant_key = serialization.load_pem_public_key(
            keys.merchant_public_key_pem.encode("ascii")
        )
        platform_key = serialization.load_pem_private_key(
            keys.platform_private_key_pem.encode("ascii"), password=None
        )
        assert isinstance(platform_key, rsa.RSAPrivateKey)
        self._platform_key = platform_key
        # The older scheme: answers are signed under a platform certificate's serial, and
        # the merchant downloads the certificate (encrypted with the APIv3 key).
        self.platform_certificate = platform_certificate
        self._certificate_pem: str | None = None
        self.certificate_serial: str | None = None
        if platform_certificate:
            self._make_certificate()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self.trades: dict[str, SimTrade] = {}
        self.refunds: dict[str, SimRefund] = {}
        self.notifications: dict[str, SentNotification] = {}
        self.attempts: list[DeliveryAttempt] = []
        self.requests: list[tuple[str, str]] = []  # (method, signed path) of accepted calls
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._holding = False
        self._faults: deque[Fault] = deque()
        self._request_failures: deque[tuple[str | None, int, str, str]] = deque()
        self._refund_failures: deque[tuple[int, str, str]] = deque()
        self._refund_outcomes: deque[RefundOutcome] = deque()
        self._bills: dict[str, tuple[bytes, bool]] = {}  # token → (CSV bytes, gzip)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.app = self._build_app()

    def _make_certificate(self) -> None:
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sign (simulated)")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._platform_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(self._platform_key, hashes.SHA256())
        )
        self._certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        self.certificate_serial = format(certificate.serial_number, "X")

    def _certificates(self) -> dict[str, Any]:
        if self._certificate_pem is None:
            raise SimulatorError(404, "RESOURCE_NOT_EXISTS", "商户已使用微信支付公钥")
        nonce = secrets.token_urlsafe(9)[:12]
        ciphertext = AESGCM(self.keys.apiv3_key.encode()).encrypt(
            nonce.encode(), self._certificate_pem.encode(), b"certificate"
        )
        day = timedelta(days=1)
        return {
            "data": [
                {
                    "serial_no": self.certificate_serial,
                    "effective_time": _rfc3339(datetime.now(UTC) - day),
                    "expire_time": _rfc3339(datetime.now(UTC) + 365 * day),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": base64.b64encode(ciphertext).decode(),
                    },
                }
            ]
        }

    # -- test controls ----------------------------------------------------------------------

    def pay(self, out_trade_no: str, *, openid: str | None = None) -> SimTrade:
        """What the cashier's 确认支付 does: the trade is paid and the notification leaves."""
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                raise SimulatorError(404, "ORDER_NOT_EXIST", "订单不存在")
            if trade.state in ("SUCCESS", "REFUND"):
                raise SimulatorError(400, "ORDERPAID", "该订单已支付")
            if trade.state == "CLOSED":
                raise SimulatorError(400, "ORDER_CLOSED", "订单已关闭")
            now = self.clock.now()
            if trade.expires_at is not None and now > trade.expires_at:
                raise SimulatorError(400, "ORDER_CLOSED", "订单已过期")
            trade.state = "SUCCESS"
            trade.paid_at = now
            trade.transaction_id = "4200" + _digits(24)
            trade.openid = trade.openid or openid or "o" + secrets.token_urlsafe(20)[:27]
            self._notify(
                event_type="TRANSACTION.SUCCESS",
                summary="支付成功",
                original_type="transaction",
                resource=self._transaction(trade),
                url=trade.notify_url,
                out_trade_no=trade.out_trade_no,
            )
            return trade

    def add_provider_only_trade(
        self,
        *,
        amount_fen: int,
        out_trade_no: str | None = None,
        paid_at: datetime | None = None,
        description: str = "挂号费",
    ) -> SimTrade:
        """A paid trade the merchant never created (for reconciliation); no notification."""
        with self._lock:
            number = out_trade_no or "X" + secrets.token_hex(10)
            trade = SimTrade(
                out_trade_no=number,
                description=description,
                amount_fen=amount_fen,
                trade_type="NATIVE",
                notify_url="",
                prepay_id=self._prepay_id(),
                expires_at=None,
                openid="o" + secrets.token_urlsafe(20)[:27],
                state="SUCCESS",
                transaction_id="4200" + _digits(24),
                paid_at=paid_at or self.clock.now(),
                provider_only=True,
            )
            self.trades[number] = trade
            return trade

    def tamper_bill_amount(self, out_trade_no: str, amount_fen: int) -> None:
        """The trade bill shows this amount for the trade (a mismatch to reconcile)."""
        with self._lock:
            self.trades[out_trade_no].bill_amount_fen = amount_fen

    def fail_next_request(
        self,
        *,
        status: int = 500,
        code: str = "SYSTEM_ERROR",
        message: str = "系统错误",
        path_contains: str | None = None,
    ) -> None:
        """The next API call (whose path contains `path_contains`, if given) fails so."""
        with self._lock:
            self._request_failures.append((path_contains, status, code, message))

    def fail_next_refund(
        self, *, status: int = 403, code: str = "NOT_ENOUGH", message: str = "基本账户余额不足"
    ) -> None:
        """The next refund application is refused at once (e.g. NOT_ENOUGH)."""
        with self._lock:
            self._refund_failures.append((status, code, message))

    def next_refund_outcome(self, outcome: RefundOutcome) -> None:
        """How the next accepted refund ends: ABNORMAL or CLOSED (with their notification),
        or PROCESSING until `settle_refund`. By default refunds succeed at once."""
        with self._lock:
            self._refund_outcomes.append(outcome)

    def settle_refund(self, out_refund_no: str, status: RefundOutcome = "SUCCESS") -> None:
        with self._lock:
            refund = self.refunds[out_refund_no]
            if refund.status != "PROCESSING":
                raise SimulatorError(400, "INVALID_REQUEST", "退款已结束")
            self._finish_refund(refund, status)

    def inject_fault(self, fault: Fault) -> None:
        """The next delivery attempt carries this fault; the retries after it are sound."""
        with self._lock:
            self._faults.append(fault)

    def hold(self) -> None:
        """Notifications wait until `release`."""
        with self._lock:
            self._holding = True

    def held(self) -> list[SentNotification]:
        with self._lock:
            return [n for n in self.notifications.values() if n.held]

    def release(self, *event_ids: str) -> None:
        """Sends held notifications in the order given (all, oldest first, when none is
        named: then holding ends too)."""
        with self._lock:
            if not event_ids:
                self._holding = False
                event_ids = tuple(n.event_id for n in self.notifications.values() if n.held)
            now = time.monotonic()
            for offset, event_id in enumerate(event_ids):
                notification = self.notifications[event_id]
                if notification.held:
                    notification.held = False
                    self._schedule(notification, at=now + offset * 1e-6, retry_index=0)

    def redeliver(self, event_id: str) -> None:
        """The same notification (same id) once more, as WeChat Pay sometimes does."""
        with self._lock:
            self._schedule(self.notifications[event_id], at=time.monotonic(), retry_index=0)

    def notification_for(
        self, event_id: str, fault: Fault | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body a delivery of this notification would carry."""
        with self._lock:
            return self._signed_notification(self.notifications[event_id], fault)

    def attempts_for(self, event_id: str) -> list[DeliveryAttempt]:
        with self._lock:
            return [a for a in self.attempts if a.event_id == event_id]

    def pending(self) -> int:
        """Deliveries still scheduled (held ones not counted)."""
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the trade and refund records -------------------------------------------------------

    def _prepay_id(self) -> str:
        stamp = self.clock.now().astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")
        return f"wx{stamp}{secrets.token_hex(10)}"

    def _transaction(self, trade: SimTrade) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.keys.appid,
            "mchid": self.keys.mchid,
            "out_trade_no": trade.out_trade_no,
            "trade_state": trade.state,
            "trade_state_desc": {
                "NOTPAY": "未支付",
                "SUCCESS": "支付成功",
                "REFUND": "转入退款",
                "CLOSED": "已关闭",
            }[trade.state],
            "amount": {"total": trade.amount_fen, "currency": "CNY"},
        }
        if trade.transaction_id is not None and trade.paid_at is not None:
            body.update(
                transaction_id=trade.transaction_id,
                trade_type=trade.trade_type,
                bank_type="OTHERS",
                attach="",
                success_time=_rfc3339(trade.paid_at),
                payer={"openid": trade.openid},
                amount={
                    "total": trade.amount_fen,
                    "payer_total": trade.amount_fen,
                    "currency": "CNY",
                    "payer_currency": "CNY",
                },
            )
        return body

    def _refund_body(self, refund: SimRefund) -> dict[str, Any]:
        trade = self.trades[refund.out_trade_no]
        body: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": trade.transaction_id,
            "out_trade_no": trade.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": _rfc3339(refund.created_at),
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                "total": refund.total_fen,
                "refund": refund.refund_fen,
                "payer_total": refund.total_fen,
                "payer_refund": refund.refund_fen,
                "settlement_total": refund.total_fen,
                "settlement_refund": refund.refund_fen,
                "discount_refund": 0,
                "currency": "CNY",
            },
            "promotion_detail": [],
        }
        if refund.success_time is not None:
            body["success_time"] = _rfc3339(refund.success_time)
        return body

    def _finish_refund(self, refund: SimRefund, status: str) -> None:
        refund.status = status
        if status == "SUCCESS":
            refund.success_time = self.clock.now()
        if not refund.notify_url:
            return
        resource: dict[str, Any] = {
            "mchid": self.keys.mchid,
            "out_trade_no": refund.out_trade_no,
            "transaction_id": self.trades[refund.out_trade_no].transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": status,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": refund.total_fen,
                "refund": refund.refund_fen,
                "payer_total": refund.total_fen,
                "payer_refund": refund.refund_fen,
            },
        }
        if refund.success_time is not None:
            resource["success_time"] = _rfc3339(refund.success_time)
        self._notify(
            event_type=f"REFUND.{status}",
            summary={"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}[status],
            original_type="refund",
            resource=resource,
            url=refund.notify_url,
            out_trade_no=refund.out_trade_no,
            out_refund_no=refund.out_refund_no,
        )

    # -- notifications ----------------------------------------------------------------------

    def _notify(
        self,
        *,
        event_type: str,
        summary: str,
        original_type: str,
        resource: dict[str, Any],
        url: str,
        out_trade_no: str,
        out_refund_no: str | None = None,
    ) -> SentNotification:
        notification = SentNotification(
            event_id=str(uuid.uuid4()),
            event_type=event_type,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            url=url,
            resource=resource,
            create_time=_rfc3339(self.clock.now()),
            summary=summary,
            original_type=original_type,
            held=self._holding,
        )
        self.notifications[notification.event_id] = notification
        if not notification.held:
            self._schedule(notification, at=time.monotonic(), retry_index=0)
        return notification

    def _schedule(self, notification: SentNotification, *, at: float, retry_index: int) -> None:
        heapq.heappush(self._queue, _Due(at, next(self._seq), notification, retry_index))
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._deliver_forever, name="wechatpay-sim-notify", daemon=True
            )
            self._thread.start()
        self._wake.notify_all()

    def _signed_notification(
        self, notification: SentNotification, fault: Fault | None
    ) -> tuple[dict[str, str], bytes]:
        nonce = secrets.token_urlsafe(9)[:12]
        plaintext = json.dumps(notification.resource, ensure_ascii=False).encode("utf-8")
        key = self.keys.apiv3_key.encode("utf-8")
        if fault == "wrong_apiv3_key":
            key = secrets.token_urlsafe(24)[:32].encode("ascii")
        ciphertext = AESGCM(key).encrypt(
            nonce.encode("ascii"), plaintext, notification.original_type.encode("ascii")
        )
        if fault == "bad_ciphertext":
            ciphertext = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
        body = json.dumps(
            {
                "id": notification.event_id,
                "create_time": notification.create_time,
                "resource_type": "encrypt-resource",
                "event_type": notification.event_type,
                "summary": notification.summary,
                "resource": {
                    "original_type": notification.original_type,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
                    "associated_data": notification.original_type,
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        )
        timestamp = int(time.time()) - (600 if fault == "stale_timestamp" else 0)
        headers = self._signature_headers(body, timestamp=timestamp)
        if fault == "bad_signature":
            forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            headers["Wechatpay-Signature"] = self._sign(
                f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body}\n", forger
            )
        headers["Content-Type"] = "application/json"
        return headers, body.encode("utf-8")

    def _deliver_forever(self) -> None:
        with httpx.Client(timeout=self.delivery_timeout) as client:
            while True:
                with self._lock:
                    while not self._stopping:
                        now = time.monotonic()
                        if self._queue and self._queue[0].at <= now:
                            break
                        wait = self._queue[0].at - now if self._queue else None
                        self._wake.wait(timeout=wait)
                    if self._stopping:
                        return
                    due = heapq.heappop(self._queue)
                    fault = self._faults.popleft() if self._faults else None
                    headers, body = self._signed_notification(due.notification, fault)
                self._attempt(client, due, fault, headers, body)

    def _attempt(
        self,
        client: httpx.Client,
        due: _Due,
        fault: Fault | None,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        notification = due.notification
        status: int | None
        try:
            status = client.post(notification.url, content=body, headers=headers).status_code
        except httpx.HTTPError as error:
            log.info("wechatpay simulator: notify %s failed: %s", notification.event_id, error)
            status = None
        with self._lock:
            self.attempts.append(
                DeliveryAttempt(
                    event_id=notification.event_id,
                    event_type=notification.event_type,
                    status_code=status,
                    fault=fault,
                    at=time.monotonic(),
                )
            )
            if status is not None and 200 <= status < 300:
                return
            if due.retry_index < len(self.retry_intervals):
                self._schedule(
                    notification,
                    at=time.monotonic() + self.retry_intervals[due.retry_index],
                    retry_index=due.retry_index + 1,
                )

    # -- signing ----------------------------------------------------------------------------

    @staticmethod
    def _sign(message: str, key: rsa.RSAPrivateKey) -> str:
        signature = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def _signature_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(16).upper()
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": self._sign(f"{stamp}\n{nonce}\n{body}\n", self._platform_key),
            "Wechatpay-Serial": self.certificate_serial or self.keys.public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            "Request-ID": str(uuid.uuid4()),
        }

    def _answer(self, status: int, payload: Mapping[str, Any] | None = None) -> Response:
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        return Response(
            content=body.encode("utf-8"),
            status_code=status,
            media_type="application/json; charset=utf-8" if payload is not None else None,
            headers=self._signature_headers(body),
        )

    def _error(self, error: SimulatorError) -> Response:
        return self._answer(error.status, {"code": error.code, "message": error.message})

    def _check_authorization(self, request: Request, signed_path: str, body: bytes) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, params = header.partition(" ")
        if scheme != SIGNATURE_TYPE:
            raise SimulatorError(401, "SIGN_ERROR", "Authorization 认证类型不正确")
        fields: dict[str, str] = {}
        for part in params.split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value.strip('"')
        if fields.get("mchid") != self.keys.mchid:
            raise SimulatorError(401, "SIGN_ERROR", "商户号不正确")
        if fields.get("serial_no") != self.keys.merchant_serial_no:
            raise SimulatorError(401, "SIGN_ERROR", "商户证书序列号不正确")
        try:
            stamp = int(fields.get("timestamp", ""))
        except ValueError as error:
            raise SimulatorError(401, "SIGN_ERROR", "时间戳不正确") from error
        if abs(time.time() - stamp) > 300:
            raise SimulatorError(401, "SIGN_ERROR", "请求已过期")
        message = (
            f"{request.method}\n{signed_path}\n{stamp}\n{fields.get('nonce_str', '')}\n"
            f"{body.decode('utf-8')}\n"
        )
        try:
            signature = base64.b64decode(fields.get("signature", ""), validate=True)
            assert isinstance(self._merchant_key, rsa.RSAPublicKey)
            self._merchant_key.verify(
                signature, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError) as error:
            raise SimulatorError(401, "SIGN_ERROR", "签名错误") from error

    # -- the HTTP face ----------------------------------------------------------------------

    @staticmethod
    def _route_path(request: Request) -> str:
        path: str = request.scope["path"]
        root: str = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        return path

    def _base_url(self, request: Request) -> str:
        if self.public_base_url:
            return self.public_base_url
        full = str(request.url.replace(query=""))
        route = self._route_path(request)
        return full[: -len(route)] if full.endswith(route) else full

    def _build_app(self) -> FastAPI:
        simulator = self

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            simulator.close()

        app = FastAPI(title="WeChat Pay simulator", lifespan=lifespan, openapi_url=None)
        app.state.simulator = self

        @app.api_route("/v3/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
        async def v3(request: Request, rest: str) -> Response:
            body = await request.body()
            signed_path = "/v3/" + rest
            if request.url.query:
                signed_path += "?" + request.url.query
            try:
                simulator._check_authorization(request, signed_path, body)
                with simulator._lock:
                    for index, failure in enumerate(simulator._request_failures):
                        if failure[0] is None or failure[0] in signed_path:
                            del simulator._request_failures[index]
                            raise SimulatorError(*failure[1:])
                    simulator.requests.append((request.method, signed_path))
                return simulator._dispatch(request, rest, body)
            except SimulatorError as error:
                return simulator._error(error)

        @app.get("/cashier/{prepay_id}", response_class=HTMLResponse, include_in_schema=False)
        async def cashier(
            request: Request, prepay_id: str, redirect_url: str | None = None
        ) -> Response:
            return simulator._cashier(request, prepay_id, redirect_url, cancelled=False)

        @app.get("/cashier/{prepay_id}/cancel", include_in_schema=False)
        async def cancel(
            request: Request, prepay_id: str, redirect_url: str | None = None
        ) -> Response:
            if redirect_url:
                return RedirectResponse(redirect_url, status_code=303)
            return simulator._cashier(request, prepay_id, None, cancelled=True)

        @app.post("/cashier/{prepay_id}/pay", include_in_schema=False)
        async def cashier_pay(request: Request, prepay_id: str) -> Response:
            form = await request.form()
            redirect_url = str(form.get("redirect_url") or "") or None
            try:
                simulator.pay(simulator._trade_by_prepay(prepay_id).out_trade_no)
            except SimulatorError as error:
                return HTMLResponse(f"<p>{error.message}</p>", status_code=error.status)
            if redirect_url:
                return RedirectResponse(redirect_url, status_code=303)
            return RedirectResponse(
                f"{simulator._base_url(request)}/cashier/{prepay_id}", status_code=303
            )

        return app

    def _trade_by_prepay(self, prepay_id: str) -> SimTrade:
        with self._lock:
            for trade in self.trades.values():
                if trade.prepay_id == prepay_id:
                    return trade
        raise SimulatorError(404, "ORDER_NOT_EXIST", "订单不存在")

    def _cashier(
        self, request: Request, prepay_id: str, redirect_url: str | None, *, cancelled: bool
    ) -> Response:
        try:
            trade = self._trade_by_prepay(prepay_id)
        except SimulatorError:
            return HTMLResponse("<p>订单不存在</p>", status_code=404)
        base = f"{self._base_url(request)}/cashier/{prepay_id}"
        query = f"?{urlencode({'redirect_url': redirect_url})}" if redirect_url else ""
        expired = trade.expires_at is not None and self.clock.now() > trade.expires_at
        html = CASHIER_PAGE.render(
            merchant_name=self.merchant_name,
            amount=_yuan(trade.amount_fen),
            description=trade.description,
            state=trade.state,
            expired=expired and trade.state == "NOTPAY",
            pay_action=f"{base}/pay",
            cancel_url=f"{base}/cancel{query}",
            redirect_url=redirect_url,
            cancelled=cancelled,
        )
        return HTMLResponse(html)

    def _dispatch(self, request: Request, rest: str, body: bytes) -> Response:
        parts = rest.split("/")
        payload: dict[str, Any] = {}
        if body:
            try:
                payload = json.loads(body)
            except ValueError as error:
                raise SimulatorError(400, "PARAM_ERROR", "请求体不是 JSON") from error
        method = request.method
        if method == "POST" and parts[:2] == ["pay", "transactions"] and len(parts) == 3:
            return self._prepay(request, parts[2], payload)
        if parts[:3] == ["pay", "transactions", "out-trade-no"] and len(parts) >= 4:
            if method == "GET" and len(parts) == 4:
                self._check_mchid(request.query_params.get("mchid"))
                with self._lock:
                    return self._answer(200, self._transaction(self._trade(parts[3])))
            if method == "POST" and len(parts) == 5 and parts[4] == "close":
                self._check_mchid(payload.get("mchid"))
                return self._close(parts[3])
        if method == "GET" and parts[:3] == ["pay", "transactions", "id"] and len(parts) == 4:
            self._check_mchid(request.query_params.get("mchid"))
            with self._lock:
                for trade in self.trades.values():
                    if trade.transaction_id == parts[3]:
                        return self._answer(200, self._transaction(trade))
            raise SimulatorError(404, "ORDER_NOT_EXIST", "订单不存在")
        if parts[:3] == ["refund", "domestic", "refunds"]:
            if method == "POST" and len(parts) == 3:
                return self._refund(payload)
            if method == "GET" and len(parts) == 4:
                with self._lock:
                    refund = self.refunds.get(parts[3])
                    if refund is None:
                        raise SimulatorError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
                    return self._answer(200, self._refund_body(refund))
        if method == "GET" and parts == ["certificates"]:
            return self._answer(200, self._certificates())
        if method == "GET" and parts == ["bill", "tradebill"]:
            return self._trade_bill(request)
        if method == "GET" and parts == ["billdownload", "file"]:
            with self._lock:
                found = self._bills.get(request.query_params.get("token", ""))
            if found is None:
                raise SimulatorError(404, "RESOURCE_NOT_EXISTS", "账单下载地址无效")
            data, zipped = found
            return Response(
                gzip.compress(data) if zipped else data,
                media_type="application/octet-stream",
            )
        raise SimulatorError(404, "RESOURCE_NOT_EXISTS", "接口不存在")

    def _check_mchid(self, mchid: Any) -> None:
        if mchid != self.keys.mchid:
            raise SimulatorError(400, "MCH_NOT_EXISTS", "商户号不存在")

    def _trade(self, out_trade_no: str) -> SimTrade:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise SimulatorError(404, "ORDER_NOT_EXIST", "订单不存在")
        return trade

    def _prepay(self, request: Request, kind: str, payload: Mapping[str, Any]) -> Response:
        trade_types = {"jsapi": "JSAPI", "h5": "MWEB", "native": "NATIVE"}
        if kind not in trade_types:
            raise SimulatorError(404, "RESOURCE_NOT_EXISTS", "接口不存在")
        if payload.get("appid") != self.keys.appid:
            raise SimulatorError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        self._check_mchid(payload.get("mchid"))
        out_trade_no = str(payload.get("out_trade_no", ""))
        amount = payload.get("amount") or {}
        total = amount.get("total")
        if not 6 <= len(out_trade_no) <= 32:
            raise SimulatorError(400, "PARAM_ERROR", "out_trade_no 长度不正确")
        if not isinstance(total, int) or total <= 0:
            raise SimulatorError(400, "PARAM_ERROR", "amount.total 不正确")
        if not payload.get("description") or not payload.get("notify_url"):
            raise SimulatorError(400, "PARAM_ERROR", "缺少 description 或 notify_url")
        openid = (payload.get("payer") or {}).get("openid")
        if kind == "jsapi" and not openid:
            raise SimulatorError(400, "PARAM_ERROR", "JSAPI 支付必须传 openid")
        if kind == "h5" and not (payload.get("scene_info") or {}).get("h5_info"):
            raise SimulatorError(400, "PARAM_ERROR", "H5 支付必须传 scene_info.h5_info")
        expires_at = None
        if payload.get("time_expire"):
            try:
                expires_at = datetime.fromisoformat(str(payload["time_expire"])).astimezone(UTC)
            except ValueError as error:
                raise SimulatorError(400, "PARAM_ERROR", "time_expire 格式不正确") from error
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is not None:
                if trade.state in ("SUCCESS", "REFUND"):
                    raise SimulatorError(400, "ORDERPAID", "该订单已支付")
                if trade.state == "CLOSED":
                    raise SimulatorError(400, "ORDER_CLOSED", "订单已关闭")
                if trade.amount_fen != total:
                    raise SimulatorError(400, "INVALID_REQUEST", "商户订单号重复")
            else:
                trade = SimTrade(
                    out_trade_no=out_trade_no,
                    description=str(payload["description"]),
                    amount_fen=total,
                    trade_type=trade_types[kind],
                    notify_url=str(payload["notify_url"]),
                    prepay_id=self._prepay_id(),
                    expires_at=expires_at,
                    openid=openid,
                )
                self.trades[out_trade_no] = trade
            cashier = f"{self._base_url(request)}/cashier/{trade.prepay_id}"
        if kind == "h5":
            return self._answer(200, {"h5_url": cashier})
        if kind == "native":
            return self._answer(200, {"code_url": cashier})
        return self._answer(200, {"prepay_id": trade.prepay_id})

    def _close(self, out_trade_no: str) -> Response:
        with self._lock:
            trade = self._trade(out_trade_no)
            if trade.state in ("SUCCESS", "REFUND"):
                raise SimulatorError(400, "ORDERPAID", "该订单已支付")
            trade.state = "CLOSED"
        return self._answer(204)

    def _refund(self, payload: Mapping[str, Any]) -> Response:
        out_refund_no = str(payload.get("out_refund_no", ""))
        amount = payload.get("amount") or {}
        refund_fen, total_fen = amount.get("refund"), amount.get("total")
        if not out_refund_no or not isinstance(refund_fen, int) or not isinstance(total_fen, int):
            raise SimulatorError(400, "PARAM_ERROR", "缺少 out_refund_no 或金额")
        with self._lock:
            existing = self.refunds.get(out_refund_no)
            if existing is not None:  # the same number again is the same refund
                return self._answer(200, self._refund_body(existing))
            trade = self._trade(str(payload.get("out_trade_no", "")))
            if trade.state not in ("SUCCESS", "REFUND"):
                raise SimulatorError(400, "INVALID_REQUEST", "订单未支付，不能退款")
            if total_fen != trade.amount_fen:
                raise SimulatorError(400, "PARAM_ERROR", "订单金额与原订单不一致")
            refunded = sum(
                r.refund_fen
                for r in self.refunds.values()
                if r.out_trade_no == trade.out_trade_no and r.status in ("PROCESSING", "SUCCESS")
            )
            if refund_fen <= 0 or refunded + refund_fen > trade.amount_fen:
                raise SimulatorError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            if self._refund_failures:
                raise SimulatorError(*self._refund_failures.popleft())
            refund = SimRefund(
                out_refund_no=out_refund_no,
                out_trade_no=trade.out_trade_no,
                refund_id="5030" + _digits(25),
                refund_fen=refund_fen,
                total_fen=total_fen,
                reason=payload.get("reason"),
                notify_url=payload.get("notify_url"),
                created_at=self.clock.now(),
            )
            self.refunds[out_refund_no] = refund
            trade.state = "REFUND"
            answer = self._answer(200, self._refund_body(refund))
            outcome = self._refund_outcomes.popleft() if self._refund_outcomes else "SUCCESS"
            if outcome != "PROCESSING":
                self._finish_refund(refund, outcome)
        return answer

    def _trade_bill(self, request: Request) -> Response:
        raw_date = request.query_params.get("bill_date", "")
        try:
            bill_date = date.fromisoformat(raw_date)
        except ValueError as error:
            raise SimulatorError(400, "PARAM_ERROR", "bill_date 格式不正确") from error
        if request.query_params.get("bill_type", "ALL") != "ALL":
            raise SimulatorError(400, "PARAM_ERROR", "模拟器只提供 ALL 类型账单")
        with self._lock:
            today = self.clock.now().astimezone(SHANGHAI).date()
            if bill_date >= today:
                raise SimulatorError(400, "NO_STATEMENT_EXIST", "账单尚未生成")
            data = self.trade_bill_csv(bill_date)
            if data is None:
                raise SimulatorError(400, "NO_STATEMENT_EXIST", "当日无交易，账单不存在")
            token = secrets.token_urlsafe(24)
            self._bills[token] = (data, request.query_params.get("tar_type") == "GZIP")
        return self._answer(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(data).hexdigest(),
                "download_url": f"{self._base_url(request)}/v3/billdownload/file?token={token}",
            },
        )

    def trade_bill_csv(self, bill_date: date) -> bytes | None:
        """The ALL trade bill of a day (Asia/Shanghai) as WeChat Pay writes it, or None when
        nothing happened that day."""

        def on_day(instant: datetime | None) -> bool:
            return instant is not None and instant.astimezone(SHANGHAI).date() == bill_date

        def local(instant: datetime) -> str:
            return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")

        def fee(fen: int) -> str:
            return str((Decimal(fen) * FEE_RATE / 100).quantize(Decimal("0.00001")))

        rows: list[tuple[datetime, list[str]]] = []
        settled = refunded = ordered = 0
        fees = Decimal(0)
        with self._lock:
            for trade in self.trades.values():
                if trade.paid_at is None or not on_day(trade.paid_at):
                    continue
                billed = (
                    trade.bill_amount_fen if trade.bill_amount_fen is not None else trade.amount_fen
                )
                settled += billed
                ordered += billed
                fees += Decimal(fee(billed))
                rows.append(
                    (
                        trade.paid_at,
                        [
                            local(trade.paid_at), self.keys.appid, self.keys.mchid, "0", "",
                            trade.transaction_id or "", trade.out_trade_no, trade.openid or "",
                            trade.trade_type, "SUCCESS", "OTHERS", "CNY", _yuan(billed), "0.00",
                            "0", "0", "0.00", "0.00", "", "", trade.description, "", fee(billed),
                            "0.60%", _yuan(billed), "0.00", "",
                        ],
                    )
                )  # fmt: skip
            for refund in self.refunds.values():
                if not on_day(refund.created_at):
                    continue
                trade = self.trades[refund.out_trade_no]
                refunded += refund.refund_fen
                fees -= Decimal(fee(refund.refund_fen))
                rows.append(
                    (
                        refund.created_at,
                        [
                            local(refund.created_at), self.keys.appid, self.keys.mchid, "0", "",
                            trade.transaction_id or "", trade.out_trade_no, trade.openid or "",
                            trade.trade_type, "REFUND", "OTHERS", "CNY", "0.00", "0.00",
                            refund.refund_id, refund.out_refund_no, _yuan(refund.refund_fen),
                            "0.00", "ORIGINAL", refund.status, trade.description, "",
                            "-" + fee(refund.refund_fen), "0.60%", "0.00",
                            _yuan(refund.refund_fen), "",
                        ],
                    )
                )  # fmt: skip
        if not rows:
            return None
        rows.sort(key=lambda row: row[0])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(BILL_COLUMNS)
        for _, cells in rows:
            writer.writerow(["`" + cell for cell in cells])
        writer.writerow(BILL_SUMMARY_COLUMNS)
        summary = [
            str(len(rows)), _yuan(settled), _yuan(refunded), "0.00",
            str(fees.quantize(Decimal("0.00001"))), _yuan(ordered), _yuan(refunded),
        ]  # fmt: skip
        writer.writerow(["`" + cell for cell in summary])
        return out.getvalue().encode("utf-8")


def build_wechatpay_simulator(
    *,
    keys: WechatPaySimulatorKeys,
    merchant_name: str = "预约挂号示范医院",
    public_base_url: str | None = None,
    retry_intervals: tuple[float, ...] = WECHAT_RETRY_INTERVALS,
    clock: Clock | None = None,
    platform_certificate: bool = False,
) -> FastAPI:
    """The simulator as an ASGI app; its controls are `app.state.simulator`
    (see `wechatpay_simulator_of`)."""
    return WechatPaySimulator(
        keys=keys,
        merchant_name=merchant_name,
        public_base_url=public_base_url,
        retry_intervals=retry_intervals,
        clock=clock,
        platform_certificate=platform_certificate,
    ).app


def wechatpay_simulator_of(app: FastAPI) -> WechatPaySimulator:
    simulator = app.state.simulator
    assert isinstance(simulator, WechatPaySimulator)
    return simulator


__all__ = [
    "WECHAT_RETRY_INTERVALS",
    "DeliveryAttempt",
    "SentNotification",
    "SimulatorError",
    "WechatPaySimulator",
    "WechatPaySimulatorKeys",
    "build_wechatpay_simulator",
    "wechatpay_simulator_of",
]
