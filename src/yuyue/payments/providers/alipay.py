"""Alipay (支付宝) behind the gateway interface, through the maintained `python-alipay-sdk`.

The library signs requests with the application's RSA2 key, calls the open API gateway
(`gateway.do`) with plain `urllib` and verifies each answer with Alipay's public key. It is
blocking, so every call that goes over the network runs in a worker thread.

What Alipay's protocol means for the interface:
- WAP and PAGE payments are a signed redirect: nothing is sent to Alipay until the patient's
  browser opens the cashier, so until then `alipay.trade.query` answers ACQ.TRADE_NOT_EXIST,
  which is simply "not paid yet" (and closing such a trade has nothing to close).
- Asynchronous notifications are form posts signed with Alipay's key over every field but
  `sign` and `sign_type`; Alipay reads the body and retries (4m, 10m, 10m, 1h, 2h, 6h, 15h)
  until it is exactly `success`.
- `alipay.trade.query` says TRADE_CLOSED both for a trade closed unpaid and for one refunded
  in full; the second carries its payment date and is reported as REFUNDED.
- A refund answers at once: `fund_change` Y means the money moved. A retry with the same
  `out_request_no` moves nothing (`fund_change` N), so its outcome is read back with
  `alipay.trade.fastpay.refund.query`. Refunds of a trade are notified to the trade's
  notify_url as a `trade_status_sync` carrying `refund_fee`, `out_biz_no` and `gmt_refund`.
- The daily bill (T+1) is a zip of GBK CSV files fetched from a short-lived URL.

Keys are read once and never logged."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import urllib.error
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import anyio.to_thread
import httpx
from alipay import AliPay  # type: ignore[import-untyped]
from alipay.exceptions import (  # type: ignore[import-untyped]
    AliPayException,
    AliPayValidationError,
)
from alipay.utils import AliPayConfig  # type: ignore[import-untyped]

from yuyue.config import Settings
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

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUCCESS_CODE = "10000"

# Sub-codes that say "Alipay had a problem, ask again later" (the same request is safe to
# repeat: refunds are idempotent by out_request_no).
RETRYABLE_SUB_CODES = frozenset(
    {
        "ACQ.SYSTEM_ERROR",
        "aop.ACQ.SYSTEM_ERROR",
        "isp.unknow-error",
        "isp.unknown-error",
        "ACQ.RESPONSE_TIMEOUT",
    }
)
# Alipay says "no bill for that day (yet)".
BILL_NOT_READY_SUB_CODES = frozenset(
    {"isp.bill_not_exist", "bill.not.exist", "isv.bill_not_exist", "BILL_NOT_EXIST"}
)

_T = TypeVar("_T")
_AMOUNT = re.compile(r"-?\d+(\.\d{1,2})?")


# --- money and time -----------------------------------------------------------------------


def fen_to_yuan(fen: int) -> str:
    """Integer fen as Alipay's yuan string with two decimals: 1234 → "12.34"."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """Alipay's yuan string to integer fen, exactly (Decimal, never float). Raises ValueError
    for anything that is not an amount with at most two decimals."""
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"not an amount in yuan: {text!r}")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation as exc:  # pragma: no cover - the pattern already refuses these
        raise ValueError(f"not an amount in yuan: {text!r}") from exc
    return int(fen)


def format_shanghai(instant: datetime) -> str:
    """An aware instant as Alipay's wall clock writes it: "yyyy-MM-dd HH:mm:ss" in Beijing."""
    if instant.tzinfo is None:
        raise ValueError("instants must be aware")
    return instant.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def parse_shanghai(text: str | None) -> datetime | None:
    """Alipay's "yyyy-MM-dd HH:mm:ss" (sometimes with ".SSS") in Beijing time, as aware UTC."""
    if not text:
        return None
    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            local = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=SHANGHAI).astimezone(UTC)
    raise ValueError(f"not an Alipay time: {text!r}")


# --- answers ------------------------------------------------------------------------------


def _trade_state(trade_status: str) -> TradeState:
    match trade_status:
        case "WAIT_BUYER_PAY":
            return TradeState.NOT_PAID
        case "TRADE_SUCCESS" | "TRADE_FINISHED":
            return TradeState.PAID
        case "TRADE_CLOSED":
            return TradeState.CLOSED
    raise ValueError(f"unknown trade_status {trade_status!r}")


def _sub_code(answer: Mapping[str, Any]) -> str:
    return str(answer.get("sub_code") or answer.get("code") or "UNKNOWN")


