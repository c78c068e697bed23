"""The medical-insurance platform's adapter: signed JSON over HTTPS (see payments.insurance
for the protocol). Every answer is verified before it is believed."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from yuyue.config import Settings
from yuyue.kit.clock import Clock, SystemClock
from yuyue.payments.gateway import (
    GatewayError,
    InvalidNotification,
    Provider,
    Statement,
    StatementKind,
    StatementLine,
    StatementNotReady,
)
from yuyue.payments.insurance import (
    HEADER_NONCE,
    NOTIFY_LINE,
    InsuranceEvent,
    InsuranceNotification,
    Preauthorization,
    Settlement,
    SettlementRefund,
    check_signature,
    operation_path,
    signed_headers,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The platform's refusals that say "not now" rather than "never".
_RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "SYSTEM_BUSY", "NONCE_REUSED"})


def _answer_error(message: str) -> GatewayError:
    return GatewayError("ANSWER_SIGNATURE_INVALID", message, retryable=True)


def _instant(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"not an instant: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"an instant without an offset: {value!r}")
    return parsed.astimezone(UTC)


def _fen(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an amount in fen: {value!r}")
    return value


def _settlement(body: Mapping[str, Any]) -> Settlement:
    return Settlement(
        settlement_no=str(body["settlement_no"]),
        auth_no=str(body["auth_no"]),
        out_trade_no=str(body["out_trade_no"]),
        pool_fen=_fen(body["pool_fen"]),
        account_fen=_fen(body["account_fen"]),
        self_pay_fen=_fen(body["self_pay_fen"]),
        settled_at=_instant(body["settled_at"]),
    )


def _refund(body: Mapping[str, Any]) -> SettlementRefund:
    return SettlementRefund(
        refund_no=str(body["refund_no"]),
        settlement_no=str(body["settlement_no"]),
        out_trade_no=str(body["out_trade_no"]),
        pool_fen=_fen(body["pool_fen"]),
        account_fen=_fen(body["account_fen"]),
        self_pay_fen=_fen(body["self_pay_fen"]),
        refunded_at=_instant(body["refunded_at"]),
    )


class HttpInsuranceGateway:
    provider = Provider.INSURANCE

    def __init__(
        self,
        *,
        base_url: str,
        org_code: str,
        key: bytes,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not key:
            raise ValueError("the insurance platform key is empty")
        self._base_url = base_url.rstrip("/")
        self._org_code = org_code
        self._key = key
        # A client passed in belongs to the caller, who closes it; one made here is ours.
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:  # never the key
        return f"HttpInsuranceGateway(base_url={self._base_url!r}, org_code={self._org_code!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def preauthorize(
        self, *, out_trade_no: str, insured_token: str, total_fen: int
    ) -> Preauthorization:
        answer = await self._call(
            "preauth",
            {"out_trade_no": out_trade_no, "insured_token": insured_token, "total_fen": total_fen},
        )
        return self._read(
            "preauth",
            lambda: Preauthorization(
                auth_no=str(answer["auth_no"]),
                out_trade_no=str(answer["out_trade_no"]),
                held_fen=_fen(answer["held_fen"]),
            ),
        )

    async def settle(self, *, auth_no: str, total_fen: int) -> Settlement:
        answer = await self._call("settle", {"auth_no": auth_no, "total_fen": total_fen})
        settlement = self._read("settle", lambda: _settlement(answer))
        if settlement.total_fen != total_fen:
            # The parts must add up to what was asked; anything else is not a settlement
            # this hospital can book.
            raise GatewayError(
                "SPLIT_MISMATCH",
                f"the parts add up to {settlement.total_fen}, not {total_fen}",
                retryable=False,
            )
        return settlement

    async def release(self, auth_no: str) -> None:
        await self._call("release", {"auth_no": auth_no})

    async def refund_settlement(self, *, settlement_no: str, reason: str) -> SettlementRefund:
        answer = await self._call("refund", {"settlement_no": settlement_no, "reason": reason})
        return self._read("refund", lambda: _refund(answer))

    async def verify_notification(
        self, headers: Mapping[str, str], body: bytes
    ) -> InsuranceNotification:
        problem = check_signature(
            self._key,
            headers,
            first_line=NOTIFY_LINE,
            org_code=self._org_code,
            body=body,
            now=self._clock.now(),
        )
        if problem is not None:
            raise InvalidNotification(problem.value)
        try:
            decoded = json.loads(body)
            event = InsuranceEvent(decoded["event_type"])
            settlement = _settlement(decoded["settlement"])
            refund = _refund(decoded["refund"]) if event is InsuranceEvent.REFUNDED else None
            return InsuranceNotification(
                event_id=str(decoded["event_id"]),
                event=event,
                settlement=settlement,
                refund=refund,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidNotification(f"unreadable notification: {exc}") from exc

    async def download_statement(self, bill_date: date) -> Statement:
        answer = await self._call("statement", {"bill_date": bill_date.isoformat()})
        return self._read(
            "statement",
            lambda: Statement(
                provider=Provider.INSURANCE,
                bill_date=bill_date,
                lines=tuple(_line(item) for item in answer["lines"]),
            ),
        )

    @staticmethod
    def _read(operation: str, build: Callable[[], _T]) -> _T:
        """A verified answer that still lacks a field or holds a wrong type is the
        platform's fault: retryable, and the call is idempotent."""
        try:
            return build()
        except (KeyError, TypeError, ValueError) as exc:
            raise GatewayError(
                "UNREADABLE_ANSWER", f"{operation}: {type(exc).__name__} {exc}", retryable=True
            ) from exc

    async def _call(self, operation: str, payload: Mapping[str, object]) -> dict[str, Any]:
        """One signed request; the verified answer's JSON, or the refusal as GatewayError."""
        path = operation_path(operation)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        nonce = secrets.token_hex(16)
        headers = signed_headers(
            self._key,
            first_line=f"POST {path}",
            org_code=self._org_code,
            now=self._clock.now(),
            nonce=nonce,
            body=body,
        )
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            response = await self._client.post(self._base_url + path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayError(
                "NETWORK", f"{operation}: {type(exc).__name__}", retryable=True
            ) from exc

        problem = check_signature(
            self._key,
            response.headers,
            first_line=f"{response.status_code} {path}",
            org_code=self._org_code,
            body=response.content,
            now=self._clock.now(),
        )
        if problem is not None or response.headers.get(HEADER_NONCE) != nonce:
            log.warning(
                "insurance %s: answer refused (%s), HTTP %s",
                operation,
                problem or "nonce mismatch",
                response.status_code,
            )
            raise _answer_error(f"{operation}: {problem or 'the answer is for another request'}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise GatewayError("UNREADABLE_ANSWER", operation, retryable=True) from exc
        if not isinstance(answer, dict):
            raise GatewayError("UNREADABLE_ANSWER", operation, retryable=True)
        if response.is_success:
            return answer
        code = str(answer.get("code") or f"HTTP_{response.status_code}")
        message = str(answer.get("message") or "")
        if code == "STATEMENT_NOT_READY":
            raise StatementNotReady(message)
        raise GatewayError(
            code,
            message,
            retryable=response.status_code >= 500 or code in _RETRYABLE_CODES,
        )


def _line(item: Mapping[str, Any]) -> StatementLine:
    kind = StatementKind(item["kind"])
    raw = {str(key): str(value) for key, value in item.items()}
    return StatementLine(
        kind=kind,
        out_trade_no=str(item["out_trade_no"]),
        transaction_id=str(item["settlement_no"]),
        amount_fen=_fen(item["amount_fen"]),
        at=_instant(item["at"]),
        out_refund_no=None,
        refund_id=str(item["refund_no"]) if kind is StatementKind.REFUND else None,
        raw=raw,
    )


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise ValueError("the insurance platform key file holds fewer than 16 bytes")
    return key


def insurance_from_settings(
    settings: Settings, *, clock: Clock | None = None, client: httpx.AsyncClient | None = None
) -> HttpInsuranceGateway | None:
    """The gateway the settings describe, or None when insurance is not configured. A half
    configuration is an error, named without values."""
    named = {
        "insurance_gateway_url": settings.insurance_gateway_url,
        "insurance_org_code": settings.insurance_org_code,
        "insurance_key_file": settings.insurance_key_file,
    }
    if all(value is None for value in named.values()):
        return None
    missing = [name for name, value in named.items() if value is None]
    if missing:
        raise ValueError(f"medical insurance is half configured; missing: {', '.join(missing)}")
    assert settings.insurance_gateway_url is not None
    assert settings.insurance_org_code is not None
    assert settings.insurance_key_file is not None
    return HttpInsuranceGateway(
        base_url=settings.insurance_gateway_url,
        org_code=settings.insurance_org_code,
        key=_read_key(settings.insurance_key_file),
        clock=clock,
        client=client,
    )
