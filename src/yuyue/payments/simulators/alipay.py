"""A local server that plays Alipay's open API gateway (openapi.alipay.com/gateway.do) well
enough for `python-alipay-sdk` to talk to it unchanged, for the demo and the tests.

It checks the application's RSA2 signature on every request, answers in Alipay's JSON shape
(`{"<method>_response": {...}, "sign": "..."}`) signed with its own Alipay key, shows a
zh-CN cashier page for WAP and PAGE payments, sends asynchronous notifications as signed form
posts and retries them until the body is exactly `success`, and serves the daily bill as a
zip of GBK CSV files in Alipay's layout.

Its URLs are absolute from `public_base_url`, so it can be served on its own or mounted
under a prefix of another application (the demo mounts it at /sim/alipay and points
alipay_gateway_url at {prefix}/gateway.do).

Test controls live on `AlipaySimulator` (reach it with `simulator_of(app)`): pay a trade,
hold and release notifications (in order or reversed), delay the next one, deliver one
again, sign the next one badly, make the next call fail, add a trade only Alipay knows and
change an amount in the bill. Nothing here is a real key: `AlipaySimulatorKeys.generate()`
makes throwaway ones."""

from __future__ import annotations

import base64
import csv
import heapq
import html
import io
import itertools
import json
import logging
import secrets
import threading
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Alipay's retry intervals after an answer that is not `success`: 4m, 10m, 10m, 1h, 2h, 6h, 15h.
ALIPAY_RETRY_SCHEDULE: tuple[float, ...] = (240, 600, 600, 3600, 7200, 21600, 54000)
PAY_METHODS = ("alipay.trade.wap.pay", "alipay.trade.page.pay")

_SUB_MESSAGES = {
    "ACQ.TRADE_NOT_EXIST": "交易不存在",
    "ACQ.TRADE_STATUS_ERROR": "交易状态不合法",
    "ACQ.TRADE_HAS_CLOSE": "交易已经关闭",
    "ACQ.TRADE_HAS_SUCCESS": "交易已被支付",
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": "卖家余额不足",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "退款金额超限",
    "ACQ.SYSTEM_ERROR": "系统错误",
    "aop.ACQ.SYSTEM_ERROR": "系统繁忙",
    "ACQ.INVALID_PARAMETER": "参数无效",
    "ACQ.CONTEXT_INCONSISTENT": "交易信息被篡改",
    "isp.bill_not_exist": "账单不存在",
    "isv.invalid-signature": "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
    "isv.invalid-app-id": "无效的AppID参数",
    "isv.invalid-method": "不存在的方法名",
    "isv.invalid-timestamp": "非法的时间戳参数",
}
# How far a request's `timestamp` (Beijing wall-clock time) may be from Alipay's clock: a
# server that stamps its own local time elsewhere is refused, as Alipay refuses it.
TIMESTAMP_TOLERANCE = timedelta(minutes=10)

_EXPIRED = "订单已超过付款时间，请返回商户重新下单。"
_CLOSED = "订单已超过付款时间或已关闭，请返回商户重新下单。"

_DETAIL_COLUMNS = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
)


# --- keys and signatures ------------------------------------------------------------------


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private, public


@dataclass(frozen=True)
class AlipaySimulatorKeys:
    """Alipay's key pair (the simulator signs with it; the adapter verifies with its public
    half), the application's key pair (the adapter signs; the simulator verifies) and the
    application's id. Throwaway keys, made at run time, never stored in the repository."""

    app_id: str
    alipay_private_key_pem: str = field(repr=False)
    alipay_public_key_pem: str = field(repr=False)
    app_private_key_pem: str = field(repr=False)
    app_public_key_pem: str = field(repr=False)

    @classmethod
    def generate(cls, *, app_id: str = "2021000100000001") -> AlipaySimulatorKeys:
        alipay_private, alipay_public = _pem_pair()
        app_private, app_public = _pem_pair()
        return cls(
            app_id=app_id,
            alipay_private_key_pem=alipay_private,
            alipay_public_key_pem=alipay_public,
            app_private_key_pem=app_private,
            app_public_key_pem=app_public,
        )


def signing_string(fields: Mapping[str, str], *, exclude: Iterable[str]) -> str:
    """Alipay's string to sign: non-empty fields but the excluded ones, sorted, `k=v&…`."""
    skip = set(exclude)
    return "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if k not in skip and v != "")