def error_from_answer(answer: Mapping[str, Any]) -> GatewayError:
    """A GatewayError from a refused call: the sub_code is the code, and `retryable` is true
    for Alipay's own trouble (code 20000, *.SYSTEM_ERROR, unknown errors)."""
    sub_code = _sub_code(answer)
    message = str(answer.get("sub_msg") or answer.get("msg") or "")
    retryable = (
        str(answer.get("code")) == "20000"
        or sub_code in RETRYABLE_SUB_CODES
        or sub_code.endswith("SYSTEM_ERROR")
    )
    return GatewayError(sub_code, message, retryable=retryable)


def _library_error(exc: BaseException) -> GatewayError:
    """The library raised: map its exceptions and the network's to a GatewayError."""
    if isinstance(exc, AliPayValidationError):
        return GatewayError(
            "INVALID_RESPONSE_SIGNATURE", "Alipay's answer failed verification", retryable=False
        )
    if isinstance(exc, AliPayException):
        # Raised for an answer without a signature (a refused signature or app id, an
        # unknown method): the raw answer follows "message:".
        raw = str(exc).partition("message:")[2]
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return GatewayError("ALIPAY_ERROR", raw[:200], retryable=False)
        answer: object = next(
            (value for key, value in payload.items() if key.endswith("_response")), {}
        )
        return error_from_answer(answer if isinstance(answer, Mapping) else {})
    if isinstance(exc, urllib.error.HTTPError):
        return GatewayError(f"HTTP_{exc.code}", str(exc.reason), retryable=exc.code >= 500)
    if isinstance(exc, urllib.error.URLError | TimeoutError | OSError | HTTPException):
        return GatewayError("NETWORK", type(exc).__name__, retryable=True)
    if isinstance(exc, ValueError | KeyError | AttributeError):
        # not JSON (a proxy's error page), or JSON without Alipay's shape
        return GatewayError("BAD_RESPONSE", "Alipay's answer could not be read", retryable=True)
    raise exc


