"""WeChat Pay API v3 behind the `Gateway` interface, on the maintained `wechatpayv3` library.

The library signs every request with the merchant's API key (`Authorization:
WECHATPAY2-SHA256-RSA2048 …`), verifies every 2xx answer with WeChat Pay's public key
(public-key mode: `Wechatpay-Serial` is the public key's id) or its platform certificates,
and decrypts notification resources (AEAD_AES_256_GCM with the APIv3 key). It is blocking
(`requests`), so every call goes through a worker thread.

What this module adds around it: a replay window on notifications (WeChat Pay's own
five minutes), a refusal of any serial we do not hold before the library would go and fetch
certificates for it, the mapping of WeChat's states, error codes and trade bill into the
gateway's value objects, and fen arithmetic without floats.

Nothing here logs a key, the APIv3 key, a token or an openid: the library's own debug
logging (which prints the Authorization header) is never given a logger."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio.to_thread
import requests
from wechatpayv3 import WeChatPay, WeChatPayType  # type: ignore[import-untyped]
from wechatpayv3.core import Core  # type: ignore[import-untyped]

from yuyue.config import Settings
from yuyue.kit.clock import Clock, SystemClock
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
    StatementKind,
    StatementLine,
    StatementNotReady,
    TradeState,
    TradeStatus,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
REPLAY_WINDOW = timedelta(minutes=5)

# Error codes after which trying the same call again later may succeed. Everything else that
# WeChat Pay answers with a 4xx (PARAM_ERROR, ORDER_CLOSED, NOT_ENOUGH, ORDER_NOT_EXIST, …)
# needs a person or a different request.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANK_ERROR"})
# The trade bill is not there (yet): the day has not been cut, or nothing happened that day.
NO_STATEMENT_CODES = frozenset({"NO_STATEMENT_EXIST", "STATEMENT_CREATING"})

TRADE_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.REFUNDED,
    "NOTPAY": TradeState.NOT_PAID,
    "USERPAYING": TradeState.NOT_PAID,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.FAILED,
}
REFUND_STATES = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PROCESSING,
    "CLOSED": RefundState.FAILED,
    "ABNORMAL": RefundState.FAILED,
}
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
PAY_TYPES = {
    PayMethod.JSAPI: WeChatPayType.JSAPI,
    PayMethod.H5: WeChatPayType.H5,
    PayMethod.NATIVE: WeChatPayType.NATIVE,
}

# The trade bill's columns this adapter reads (the file carries more; all are kept in `raw`).
COL_TIME = "交易时间"
COL_TRANSACTION_ID = "微信订单号"
COL_OUT_TRADE_NO = "商户订单号"
COL_TRADE_STATE = "交易状态"
COL_SETTLED = "应结订单金额"
COL_REFUND_ID = "微信退款单号"
COL_OUT_REFUND_NO = "商户退款单号"
COL_REFUND = "退款金额"
SUMMARY_FIRST = "总交易单数"


@dataclass(frozen=True)
class WechatPayCredentials:
    """The merchant's side of WeChat Pay. `repr` never shows a key."""

    mchid: str
    appid: str
    cert_serial_no: str  # the serial of the merchant's API certificate
    private_key_pem: str
    apiv3_key: str
    # WeChat Pay's public key and its id (the current scheme), or a folder of platform
    # certificates (the older one); at least one of the two.
    public_key_pem: str | None = None
    public_key_id: str | None = None
    cert_dir: str | None = None

    def __repr__(self) -> str:
        mode = "public-key" if self.public_key_id else "certificates"
        return f"WechatPayCredentials(mchid={self.mchid!r}, appid={self.appid!r}, {mode})"


def yuan_to_fen(value: str) -> int:
    """`12.30` → 1230 exactly; refuses anything that is not a whole number of fen."""
    try:
        amount = Decimal(value.strip())
    except InvalidOperation as error:
        raise ValueError(f"not an amount: {value!r}") from error
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"not a whole number of fen: {value!r}")
    return int(fen)