class _Signer:
    def __init__(self, public_pem: str, private_pem: str | None = None) -> None:
        public = serialization.load_pem_public_key(public_pem.encode())
        assert isinstance(public, rsa.RSAPublicKey)
        self._public = public
        self._private: rsa.RSAPrivateKey | None = None
        if private_pem is not None:
            private = serialization.load_pem_private_key(private_pem.encode(), password=None)
            assert isinstance(private, rsa.RSAPrivateKey)
            self._private = private

    def sign(self, message: str) -> str:
        assert self._private is not None
        signature = self._private.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def verify(self, message: str, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=False)
            self._public.verify(raw, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


# --- records ------------------------------------------------------------------------------


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _fen(text: str) -> int:
    return int(Decimal(text.strip()) * 100)


def _local(instant: datetime, *, millis: bool = False) -> str:
    local = instant.astimezone(SHANGHAI)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if millis else text


@dataclass
class SimRefund:
    out_request_no: str
    refund_fen: int
    at: datetime
    reason: str


@dataclass
class SimTrade:
    out_trade_no: str
    trade_no: str
    subject: str
    total_fen: int
    method: str
    notify_url: str | None
    return_url: str | None
    quit_url: str | None
    time_expire: datetime | None
    created_at: datetime
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    buyer_id: str = ""
    known_to_merchant: bool = True
    refunds: dict[str, SimRefund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        return sum(refund.refund_fen for refund in self.refunds.values())


@dataclass
class DeliveryAttempt:
    at: datetime
    status_code: int | None
    body: str  # the receiver's body, or the network error


@dataclass
class Delivery:
    """One asynchronous notification and every attempt to deliver it."""

    notify_id: str
    url: str
    fields: dict[str, str]
    kind: str  # "payment" or "refund"
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    delivered: bool = False  # the receiver answered exactly `success`
    gave_up: bool = False  # the schedule ran out

    @property
    def body(self) -> bytes:
        return urlencode(self.fields).encode("ascii")


@dataclass
class _Failure:
    method: str | None
    code: str
    sub_code: str
    http_status: int | None = None


# --- the simulator ------------------------------------------------------------------------


class AlipaySimulator:
    """Alipay's state and behaviour behind the ASGI app, and the tests' controls."""

    def __init__(
        self,
        *,
        keys: AlipaySimulatorKeys,
        public_base_url: str,
        merchant_name: str = "模拟医院预约挂号",
        retry_schedule: Sequence[float] = ALIPAY_RETRY_SCHEDULE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.keys = keys
        self.public_base_url = public_base_url.rstrip("/")
        self.merchant_name = merchant_name
        self.retry_schedule = tuple(retry_schedule)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.seller_id = "2088" + "".join(secrets.choice("0123456789") for _ in range(12))
        self._alipay = _Signer(keys.alipay_public_key_pem, keys.alipay_private_key_pem)
        self._app = _Signer(keys.app_public_key_pem)  # verifies the application's requests
        self._lock = threading.RLock()
        self.trades: dict[str, SimTrade] = {}
        self.deliveries: list[Delivery] = []
        self._failures: list[_Failure] = []
        self._bill_amounts: dict[str, int] = {}
        self._bills: dict[str, bytes] = {}
        self._serial = itertools.count(1)
        # the notifier
        self._queue: list[tuple[float, int, Delivery, bool]] = []  # due, seq, delivery, once
        self._wake = threading.Condition(self._lock)
        self._held: list[tuple[Delivery, bool]] = []
        self._holding = False
        self._next_delay = 0.0
        self._next_bad_signature = False
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- test controls

    def pay(self, out_trade_no: str, *, buyer_id: str | None = None) -> SimTrade:
        """The patient pays on the cashier: the trade is TRADE_SUCCESS and the notification
        goes out. The trade must exist (its cashier was opened)."""
        with self._lock:
            trade = self._live_trade(out_trade_no)
            if trade is None:
                raise KeyError(f"no trade {out_trade_no}: open its cashier first")
            if trade.status == "TRADE_SUCCESS":
                return trade
            if trade.status != "WAIT_BUYER_PAY":
                raise ValueError(f"trade {out_trade_no} is {trade.status}")
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = self.clock()
            trade.buyer_id = buyer_id or self._buyer_id()
            self._notify(trade, kind="payment")
            return trade

    def add_provider_only_trade(
        self,
        out_trade_no: str,
        amount_fen: int,
        *,
        paid_at: datetime | None = None,
        subject: str = "未知订单",
    ) -> SimTrade:
        """A paid trade the merchant never heard of (no notification), for reconciliation."""
        now = paid_at or self.clock()
        trade = SimTrade(
            out_trade_no=out_trade_no,
            trade_no=self._trade_no(now),
            subject=subject,
            total_fen=amount_fen,
            method="alipay.trade.wap.pay",
            notify_url=None,
            return_url=None,
            quit_url=None,
            time_expire=None,
            created_at=now,
            status="TRADE_SUCCESS",
            paid_at=now,
            buyer_id=self._buyer_id(),
            known_to_merchant=False,
        )
        with self._lock:
            self.trades[out_trade_no] = trade
        return trade

    def tamper_bill_amount(self, out_trade_no: str, amount_fen: int) -> None:
        """The bill will show this amount for the trade's payment line."""
        with self._lock:
            self._bill_amounts[out_trade_no] = amount_fen

    def fail_next(
        self,
        sub_code: str,
        *,
        method: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        """The next call (of `method`, or any) is refused with `sub_code` (code 40004, or
        20000 for aop.* errors), or answered with a bare HTTP error status."""
        default_code = "20000" if sub_code.startswith(("aop.", "isp.unknow")) else "40004"
        with self._lock:
            self._failures.append(
                _Failure(method, code or default_code, sub_code, http_status=http_status)
            )

    def fail_next_refund(self, sub_code: str = "ACQ.SELLER_BALANCE_NOT_ENOUGH") -> None:
        self.fail_next(sub_code, method="alipay.trade.refund")

    def system_error_once(self, method: str | None = None) -> None:
        self.fail_next("ACQ.SYSTEM_ERROR", method=method)

    def hold_notifications(self) -> None:
        """Notifications fall due but wait until `release_notifications`."""
        with self._lock:
            self._holding = True

    def release_notifications(self, *, reverse: bool = False) -> None:
        """Sends the held notifications now, in the order they fell due or reversed."""
        with self._lock:
            self._holding = False
            held = list(reversed(self._held)) if reverse else list(self._held)
            self._held.clear()
            now = time.monotonic()
            for delivery, once in held:
                heapq.heappush(self._queue, (now, next(self._serial), delivery, once))
            self._wake.notify_all()

    def delay_next_notification(self, seconds: float) -> None:
        """The next notification's first attempt waits this long (a late delivery)."""
        with self._lock:
            self._next_delay = seconds

    def sign_next_notification_badly(self) -> None:
        """The next notification carries a signature over other content."""
        with self._lock:
            self._next_bad_signature = True

    def deliver_again(self, notify_id: str) -> None:
        """Sends a notification once more, as Alipay does when it is unsure (a duplicate)."""
        with self._lock:
            delivery = next(d for d in self.deliveries if d.notify_id == notify_id)
            self._enqueue(delivery, delay=0.0, once=True)

    def deliveries_for(self, out_trade_no: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.fields.get("out_trade_no") == out_trade_no]

    def stop(self) -> None:
        """Stops the notifier thread (pending retries are dropped)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread = None
            self._stopping = False
            self._queue.clear()

    # -- ids

    def _trade_no(self, at: datetime) -> str:
        digits = "".join(secrets.choice("0123456789") for _ in range(10))
        return f"{at.astimezone(SHANGHAI):%Y%m%d}22001{next(self._serial):05d}{digits}"

    @staticmethod
    def _buyer_id() -> str:
        return "2088" + "".join(secrets.choice("0123456789") for _ in range(12))

    def _live_trade(self, out_trade_no: str) -> SimTrade | None:
        """The trade, closed first if it waited past time_expire."""
        trade = self.trades.get(out_trade_no)
        if (
            trade is not None
            and trade.status == "WAIT_BUYER_PAY"
            and trade.time_expire is not None
            and self.clock() >= trade.time_expire
        ):
            trade.status = "TRADE_CLOSED"
            trade.closed_at = trade.time_expire
        return trade

    # -- signatures

    def verify_request(self, params: Mapping[str, str]) -> str | None:
        """None when the application signed these parameters; else the refusal's sub_code."""
        if params.get("app_id") != self.keys.app_id:
            return "isv.invalid-app-id"
        if params.get("sign_type") != "RSA2":
            return "isv.invalid-signature"
        message = signing_string(params, exclude=("sign",))
        if not self._app.verify(message, params.get("sign", "")):
            return "isv.invalid-signature"
        try:
            stamped = datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return "isv.invalid-timestamp"
        if abs(stamped.replace(tzinfo=SHANGHAI) - self.clock()) > TIMESTAMP_TOLERANCE:
            return "isv.invalid-timestamp"
        return None

    def sign_fields(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Notifications and return parameters: signed over all but sign and sign_type."""
        signed = dict(fields)
        signed["sign_type"] = "RSA2"
        signed["sign"] = self._alipay.sign(signing_string(signed, exclude=("sign", "sign_type")))
        return signed

    def answer(self, method: str, content: Mapping[str, Any], *, signed: bool = True) -> bytes:
        """Alipay's JSON answer: the content under `<method>_response`, signed over its exact
        text (what the library finds and verifies)."""
        key = method.replace(".", "_") + "_response"
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        if not signed:
            return f'{{"{key}":{text}}}'.encode()
        return f'{{"{key}":{text},"sign":"{self._alipay.sign(text)}"}}'.encode()

    # -- the open API

    def _refusal(self, sub_code: str, code: str = "40004") -> dict[str, str]:
        msg = {
            "40004": "Business Failed",
            "40002": "Invalid Arguments",
            "20000": "Service Currently Unavailable",
        }.get(code, "Business Failed")
        return {
            "code": code,
            "msg": msg,
            "sub_code": sub_code,
            "sub_msg": _SUB_MESSAGES.get(sub_code, sub_code),
        }

    def _take_failure(self, method: str) -> _Failure | None:
        for index, failure in enumerate(self._failures):
            if failure.method in (None, method):
                return self._failures.pop(index)
        return None

    def handle_api(self, params: Mapping[str, str]) -> tuple[int, bytes]:
        method = params.get("method", "")
        refused = self.verify_request(params)
        if refused is not None:
            return 200, self.answer(
                method or "error", self._refusal(refused, "40002"), signed=False
            )
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            return 200, self.answer(method, self._refusal("ACQ.INVALID_PARAMETER", "40002"))
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "alipay.trade.query": self._trade_query,
            "alipay.trade.close": self._trade_close,
            "alipay.trade.refund": self._trade_refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }
        handler = handlers.get(method)
        if handler is None:
            body = json.dumps({"error_response": self._refusal("isv.invalid-method", "40002")})
            return 200, body.encode()
        with self._lock:
            failure = self._take_failure(method)
            if failure is not None:
                if failure.http_status is not None:
                    return failure.http_status, b"<html><body>Bad Gateway</body></html>"
                return 200, self.answer(method, self._refusal(failure.sub_code, failure.code))
            content = handler(biz)
        return 200, self.answer(method, content)

    def _find(self, biz: Mapping[str, Any]) -> SimTrade | None:
        if biz.get("out_trade_no"):
            return self._live_trade(str(biz["out_trade_no"]))
        trade_no = biz.get("trade_no")
        for trade in self.trades.values():
            if trade.trade_no == trade_no:
                return self._live_trade(trade.out_trade_no)
        return None

    def _trade_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._refusal("ACQ.TRADE_NOT_EXIST")
        content: dict[str, Any] = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": _yuan(trade.total_fen),
        }
        if trade.paid_at is not None:
            content.update(
                buyer_logon_id="138****8888",
                buyer_user_id=trade.buyer_id,
                buyer_pay_amount=_yuan(trade.total_fen),
                receipt_amount=_yuan(trade.total_fen),
                invoice_amount=_yuan(trade.total_fen),
                point_amount="0.00",
                send_pay_date=_local(trade.paid_at),
            )
        return content

    def _trade_close(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._refusal("ACQ.TRADE_NOT_EXIST")
        if trade.status != "WAIT_BUYER_PAY":
            return self._refusal("ACQ.TRADE_STATUS_ERROR")
        trade.status = "TRADE_CLOSED"
        trade.closed_at = self.clock()
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }

    def _trade_refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._refusal("ACQ.TRADE_NOT_EXIST")
        try:
            refund_fen = _fen(str(biz["refund_amount"]))
        except (KeyError, ArithmeticError, ValueError):
            return self._refusal("ACQ.INVALID_PARAMETER")
        out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        done = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "138****8888",
            "buyer_user_id": trade.buyer_id,
        }
        earlier = trade.refunds.get(out_request_no)
        if earlier is not None:
            if earlier.refund_fen != refund_fen:
                return self._refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
            # The same request again: nothing moves, the answer says so.
            return {
                **done,
                "fund_change": "N",
                "refund_fee": _yuan(trade.refunded_fen),
                "gmt_refund_pay": _local(earlier.at),
            }
        if trade.status == "WAIT_BUYER_PAY":
            return self._refusal("ACQ.TRADE_STATUS_ERROR")
        if trade.status == "TRADE_CLOSED":
            return self._refusal("ACQ.TRADE_HAS_CLOSE")
        if refund_fen <= 0 or trade.refunded_fen + refund_fen > trade.total_fen:
            return self._refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
        refund = SimRefund(
            out_request_no, refund_fen, self.clock(), str(biz.get("refund_reason") or "")
        )
        trade.refunds[out_request_no] = refund
        if trade.refunded_fen == trade.total_fen:
            trade.status = "TRADE_CLOSED"
            trade.closed_at = refund.at
        self._notify(trade, kind="refund", refund=refund)
        return {
            **done,
            "fund_change": "Y",
            "refund_fee": _yuan(trade.refunded_fen),
            "send_back_fee": _yuan(refund_fen),
            "gmt_refund_pay": _local(refund.at),
        }

    def _refund_query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._refusal("ACQ.TRADE_NOT_EXIST")
        refund = trade.refunds.get(str(biz.get("out_request_no") or ""))
        if refund is None:
            return {"code": "10000", "msg": "Success"}  # Alipay's "no such refund"
        content: dict[str, Any] = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": refund.out_request_no,
            "total_amount": _yuan(trade.total_fen),
            "refund_amount": _yuan(refund.refund_fen),
            "refund_status": "REFUND_SUCCESS",
        }
        if "gmt_refund_pay" in (biz.get("query_options") or []):
            content["gmt_refund_pay"] = _local(refund.at, millis=True)
        return content

    def _bill_url(self, biz: dict[str, Any]) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            return self._refusal("ACQ.INVALID_PARAMETER")
        try:
            day = date.fromisoformat(str(biz.get("bill_date")))
        except ValueError:
            return self._refusal("ACQ.INVALID_PARAMETER")
        content = self.bill_zip(day)
        if content is None:
            return self._refusal("isp.bill_not_exist")
        token = secrets.token_urlsafe(16)
        self._bills[token] = content
        url = f"{self.public_base_url}/downloadBillFile.resource?bizType=trade&fileId={token}"
        return {"code": "10000", "msg": "Success", "bill_download_url": url}

    # -- the bill

    def bill_zip(self, day: date) -> bytes | None:
        """Alipay's trade bill for a Beijing day: a zip of the 业务明细 and 业务明细(汇总) CSV
        files in GBK, or None when nothing happened that day."""
        with self._lock:
            rows: list[dict[str, str]] = []
            for trade in self.trades.values():
                if trade.paid_at is not None and trade.paid_at.astimezone(SHANGHAI).date() == day:
                    amount = self._bill_amounts.get(trade.out_trade_no, trade.total_fen)
                    rows.append(
                        self._bill_row(trade, "交易", trade.created_at, trade.paid_at, amount, "")
                    )
                for refund in trade.refunds.values():
                    if refund.at.astimezone(SHANGHAI).date() == day:
                        rows.append(
                            self._bill_row(
                                trade,
                                "退款",
                                refund.at,
                                refund.at,
                                -refund.refund_fen,
                                refund.out_request_no,
                            )
                        )
        if not rows:
            return None
        rows.sort(key=lambda row: row["完成时间"])
        stamp = f"{day:%Y%m%d}"
        detail = self._detail_csv(day, rows)
        summary = self._summary_csv(day, rows)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in (
                (f"{self.seller_id}_{stamp}_业务明细.csv", detail),
                (f"{self.seller_id}_{stamp}_业务明细(汇总).csv", summary),
            ):
                info = _GbkNamedZipInfo(name, date_time=(day.year, day.month, day.day, 9, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, text.encode("gbk"))
        return buffer.getvalue()

    def _bill_row(
        self,
        trade: SimTrade,
        business: str,
        created: datetime,
        finished: datetime,
        amount_fen: int,
        out_request_no: str,
    ) -> dict[str, str]:
        row = dict.fromkeys(_DETAIL_COLUMNS, "")
        row.update(
            {
                "支付宝交易号": trade.trade_no,
                "商户订单号": trade.out_trade_no,
                "业务类型": business,
                "商品名称": trade.subject,
                "创建时间": _local(created),
                "完成时间": _local(finished),
                "对方账户": "138****8888",
                "订单金额（元）": _yuan(amount_fen),
                "商家实收（元）": _yuan(amount_fen),
                "支付宝红包（元）": "0.00",
                "集分宝（元）": "0.00",
                "支付宝优惠（元）": "0.00",
                "商家优惠（元）": "0.00",
                "券核销金额（元）": "0.00",
                "商家红包消费金额（元）": "0.00",
                "卡消费金额（元）": "0.00",
                "退款批次号/请求号": out_request_no,
                "服务费（元）": "0.00",
                "分润（元）": "0.00",
            }
        )
        return row

    def _detail_csv(self, day: date, rows: list[dict[str, str]]) -> str:
        out = io.StringIO()
        start, end = f"{day:%Y年%m月%d日}", f"{day + timedelta(days=1):%Y年%m月%d日}"
        out.write("#支付宝业务明细查询\r\n")
        out.write(f"#账号：[{self.seller_id}0156]\r\n")
        out.write(f"#起始日期：[{start} 00:00:00]   终止日期：[{end} 00:00:00]\r\n")
        out.write(
            "#-----------------------------------------业务明细列表"
            "----------------------------------------\r\n"
        )
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(_DETAIL_COLUMNS)
        for row in rows:
            # Alipay pads every cell with a tab so spreadsheets keep long numbers as text.
            writer.writerow([row[column] + "\t" for column in _DETAIL_COLUMNS])
        payments = [r for r in rows if r["业务类型"] == "交易"]
        refunds = [r for r in rows if r["业务类型"] == "退款"]
        paid = sum(_fen(r["商家实收（元）"]) for r in payments)
        refunded = sum(_fen(r["商家实收（元）"]) for r in refunds)
        out.write(
            "#-----------------------------------------业务明细列表结束"
            "------------------------------------\r\n"
        )
        out.write(f"#交易合计：{len(payments)}笔，商家实收：￥{_yuan(paid)}元，\r\n")
        out.write(f"#退款合计：{len(refunds)}笔，商家实收：￥{_yuan(refunded)}元，\r\n")
        out.write(f"#导出时间：[{self.clock().astimezone(SHANGHAI):%Y年%m月%d日 %H:%M:%S}]\r\n")
        return out.getvalue()

    def _summary_csv(self, day: date, rows: list[dict[str, str]]) -> str:
        payments = [r for r in rows if r["业务类型"] == "交易"]
        refunds = [r for r in rows if r["业务类型"] == "退款"]
        total = sum(_fen(r["商家实收（元）"]) for r in rows)
        out = io.StringIO()
        out.write("#支付宝业务汇总查询\r\n")
        out.write(f"#账号：[{self.seller_id}0156]\r\n")
        out.write(f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]\r\n")
        out.write(
            "#-----------------------------------------业务汇总列表"
            "----------------------------------------\r\n"
        )
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [
                "门店编号",
                "门店名称",
                "交易订单总笔数",
                "退款订单总笔数",
                "订单金额（元）",
                "商家实收（元）",
                "服务费（元）",
                "实收净额（元）",
            ]
        )
        writer.writerow(
            [
                "合计",
                "",
                len(payments),
                len(refunds),
                _yuan(total),
                _yuan(total),
                "0.00",
                _yuan(total),
            ]
        )
        out.write(
            "#-----------------------------------------业务汇总列表结束"
            "------------------------------------\r\n"
        )
        return out.getvalue()

    def bill_file(self, token: str) -> bytes | None:
        with self._lock:
            return self._bills.get(token)

    # -- the cashier

    def open_cashier(self, params: Mapping[str, str]) -> tuple[int, str]:
        """A WAP or PAGE payment request from the patient's browser: the cashier page."""
        refused = self.verify_request(params)
        if refused is not None:
            return 400, _page("支付请求无效", f"<p>{html.escape(_SUB_MESSAGES[refused])}</p>")
        try:
            biz = json.loads(params.get("biz_content") or "{}")
            out_trade_no = str(biz["out_trade_no"])
            total_fen = _fen(str(biz["total_amount"]))
            subject = str(biz["subject"])
            expire_text = biz.get("time_expire")
            time_expire = (
                datetime.strptime(expire_text, "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=SHANGHAI)
                .astimezone(UTC)
                if expire_text
                else None
            )
        except (KeyError, ValueError, ArithmeticError):
            return 400, _page("支付请求无效", "<p>参数无效</p>")
        now = self.clock()
        with self._lock:
            trade = self._live_trade(out_trade_no)
            if trade is None:
                if time_expire is not None and now >= time_expire:
                    return 400, _page("订单已过期", f"<p>{_EXPIRED}</p>")
                trade = SimTrade(
                    out_trade_no=out_trade_no,
                    trade_no=self._trade_no(now),
                    subject=subject,
                    total_fen=total_fen,
                    method=params.get("method", PAY_METHODS[0]),
                    notify_url=params.get("notify_url"),
                    return_url=params.get("return_url"),
                    quit_url=biz.get("quit_url"),
                    time_expire=time_expire,
                    created_at=now,
                )
                self.trades[out_trade_no] = trade
            elif trade.total_fen != total_fen or trade.subject != subject:
                inconsistent = _SUB_MESSAGES["ACQ.CONTEXT_INCONSISTENT"]
                return 400, _page("支付请求无效", f"<p>{inconsistent}</p>")
        return self.cashier_page(out_trade_no)

    def cashier_page(self, out_trade_no: str) -> tuple[int, str]:
        with self._lock:
            trade = self._live_trade(out_trade_no)
        if trade is None:
            return 404, _page("交易不存在", "<p>交易不存在</p>")
        if trade.status == "TRADE_SUCCESS":
            return 200, _page("订单已支付", "<p>该订单已支付成功，请勿重复付款。</p>")
        if trade.status == "TRADE_CLOSED":
            return 400, _page("订单已关闭", f"<p>{_CLOSED}</p>")
        base = self.public_base_url
        path = quote(trade.out_trade_no, safe="")
        expiry = (
            f'<p class="expire">请在 {_local(trade.time_expire)} 前完成付款</p>'
            if trade.time_expire
            else ""
        )
        body = f"""
<p class="merchant">收款方：{html.escape(self.merchant_name)}</p>
<p class="subject">{html.escape(trade.subject)}</p>
<p class="amount">¥ <strong>{_yuan(trade.total_fen)}</strong></p>
<p class="order">订单号：{html.escape(trade.out_trade_no)}</p>
{expiry}
<form method="post" action="{base}/cashier/{path}/pay">
  <button type="submit">确认付款</button>
</form>
<p><a href="{base}/cashier/{path}/cancel">取消</a></p>"""
        return 200, _page("支付宝收银台", body)

    def confirm(self, out_trade_no: str) -> tuple[int, str, str | None]:
        """The 确认付款 button: pays, then the browser goes back to return_url with Alipay's
        signed synchronous return parameters. (status, page, redirect)"""
        with self._lock:
            trade = self._live_trade(out_trade_no)
            if trade is None:
                return 404, _page("交易不存在", "<p>交易不存在</p>"), None
            if trade.status == "TRADE_CLOSED":
                return 400, _page("订单已关闭", "<p>订单已超过付款时间或已关闭。</p>"), None
            self.pay(out_trade_no)
            fields = {
                "charset": "utf-8",
                "out_trade_no": trade.out_trade_no,
                "method": f"{trade.method}.return",
                "total_amount": _yuan(trade.total_fen),
                "trade_no": trade.trade_no,
                "auth_app_id": self.keys.app_id,
                "version": "1.0",
                "app_id": self.keys.app_id,
                "seller_id": self.seller_id,
                "timestamp": _local(self.clock()),
            }
            return_url = trade.return_url
        if not return_url:
            return 200, _page("支付成功", "<p>支付成功</p>"), None
        separator = "&" if "?" in return_url else "?"
        return 303, "", return_url + separator + urlencode(self.sign_fields(fields))

    def cancel(self, out_trade_no: str) -> tuple[int, str, str | None]:
        with self._lock:
            trade = self.trades.get(out_trade_no)
            target = (trade.quit_url or trade.return_url) if trade else None
        if target:
            return 303, "", target
        return 200, _page("已取消付款", "<p>您已取消付款，可返回商户页面。</p>"), None

    # -- notifications

    def _notify(self, trade: SimTrade, *, kind: str, refund: SimRefund | None = None) -> None:
        if not trade.notify_url:
            return
        now = self.clock()
        fields = {
            "notify_time": _local(now),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(18),
            "app_id": self.keys.app_id,
            "auth_app_id": self.keys.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": _yuan(trade.total_fen),
            "receipt_amount": _yuan(trade.total_fen),
            "invoice_amount": _yuan(trade.total_fen),
            "buyer_pay_amount": _yuan(trade.total_fen),
            "point_amount": "0.00",
            "buyer_id": trade.buyer_id,
            "seller_id": self.seller_id,
            "subject": trade.subject,
            "gmt_create": _local(trade.created_at),
            "gmt_payment": _local(trade.paid_at) if trade.paid_at else "",
            "fund_bill_list": json.dumps(
                [{"amount": _yuan(trade.total_fen), "fundChannel": "ALIPAYACCOUNT"}],
                separators=(",", ":"),
            ),
        }
        if refund is not None:
            fields["refund_fee"] = _yuan(trade.refunded_fen)
            fields["gmt_refund"] = _local(refund.at, millis=True)
            fields["out_biz_no"] = refund.out_request_no
            if trade.closed_at is not None:
                fields["gmt_close"] = _local(trade.closed_at)
        fields = {k: v for k, v in fields.items() if v != ""}
        signed = self.sign_fields(fields)
        if self._next_bad_signature:
            self._next_bad_signature = False
            signed["sign"] = self._alipay.sign("forged&" + signing_string(fields, exclude=()))
        delivery = Delivery(
            notify_id=fields["notify_id"], url=trade.notify_url, fields=signed, kind=kind
        )
        self.deliveries.append(delivery)
        delay, self._next_delay = self._next_delay, 0.0
        self._enqueue(delivery, delay=delay, once=False)

    def _enqueue(self, delivery: Delivery, *, delay: float, once: bool) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._serial), delivery, once))
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="alipay-sim-notify", daemon=True)
            self._thread.start()
        self._wake.notify_all()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while True:
                with self._lock:
                    while not self._stopping:
                        if self._queue and self._queue[0][0] <= time.monotonic():
                            break
                        wait = self._queue[0][0] - time.monotonic() if self._queue else None
                        self._wake.wait(timeout=wait)
                    if self._stopping:
                        return
                    _, _, delivery, once = heapq.heappop(self._queue)
                    if self._holding:
                        self._held.append((delivery, once))
                        continue
                self._attempt(http, delivery, once=once)

    def _attempt(self, http: httpx.Client, delivery: Delivery, *, once: bool) -> None:
        try:
            response = http.post(
                delivery.url,
                content=delivery.body,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
            attempt = DeliveryAttempt(self.clock(), response.status_code, response.text)
        except httpx.HTTPError as exc:
            attempt = DeliveryAttempt(self.clock(), None, type(exc).__name__)
        with self._lock:
            delivery.attempts.append(attempt)
            if attempt.body == "success":
                delivery.delivered = True
                return
            if once or delivery.delivered:
                return
            retries = sum(1 for _ in delivery.attempts) - 1
            if retries >= len(self.retry_schedule):
                delivery.gave_up = True
                logger.info("alipay simulator: gave up notifying %s", delivery.notify_id)
                return
            self._enqueue(delivery, delay=self.retry_schedule[retries], once=False)


class _GbkNamedZipInfo(zipfile.ZipInfo):
    """Alipay names the files in its zip in GBK, without the UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own name
        return self.filename.encode("gbk"), self.flag_bits


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - 支付宝（模拟）</title></head>
<body><main>
<h1>{html.escape(title)}</h1>
{body}
<p class="note">此页面由本地模拟器提供，不涉及真实资金。</p>
</main></body>
</html>"""


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def simulator_of(app: FastAPI) -> AlipaySimulator:
    simulator: AlipaySimulator = app.state.alipay
    return simulator


def build_alipay_simulator(
    *,
    keys: AlipaySimulatorKeys,
    public_base_url: str,
    merchant_name: str = "模拟医院预约挂号",
    retry_schedule: Sequence[float] = ALIPAY_RETRY_SCHEDULE,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The ASGI app playing Alipay. `public_base_url` is where it is reachable (with any
    mount prefix), e.g. http://127.0.0.1:8000/sim/alipay; its gateway is {that}/gateway.do."""
    simulator = AlipaySimulator(
        keys=keys,
        public_base_url=public_base_url,
        merchant_name=merchant_name,
        retry_schedule=retry_schedule,
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        simulator.stop()

    app = FastAPI(title="Alipay simulator", lifespan=lifespan, openapi_url=None)
    app.state.alipay = simulator

    @app.api_route("/gateway.do", methods=["GET", "POST"])
    async def gateway(request: Request) -> Response:
        params = await _params(request)
        if params.get("method") in PAY_METHODS:
            status, page = simulator.open_cashier(params)
            return HTMLResponse(page, status_code=status)
        status, body = simulator.handle_api(params)
        return Response(body, status_code=status, media_type="application/json;charset=utf-8")

    @app.get("/cashier/{out_trade_no}")
    async def cashier(out_trade_no: str) -> Response:
        status, page = simulator.cashier_page(out_trade_no)
        return HTMLResponse(page, status_code=status)

    @app.post("/cashier/{out_trade_no}/pay")
    async def confirm(out_trade_no: str) -> Response:
        status, page, target = simulator.confirm(out_trade_no)
        if target:
            return RedirectResponse(target, status_code=303)
        return HTMLResponse(page, status_code=status)

    @app.get("/cashier/{out_trade_no}/cancel")
    async def cancel(out_trade_no: str) -> Response:
        status, page, target = simulator.cancel(out_trade_no)
        if target:
            return RedirectResponse(target, status_code=303)
        return HTMLResponse(page, status_code=status)

    @app.get("/downloadBillFile.resource")
    async def bill(fileId: str) -> Response:  # Alipay's parameter name
        content = simulator.bill_file(fileId)
        if content is None:
            return Response(b"file not found", status_code=404, media_type="text/plain")
        return Response(
            content,
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="bill.csv.zip"'},
        )

    return app