class ShanghaiAliPay(AliPay):  # type: ignore[misc]
    """python-alipay-sdk, stamping `timestamp` in Beijing time.

    The library writes `datetime.now()`, the server's local clock, while Alipay reads the
    field as Beijing time and refuses a request stamped too far from it
    (`isv.invalid-timestamp`): a server running in UTC, as containers usually do, would be
    eight hours off. Every signed request (the API calls and the cashier's URL) is built
    here, so this one override covers them all."""

    def build_body(self, method: str, biz_content: Any = None, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = super().build_body(method, biz_content, **kwargs)
        body["timestamp"] = format_shanghai(datetime.now(UTC))
        return body


# --- the adapter --------------------------------------------------------------------------


class AlipayGateway:
    """Alipay's open API (RSA2 keys, not certificates) for WAP and PAGE payments."""

    provider = Provider.ALIPAY

    def __init__(
        self,
        *,
        app_id: str,
        app_private_key_pem: str,
        alipay_public_key_pem: str,
        gateway_url: str = "https://openapi.alipay.com/gateway.do",
        timeout_seconds: float = 15.0,
    ) -> None:
        self.app_id = app_id
        self.gateway_url = gateway_url
        self._timeout = timeout_seconds
        self._client = ShanghaiAliPay(
            appid=app_id,
            app_private_key_string=app_private_key_pem,
            alipay_public_key_string=alipay_public_key_pem,
            sign_type="RSA2",
            config=AliPayConfig(timeout=timeout_seconds),
        )
        self._client._gateway = gateway_url

    def __repr__(self) -> str:  # never the keys
        return f"AlipayGateway(app_id={self.app_id!r}, gateway_url={self.gateway_url!r})"

    # -- the calls

    async def _call(self, name: str, work: Callable[[], _T]) -> _T:
        def guarded() -> _T:
            try:
                return work()
            except Exception as exc:
                raise _library_error(exc) from exc

        try:
            return await anyio.to_thread.run_sync(guarded)
        except GatewayError as exc:
            logger.warning("alipay %s failed: %s (retryable=%s)", name, exc.code, exc.retryable)
            raise

    async def _api(self, method: str, biz_content: dict[str, Any]) -> dict[str, Any]:
        """One open API call; the answer's body when Alipay says 10000, otherwise the
        answer itself is returned to the caller to read (sub_code)."""
        answer: dict[str, Any] = await self._call(
            method, lambda: self._client.server_api(method, biz_content)
        )
        logger.info(
            "alipay %s: code=%s sub_code=%s", method, answer.get("code"), answer.get("sub_code")
        )
        return answer

    async def create(self, request: PayRequest) -> Checkout:
        if request.method not in (PayMethod.WAP, PayMethod.PAGE):
            raise GatewayError(
                "METHOD_NOT_SUPPORTED", f"Alipay has no {request.method}", retryable=False
            )
        if request.amount_fen <= 0:
            raise GatewayError("INVALID_AMOUNT", "the amount must be positive", retryable=False)
        extra: dict[str, str] = {"time_expire": format_shanghai(request.expires_at)}
        if request.method is PayMethod.WAP:
            if request.return_url:
                extra["quit_url"] = request.return_url
            build = self._client.api_alipay_trade_wap_pay
        else:
            build = self._client.api_alipay_trade_page_pay
        query = build(
            subject=request.description,
            out_trade_no=request.out_trade_no,
            total_amount=fen_to_yuan(request.amount_fen),
            return_url=request.return_url,
            notify_url=request.notify_url,
            **extra,
        )
        separator = "&" if "?" in self.gateway_url else "?"
        return Checkout(method=request.method, redirect_url=self.gateway_url + separator + query)

    async def query(self, out_trade_no: str) -> TradeStatus:
        answer = await self._api("alipay.trade.query", {"out_trade_no": out_trade_no})
        if answer.get("code") != SUCCESS_CODE:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                # The patient has not opened the cashier yet: nothing exists to be paid.
                return TradeStatus(out_trade_no=out_trade_no, state=TradeState.NOT_PAID)
            raise error_from_answer(answer)
        state = _trade_state(str(answer.get("trade_status")))
        if state is TradeState.CLOSED and answer.get("send_pay_date"):
            # Alipay closes a fully refunded trade too; one that was paid is REFUNDED.
            state = TradeState.REFUNDED
        total = answer.get("total_amount")
        return TradeStatus(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=yuan_to_fen(str(total)) if total else None,
            transaction_id=answer.get("trade_no"),
            paid_at=parse_shanghai(answer.get("send_pay_date"))
            if state in (TradeState.PAID, TradeState.REFUNDED)
            else None,
            payer=answer.get("buyer_user_id") or answer.get("buyer_open_id"),
        )

    async def close(self, out_trade_no: str) -> None:
        answer = await self._api("alipay.trade.close", {"out_trade_no": out_trade_no})
        if answer.get("code") == SUCCESS_CODE:
            return
        if answer.get("sub_code") in ("ACQ.TRADE_NOT_EXIST", "ACQ.TRADE_HAS_CLOSE"):
            return  # never opened, or already closed: nobody can pay it
        # Only a trade waiting for the buyer closes: one already closed is what we wanted,
        # a paid one is news the caller must hear.
        if (
            answer.get("sub_code") == "ACQ.TRADE_STATUS_ERROR"
            and (await self.query(out_trade_no)).state is TradeState.CLOSED
        ):
            return
        raise error_from_answer(answer)

    async def refund(self, request: RefundRequest) -> RefundStatus:
        answer = await self._api(
            "alipay.trade.refund",
            {
                "out_trade_no": request.out_trade_no,
                "refund_amount": fen_to_yuan(request.refund_fen),
                "out_request_no": request.out_refund_no,
                "refund_reason": request.reason,
            },
        )
        if answer.get("code") != SUCCESS_CODE:
            raise error_from_answer(answer)
        if answer.get("fund_change") == "Y":
            return RefundStatus(
                out_refund_no=request.out_refund_no,
                state=RefundState.SUCCEEDED,
                refund_fen=request.refund_fen,
                refund_id=None,  # Alipay names a refund by our out_request_no only
                finished_at=parse_shanghai(answer.get("gmt_refund_pay")),
            )
        # No money moved this time: a repeat of a refund already made (or one in progress).
        return await self.query_refund(
            out_trade_no=request.out_trade_no, out_refund_no=request.out_refund_no
        )

    async def query_refund(self, *, out_trade_no: str, out_refund_no: str) -> RefundStatus:
        """REFUND_SUCCESS is done. A refund Alipay knows without that status is still being
        handled (PROCESSING). One Alipay never received raises REFUND_NOT_EXIST (not
        retryable): refunding again with the same out_refund_no is the safe next step."""
        answer = await self._api(
            "alipay.trade.fastpay.refund.query",
            {
                "out_trade_no": out_trade_no,
                "out_request_no": out_refund_no,
                "query_options": ["gmt_refund_pay"],
            },
        )
        if answer.get("code") != SUCCESS_CODE:
            raise error_from_answer(answer)
        if not answer.get("out_request_no") and not answer.get("refund_amount"):
            raise GatewayError(
                "REFUND_NOT_EXIST",
                "Alipay has no such refund (not received, or refused)",
                retryable=False,
            )
        status = str(answer.get("refund_status") or "")
        amount = answer.get("refund_amount")
        if status == "REFUND_SUCCESS":
            state = RefundState.SUCCEEDED
        elif "FAIL" in status:
            state = RefundState.FAILED
        else:
            state = RefundState.PROCESSING
        return RefundStatus(
            out_refund_no=out_refund_no,
            state=state,
            refund_fen=yuan_to_fen(str(amount)) if amount else None,
            finished_at=parse_shanghai(answer.get("gmt_refund_pay"))
            if state is RefundState.SUCCEEDED
            else None,
            failure=status if state is RefundState.FAILED else None,
        )

    # -- notifications

    def _verified_fields(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Checks Alipay's signature (over every field but sign and sign_type) and that the
        message is for our application; returns the fields."""
        data = dict(fields)
        signature = data.pop("sign", None)
        if not signature:
            raise InvalidNotification("no signature")
        if data.get("sign_type", "RSA2") != "RSA2":
            raise InvalidNotification("not an RSA2 signature")
        unsigned = {k: v for k, v in data.items() if k != "sign_type" and v != ""}
        try:
            good = self._client.verify(dict(unsigned), signature)
        except Exception as exc:  # a malformed signature (bad base64, wrong length)
            raise InvalidNotification("the signature could not be read") from exc
        if not good:
            raise InvalidNotification("the signature does not verify with Alipay's key")
        if data.get("app_id") != self.app_id:
            raise InvalidNotification("the notification is for another application")
        return data

    async def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        fields = _parse_form(body)
        data = self._verified_fields(fields)
        out_trade_no = data.get("out_trade_no")
        notify_id = data.get("notify_id")
        if not out_trade_no or not notify_id:
            raise InvalidNotification("out_trade_no or notify_id is missing")
        try:
            if data.get("out_biz_no") or data.get("refund_fee") or data.get("gmt_refund"):
                out_biz_no = data.get("out_biz_no")
                if not out_biz_no:
                    raise InvalidNotification("a refund notification without out_biz_no")
                refund_fee = data.get("refund_fee")
                return Notification(
                    kind=NotificationKind.REFUND,
                    event_id=notify_id,
                    out_trade_no=out_trade_no,
                    refund=RefundStatus(
                        out_refund_no=out_biz_no,
                        state=RefundState.SUCCEEDED,
                        # Alipay's refund_fee is the trade's total refunded so far; a
                        # registration fee is refunded once, so it is this refund's amount.
                        refund_fen=yuan_to_fen(refund_fee) if refund_fee else None,
                        finished_at=parse_shanghai(data.get("gmt_refund")),
                    ),
                )
            state = _trade_state(data.get("trade_status", ""))
            total = data.get("total_amount")
            return Notification(
                kind=NotificationKind.PAYMENT,
                event_id=notify_id,
                trade=TradeStatus(
                    out_trade_no=out_trade_no,
                    state=state,
                    amount_fen=yuan_to_fen(total) if total else None,
                    transaction_id=data.get("trade_no"),
                    paid_at=parse_shanghai(data.get("gmt_payment")),
                    payer=data.get("buyer_id") or data.get("buyer_open_id"),
                ),
            )
        except ValueError as exc:
            raise InvalidNotification(f"a field could not be read: {exc}") from exc

    def verify_return(self, query: Mapping[str, str]) -> TradeStatus:
        """The signed parameters Alipay adds to return_url when it sends the patient back.
        They say the cashier finished, not that the money arrived: the notification or a
        query decides. Raises InvalidNotification."""
        data = self._verified_fields(query)
        out_trade_no = data.get("out_trade_no")
        if not out_trade_no:
            raise InvalidNotification("out_trade_no is missing")
        try:
            total = data.get("total_amount")
            return TradeStatus(
                out_trade_no=out_trade_no,
                state=TradeState.NOT_PAID,
                amount_fen=yuan_to_fen(total) if total else None,
                transaction_id=data.get("trade_no"),
            )
        except ValueError as exc:
            raise InvalidNotification(str(exc)) from exc

    def reply(self, *, accepted: bool) -> NotificationReply:
        return NotificationReply(
            status_code=200,
            body=b"success" if accepted else b"fail",
            content_type="text/plain; charset=utf-8",
        )

    # -- the daily bill

    async def download_statement(self, bill_date: date) -> Statement:
        answer = await self._api(
            "alipay.data.dataservice.bill.downloadurl.query",
            {"bill_type": "trade", "bill_date": bill_date.isoformat()},
        )
        if answer.get("code") != SUCCESS_CODE:
            if answer.get("sub_code") in BILL_NOT_READY_SUB_CODES:
                raise StatementNotReady(f"Alipay has no bill for {bill_date.isoformat()}")
            raise error_from_answer(answer)
        url = answer.get("bill_download_url")
        if not url:
            raise GatewayError("BAD_RESPONSE", "no bill_download_url", retryable=True)
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as http:
                response = await http.get(str(url))
        except httpx.HTTPError as exc:
            raise GatewayError("NETWORK", type(exc).__name__, retryable=True) from exc
        if response.status_code != 200:
            raise GatewayError(
                f"HTTP_{response.status_code}",
                "the bill download failed",
                retryable=response.status_code >= 500,
            )
        try:
            lines = parse_bill_zip(response.content)
        except (zipfile.BadZipFile, ValueError, KeyError) as exc:
            raise GatewayError("BAD_STATEMENT", str(exc)[:200], retryable=False) from exc
        return Statement(provider=Provider.ALIPAY, bill_date=bill_date, lines=tuple(lines))


# --- the bill's files ---------------------------------------------------------------------


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Alipay writes the member names in GBK without the UTF-8 flag; zipfile then reads
    them as cp437, so turn them back."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _header_name(cell: str) -> str:
    return cell.strip().replace("（", "(").replace("）", ")")


def parse_bill_zip(content: bytes) -> list[StatementLine]:
    """The lines of the 业务明细 file in Alipay's trade bill zip (not the 汇总 one)."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        detail = [
            info
            for info in archive.infolist()
            if _zip_name(info).endswith(".csv")
            and "业务明细" in _zip_name(info)
            and "汇总" not in _zip_name(info)
        ]
        if len(detail) != 1:
            raise ValueError("the bill holds no single 业务明细 file")
        text = archive.read(detail[0]).decode("gb18030")
    return parse_bill_detail(text)


def parse_bill_detail(text: str) -> list[StatementLine]:
    """Alipay's 业务明细 CSV (already decoded): `#` lines around a header row and one row per
    trade or refund, cells padded with tabs. 交易 rows are payments of 订单金额(元); 退款 rows
    are refunds (positive amounts) named by 退款批次号/请求号."""
    rows = [
        row
        for row in csv.reader(io.StringIO(text))
        if row and not row[0].lstrip().startswith("#") and any(cell.strip() for cell in row)
    ]
    if not rows:
        raise ValueError("the bill has no header row")
    header = [_header_name(cell) for cell in rows[0]]
    lines: list[StatementLine] = []
    for row in rows[1:]:
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
        business = cells.get("业务类型", "")
        at = parse_shanghai(cells.get("完成时间") or cells.get("创建时间"))
        if at is None:
            raise ValueError("a bill row without a time")
        amount = abs(yuan_to_fen(cells["订单金额(元)"]))
        transaction_id = cells.get("支付宝交易号") or None
        if business == "交易":
            lines.append(
                StatementLine(
                    kind=StatementKind.PAYMENT,
                    out_trade_no=cells["商户订单号"],
                    transaction_id=transaction_id,
                    amount_fen=amount,
                    at=at,
                    raw=cells,
                )
            )
        elif business == "退款":
            lines.append(
                StatementLine(
                    kind=StatementKind.REFUND,
                    out_trade_no=cells["商户订单号"],
                    transaction_id=transaction_id,
                    amount_fen=amount,
                    at=at,
                    out_refund_no=cells.get("退款批次号/请求号") or None,
                    raw=cells,
                )
            )
        else:
            logger.warning("alipay bill: unknown business type %r skipped", business)
    return lines


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        charset = dict(pairs).get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset)
    except (UnicodeDecodeError, ValueError, LookupError) as exc:
        raise InvalidNotification("the body is not a form") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise InvalidNotification(f"the field {key} appears twice")
        fields[key] = value
    return fields


def alipay_from_settings(settings: Settings) -> AlipayGateway | None:
    """The adapter when the application id and both key files are configured, else None."""
    if (
        not settings.alipay_app_id
        or settings.alipay_private_key_file is None
        or settings.alipay_public_key_file is None
    ):
        return None
    return AlipayGateway(
        app_id=settings.alipay_app_id,
        app_private_key_pem=settings.alipay_private_key_file.read_text(encoding="ascii"),
        alipay_public_key_pem=settings.alipay_public_key_file.read_text(encoding="ascii"),
        gateway_url=settings.alipay_gateway_url,
    )