def parse_rfc3339(value: str) -> datetime:
    """WeChat's `2024-05-01T10:00:00+08:00` → an aware UTC instant."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(UTC)


def format_rfc3339(instant: datetime) -> str:
    return instant.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _field(answer: Mapping[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise GatewayError("INVALID_RESPONSE", f"the answer has no {name}", retryable=True)
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _integer(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise GatewayError("INVALID_RESPONSE", f"not an amount in fen: {value!r}", retryable=True)
    return value


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_rfc3339(str(value))
    except ValueError as error:
        raise GatewayError("INVALID_RESPONSE", f"not a time: {value!r}", retryable=True) from error


def parse_trade_bill(text: str) -> list[StatementLine]:
    """The lines of a WeChat Pay trade bill (type ALL): a header row, one row per payment or
    refund with every value prefixed by a backtick, then a summary header (`总交易单数,…`) and
    its row. Payments are the SUCCESS rows (their settled amount, 应结订单金额), refunds the
    REFUND rows (their refund amount, 退款金额). Raises ValueError on a malformed file."""
    rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if any(row)]
    if not rows:
        raise ValueError("empty trade bill")
    header = [cell.strip() for cell in rows[0]]
    missing = {COL_TIME, COL_OUT_TRADE_NO, COL_TRADE_STATE, COL_SETTLED} - set(header)
    if missing:
        raise ValueError(f"trade bill without columns {sorted(missing)}")
    details: list[dict[str, str]] = []
    summary: dict[str, str] | None = None
    index = 1
    while index < len(rows):
        cells = [cell.strip() for cell in rows[index]]
        if cells[0] == SUMMARY_FIRST:
            if index + 1 < len(rows):
                values = [cell.strip().removeprefix("`") for cell in rows[index + 1]]
                summary = dict(zip(cells, values, strict=False))
            break
        if len(cells) < len(header):
            raise ValueError(f"trade bill row {index + 1} has {len(cells)} columns")
        details.append(
            {name: cell.removeprefix("`") for name, cell in zip(header, cells, strict=False)}
        )
        index += 1
    if summary and SUMMARY_FIRST in summary and int(summary[SUMMARY_FIRST]) != len(details):
        raise ValueError("trade bill summary does not count its rows")
    lines: list[StatementLine] = []
    for row in details:
        at = (
            datetime.strptime(row[COL_TIME], "%Y-%m-%d %H:%M:%S")
            .replace(tzinfo=SHANGHAI)
            .astimezone(UTC)
        )
        state = row[COL_TRADE_STATE]
        if state == "SUCCESS":
            line = StatementLine(
                kind=StatementKind.PAYMENT,
                out_trade_no=row[COL_OUT_TRADE_NO],
                transaction_id=row.get(COL_TRANSACTION_ID) or None,
                amount_fen=yuan_to_fen(row[COL_SETTLED]),
                at=at,
                raw=row,
            )
        elif state == "REFUND":
            line = StatementLine(
                kind=StatementKind.REFUND,
                out_trade_no=row[COL_OUT_TRADE_NO],
                transaction_id=row.get(COL_TRANSACTION_ID) or None,
                amount_fen=yuan_to_fen(row[COL_REFUND]),
                at=at,
                out_refund_no=row.get(COL_OUT_REFUND_NO) or None,
                refund_id=row.get(COL_REFUND_ID) or None,
                raw=row,
            )
        else:  # REVOKED and the like: no money moved for us
            continue
        lines.append(line)
    return lines


class _GatewayCore(Core):  # type: ignore[misc]
    """The library's Core, talking to `gateway_url` (WeChat Pay, or the simulator) from its
    constructor on: the constructor is where certificate mode first downloads."""

    def __init__(self, *, gateway_url: str, **kwargs: Any) -> None:
        self._yuyue_gateway_url = gateway_url
        super().__init__(**kwargs)
        self._gate_way = gateway_url

    def _init_certificates(self) -> None:
        self._gate_way = self._yuyue_gateway_url
        super()._init_certificates()


class WechatPayGateway:
    """WeChat Pay (API v3, direct merchant) for JSAPI, H5 and Native payments."""

    provider = Provider.WECHATPAY

    def __init__(
        self,
        *,
        credentials: WechatPayCredentials,
        gateway_url: str = "https://api.mch.weixin.qq.com",
        timeout: tuple[float, float] = (5.0, 20.0),
        clock: Clock | None = None,
        replay_window: timedelta = REPLAY_WINDOW,
    ) -> None:
        if not (credentials.public_key_id and credentials.public_key_pem) and not (
            credentials.cert_dir
        ):
            raise ValueError("WeChat Pay needs its public key and id, or a certificate folder")
        self._credentials = credentials
        self._gateway_url = gateway_url.rstrip("/")
        self._timeout = timeout
        self._clock = clock or SystemClock()
        self._replay_window = replay_window
        self._client_lock = threading.Lock()
        self._client_instance: Any = None
        if credentials.public_key_id:
            # Public-key mode builds without a network call: load the keys now, so a bad key
            # file fails at start-up rather than at the first payment.
            self._client()

    def __repr__(self) -> str:
        return f"WechatPayGateway({self._gateway_url!r}, {self._credentials!r})"

    # -- the library ------------------------------------------------------------------------

    def _client(self) -> Any:
        """The library's client. In certificate mode building it downloads the platform
        certificates, so it is built on first use, in a worker thread."""
        with self._client_lock:
            if self._client_instance is None:
                creds = self._credentials
                # `WeChatPay.__init__` would build its Core against the real host and, in
                # certificate mode, download certificates from there before we could point
                # it elsewhere; so the client is assembled around a Core that knows our
                # gateway from the start.
                client = WeChatPay.__new__(WeChatPay)
                client._type = WeChatPayType.NATIVE
                client._mchid = creds.mchid
                client._appid = creds.appid
                client._notify_url = None
                client._partner_mode = False
                client._core = _GatewayCore(
                    gateway_url=self._gateway_url,
                    mchid=creds.mchid,
                    cert_serial_no=creds.cert_serial_no,
                    private_key=creds.private_key_pem,
                    apiv3_key=creds.apiv3_key,
                    cert_dir=creds.cert_dir,
                    timeout=self._timeout,
                    public_key=creds.public_key_pem,
                    public_key_id=creds.public_key_id,
                )
                self._client_instance = client
            return self._client_instance

    async def _run(self, operation: str, call: Callable[[Any], T]) -> T:
        def work() -> T:
            return call(self._client())

        try:
            return await anyio.to_thread.run_sync(work)
        except GatewayError:
            raise
        except requests.RequestException as error:
            log.warning("wechatpay %s: network error %s", operation, type(error).__name__)
            raise GatewayError("NETWORK_ERROR", type(error).__name__, retryable=True) from error
        except Exception as error:
            # The library raises bare Exceptions: most often an answer whose signature did
            # not verify. Whether the call took effect is unknown, so it is for retrying (with
            # the same out_trade_no / out_refund_no, which WeChat Pay treats as one request).
            log.warning("wechatpay %s failed: %s", operation, type(error).__name__)
            raise GatewayError("PROVIDER_ERROR", str(error)[:200], retryable=True) from error

    @staticmethod
    def _answer(operation: str, status: int, body: Any) -> dict[str, Any]:
        """The JSON of a 2xx answer, or the matching GatewayError."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        if 200 <= status < 300:
            if not text.strip():
                return {}
            try:
                parsed = json.loads(text)
            except ValueError as error:
                raise GatewayError("INVALID_RESPONSE", "not JSON", retryable=True) from error
            if not isinstance(parsed, dict):
                raise GatewayError("INVALID_RESPONSE", "not a JSON object", retryable=True)
            return parsed
        code, message = f"HTTP_{status}", text[:200]
        try:
            parsed = json.loads(text)
            if isinstance(parsed, dict):
                code = str(parsed.get("code") or code)
                message = str(parsed.get("message") or message)
        except ValueError:
            pass
        retryable = status >= 500 or status == 429 or code in RETRYABLE_CODES
        log.info("wechatpay %s refused: %s %s (retryable=%s)", operation, status, code, retryable)
        if code in NO_STATEMENT_CODES:
            raise StatementNotReady(message)
        raise GatewayError(code, message, retryable=retryable)

    # -- payments ---------------------------------------------------------------------------

    async def create(self, request: PayRequest) -> Checkout:
        pay_type = PAY_TYPES.get(request.method)
        if pay_type is None:
            raise GatewayError("METHOD_NOT_SUPPORTED", str(request.method), retryable=False)
        if request.method is PayMethod.JSAPI and not request.payer_openid:
            raise GatewayError("PARAM_ERROR", "JSAPI needs the payer's openid", retryable=False)
        payer = {"openid": request.payer_openid} if request.method is PayMethod.JSAPI else None
        scene: dict[str, Any] | None = None
        if request.method is PayMethod.H5:
            scene = {
                "payer_client_ip": request.client_ip or "127.0.0.1",
                "h5_info": {"type": "Wap"},
            }
        elif request.client_ip:
            scene = {"payer_client_ip": request.client_ip}

        def call(client: Any) -> tuple[int, Any]:
            result: tuple[int, Any] = client.pay(
                description=request.description[:127],
                out_trade_no=request.out_trade_no,
                amount={"total": request.amount_fen, "currency": "CNY"},
                payer=payer,
                time_expire=format_rfc3339(request.expires_at),
                scene_info=scene,
                notify_url=request.notify_url,
                pay_type=pay_type,
            )
            return result

        status, body = await self._run("create", call)
        answer = self._answer("create", status, body)
        log.info("wechatpay prepay %s %s", request.method, request.out_trade_no)
        if request.method is PayMethod.H5:
            h5_url = _field(answer, "h5_url")
            if request.return_url:
                # WeChat Pay's documented way back: redirect_url appended to h5_url.
                separator = "&" if "?" in h5_url else "?"
                h5_url += separator + urlencode({"redirect_url": request.return_url})
            return Checkout(method=request.method, redirect_url=h5_url)
        if request.method is PayMethod.NATIVE:
            return Checkout(method=request.method, qr_content=_field(answer, "code_url"))
        prepay_id = _field(answer, "prepay_id")
        return Checkout(
            method=request.method,
            jsapi_params=self.jsapi_params(prepay_id),
            provider_reference=prepay_id,
        )

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` / `wx.requestPayment`
        takes: signed with the merchant key over appId, timeStamp, nonceStr and package."""
        app_id = self._credentials.appid
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        signature: str = self._client().sign([app_id, timestamp, nonce, package])
        return {
            "appId": app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": signature,
        }

    async def query(self, out_trade_no: str) -> TradeStatus:
        status, body = await self._run(
            "query", lambda client: client.query(out_trade_no=out_trade_no)
        )
        return self._trade_status(self._answer("query", status, body))

    async def close(self, out_trade_no: str) -> None:
        status, body = await self._run(
            "close", lambda client: client.close(out_trade_no=out_trade_no)
        )
        self._answer("close", status, body)
        log.info("wechatpay closed %s", out_trade_no)

    def _trade_status(self, answer: Mapping[str, Any]) -> TradeStatus:
        state = str(answer.get("trade_state", ""))
        if state not in TRADE_STATES:
            raise GatewayError("INVALID_RESPONSE", f"trade_state {state!r}", retryable=True)
        amount = _mapping(answer.get("amount"))
        paid = amount.get("payer_total", amount.get("total"))
        success_time = answer.get("success_time")
        return TradeStatus(
            out_trade_no=_field(answer, "out_trade_no"),
            state=TRADE_STATES[state],
            amount_fen=_integer(paid),
            transaction_id=answer.get("transaction_id") or None,
            paid_at=_instant(success_time),
            payer=_mapping(answer.get("payer")).get("openid") or None,
        )

    # -- refunds ----------------------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> RefundStatus:
        def call(client: Any) -> tuple[int, Any]:
            result: tuple[int, Any] = client.refund(
                out_refund_no=request.out_refund_no,
                amount={
                    "refund": request.refund_fen,
                    "total": request.total_fen,
                    "currency": "CNY",
                },
                out_trade_no=request.out_trade_no,
                reason=request.reason[:80] or None,
                notify_url=request.notify_url,
            )
            return result

        status, body = await self._run("refund", call)
        refund = self._refund_status(self._answer("refund", status, body))
        log.info("wechatpay refund %s: %s", request.out_refund_no, refund.state)
        return refund

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        status, body = await self._run(
            "query_refund", lambda client: client.query_refund(out_refund_no=out_refund_no)
        )
        answer = self._answer("query_refund", status, body)
        if answer.get("out_trade_no") not in (None, out_trade_no):
            raise GatewayError(
                "REFUND_TRADE_MISMATCH",
                f"refund {out_refund_no} belongs to another order",
                retryable=False,
            )
        return self._refund_status(answer)

    @staticmethod
    def _refund_status(answer: Mapping[str, Any]) -> RefundStatus:
        # The refund API answers `status`, the refund notification `refund_status`.
        state = str(answer.get("status") or answer.get("refund_status") or "")
        if state not in REFUND_STATES:
            raise GatewayError("INVALID_RESPONSE", f"refund status {state!r}", retryable=True)
        amount = _mapping(answer.get("amount"))
        refunded = amount.get("refund")
        success_time = answer.get("success_time")
        failure = state if REFUND_STATES[state] is RefundState.FAILED else None
        return RefundStatus(
            out_refund_no=_field(answer, "out_refund_no"),
            state=REFUND_STATES[state],
            refund_fen=_integer(refunded),
            refund_id=answer.get("refund_id") or None,
            finished_at=_instant(success_time),
            failure=failure,
        )

    # -- notifications ----------------------------------------------------------------------

    async def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        lowered = {key.lower(): value for key, value in headers.items()}
        required = ("wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce")
        if any(not lowered.get(name) for name in (*required, "wechatpay-serial")):
            raise InvalidNotification("the Wechatpay-* signature headers are missing")
        try:
            signed_at = datetime.fromtimestamp(int(lowered["wechatpay-timestamp"]), UTC)
        except (ValueError, OverflowError, OSError) as error:
            raise InvalidNotification("Wechatpay-Timestamp is not a timestamp") from error
        if abs(self._clock.now() - signed_at) > self._replay_window:
            raise InvalidNotification("Wechatpay-Timestamp is outside the replay window")
        signature_type = lowered.setdefault("wechatpay-signature-type", SIGNATURE_TYPE)
        if signature_type != SIGNATURE_TYPE:
            raise InvalidNotification("unsupported Wechatpay-Signature-Type")
        serial = lowered["wechatpay-serial"]
        creds = self._credentials
        if serial != creds.public_key_id and not creds.cert_dir:
            # The library would go and download certificates for a serial it does not hold.
            raise InvalidNotification("Wechatpay-Serial names a key we do not hold")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidNotification("the body is not UTF-8") from error

        def verify(client: Any) -> Any:
            return client.callback(lowered, text)

        try:
            decoded = await anyio.to_thread.run_sync(lambda: verify(self._client()))
        except Exception as error:
            raise InvalidNotification(f"verification failed: {type(error).__name__}") from error
        if not isinstance(decoded, dict) or not isinstance(decoded.get("resource"), dict):
            raise InvalidNotification("the signature did not verify or the resource not decrypt")
        try:
            notification = self._notification(decoded)
        except (KeyError, TypeError, ValueError, GatewayError) as error:
            raise InvalidNotification(f"unexpected resource: {error}") from error
        log.info(
            "wechatpay notification %s %s verified",
            decoded.get("event_type"),
            notification.event_id,
        )
        return notification

    def _notification(self, decoded: Mapping[str, Any]) -> Notification:
        event_type = str(decoded.get("event_type", ""))
        event_id = str(decoded["id"])
        resource: Mapping[str, Any] = decoded["resource"]
        if str(resource.get("mchid", self._credentials.mchid)) != self._credentials.mchid:
            raise ValueError("the resource is for another merchant")
        if event_type == "TRANSACTION.SUCCESS":
            trade = self._trade_status(resource)
            return Notification(
                kind=NotificationKind.PAYMENT,
                event_id=event_id,
                trade=trade,
                out_trade_no=trade.out_trade_no,
            )
        if event_type in REFUND_EVENTS:
            return Notification(
                kind=NotificationKind.REFUND,
                event_id=event_id,
                refund=self._refund_status(resource),
                out_trade_no=str(resource["out_trade_no"]),
            )
        raise ValueError(f"event type {event_type!r} is not handled")

    def reply(self, *, accepted: bool) -> NotificationReply:
        if accepted:
            # WeChat Pay: a 200 or 204 without a body means received.
            return NotificationReply(status_code=200, body=b"", content_type="text/plain")
        body = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False)
        return NotificationReply(
            status_code=500, body=body.encode("utf-8"), content_type="application/json"
        )

    # -- the trade bill ---------------------------------------------------------------------

    async def download_statement(self, bill_date: date) -> Statement:
        day = bill_date.isoformat()
        status, body = await self._run(
            "trade_bill", lambda client: client.trade_bill(bill_date=day, bill_type="ALL")
        )
        answer = self._answer("trade_bill", status, body)
        download_url = str(answer.get("download_url", ""))
        if not download_url.startswith(self._gateway_url + "/"):
            # The library signs the path after the gateway; a foreign host gets nothing.
            raise GatewayError(
                "INVALID_RESPONSE", "download_url is not on the gateway", retryable=False
            )
        status, content = await self._run(
            "download_bill", lambda client: client.download_bill(download_url)
        )
        if not 200 <= status < 300:
            self._answer("download_bill", status, content)
        data = content if isinstance(content, bytes) else str(content).encode("utf-8")
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        expected = str(answer.get("hash_value", "")).lower()
        hash_type = str(answer.get("hash_type", "SHA1")).upper()
        if expected and hash_type == "SHA1" and hashlib.sha1(data).hexdigest() != expected:
            raise GatewayError("BILL_HASH_MISMATCH", f"trade bill of {day}", retryable=True)
        try:
            lines = parse_trade_bill(data.decode("utf-8-sig"))
        except (ValueError, KeyError, UnicodeDecodeError) as error:
            raise GatewayError("BILL_MALFORMED", str(error), retryable=False) from error
        log.info("wechatpay trade bill %s: %d lines", day, len(lines))
        return Statement(
            provider=Provider.WECHATPAY,
            bill_date=bill_date,
            lines=tuple(lines),
        )


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def wechatpay_from_settings(
    settings: Settings, *, clock: Clock | None = None
) -> WechatPayGateway | None:
    """The gateway the settings describe, or None when WeChat Pay is not configured. A half
    configuration (some settings given, others not) is an error, named without values."""
    named = {
        "wechatpay_mchid": settings.wechatpay_mchid,
        "wechatpay_appid": settings.wechatpay_appid,
        "wechatpay_cert_serial_no": settings.wechatpay_cert_serial_no,
        "wechatpay_private_key_file": settings.wechatpay_private_key_file,
        "wechatpay_apiv3_key_file": settings.wechatpay_apiv3_key_file,
    }
    if all(value is None for value in named.values()):
        return None
    missing = [name for name, value in named.items() if value is None]
    public_key_mode = settings.wechatpay_public_key_file is not None
    if public_key_mode and settings.wechatpay_public_key_id is None:
        missing.append("wechatpay_public_key_id")
    if not public_key_mode and settings.wechatpay_cert_dir is None:
        missing.append("wechatpay_public_key_file or wechatpay_cert_dir")
    if missing:
        raise ValueError(f"WeChat Pay is half configured; missing: {', '.join(missing)}")
    assert settings.wechatpay_private_key_file is not None
    assert settings.wechatpay_apiv3_key_file is not None
    apiv3_key = _read(settings.wechatpay_apiv3_key_file)
    if len(apiv3_key.encode("utf-8")) != 32:
        raise ValueError("the WeChat Pay APIv3 key must be 32 bytes")
    credentials = WechatPayCredentials(
        mchid=str(settings.wechatpay_mchid),
        appid=str(settings.wechatpay_appid),
        cert_serial_no=str(settings.wechatpay_cert_serial_no),
        private_key_pem=_read(settings.wechatpay_private_key_file),
        apiv3_key=apiv3_key,
        public_key_pem=(
            _read(settings.wechatpay_public_key_file)
            if settings.wechatpay_public_key_file
            else None
        ),
        public_key_id=settings.wechatpay_public_key_id if public_key_mode else None,
        cert_dir=str(settings.wechatpay_cert_dir) if settings.wechatpay_cert_dir else None,
    )
    return WechatPayGateway(
        credentials=credentials, gateway_url=settings.wechatpay_gateway_url, clock=clock
    )
