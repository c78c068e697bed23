"""A stand-in for the medical-insurance platform, speaking the protocol of payments.insurance.

It holds, settles, releases and refunds as the platform would, with a deterministic split so
tests and the demo know the answer in advance:

1. the part of the fee under what is left of the insured person's deductible (起付线) is
   not covered by the pool; the deductible left goes down by it;
2. the pool (统筹) pays `pool_ratio_bp` per ten thousand of the rest, rounded down to the fen
   (the fund never pays a fraction of a fen too much);
3. the personal account (个人账户) pays what remains as far as its balance goes;
4. the patient pays the rest themselves (自付).

Each insured person belongs to a scheme (职工 employees, 居民 residents, …) whose
registration-fee policy sets the deductible and the pool ratio. A refund reverses a
settlement whole: the account balance and the deductible come back.

It checks every request's signature, timestamp (5 minutes) and nonce, signs every answer,
keeps the signed notifications it would have sent (`notifications`) and lists each day's
settlements and refunds (the insurer's share, which is the money that moves through the
platform) once the day is over on its clock."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response

from yuyue.kit.clock import Clock, SystemClock
from yuyue.payments.insurance import (
    HEADER_NONCE,
    NOTIFY_LINE,
    TIMESTAMP_WINDOW,
    InsuranceEvent,
    check_signature,
    operation_path,
    signed_headers,
)

PLATFORM_TIMEZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Scheme:
    """One scheme's registration-fee policy."""

    deductible_fen: int  # 起付线, once per insured person (per year on the real platform)
    pool_ratio_bp: int  # the pool's share above the deductible, per ten thousand


DEFAULT_SCHEMES: Mapping[str, Scheme] = {
    "employee": Scheme(deductible_fen=0, pool_ratio_bp=7000),
    "resident": Scheme(deductible_fen=1000, pool_ratio_bp=5000),
}


@dataclass
class InsuredPerson:
    scheme: str
    account_balance_fen: int
    deductible_left_fen: int | None = None  # None: the scheme's whole deductible


@dataclass
class Hold:
    auth_no: str
    out_trade_no: str
    insured_token: str
    held_fen: int
    settlement_no: str | None = None
    settled_fen: int = 0
    released_fen: int | None = None  # None until released


@dataclass
class SimSettlement:
    settlement_no: str
    auth_no: str
    out_trade_no: str
    insured_token: str
    pool_fen: int
    account_fen: int
    self_pay_fen: int
    deductible_used_fen: int
    settled_at: datetime
    refund: SimRefund | None = None

    @property
    def total_fen(self) -> int:
        return self.pool_fen + self.account_fen + self.self_pay_fen

    def as_json(self) -> dict[str, Any]:
        return {
            "settlement_no": self.settlement_no,
            "auth_no": self.auth_no,
            "out_trade_no": self.out_trade_no,
            "total_fen": self.total_fen,
            "pool_fen": self.pool_fen,
            "account_fen": self.account_fen,
            "self_pay_fen": self.self_pay_fen,
            "settled_at": self.settled_at.isoformat(),
        }


@dataclass
class SimRefund:
    refund_no: str
    reason: str
    refunded_at: datetime


@dataclass(frozen=True)
class SentNotification:
    headers: dict[str, str]
    body: bytes


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or code


def _fen(payload: Mapping[str, Any], name: str, *, positive: bool = True) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or (positive and value <= 0):
        raise Refusal(400, "INVALID_REQUEST", f"{name} must be a positive amount in fen")
    return value


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise Refusal(400, "INVALID_REQUEST", f"{name} is required")
    return value


@dataclass
class InsuranceSimulator:
    org_code: str
    key: bytes
    clock: Clock
    schemes: Mapping[str, Scheme]
    insured: dict[str, InsuredPerson]
    holds: dict[str, Hold] = field(default_factory=dict)
    holds_by_trade: dict[str, str] = field(default_factory=dict)
    settlements: dict[str, SimSettlement] = field(default_factory=dict)
    notifications: list[SentNotification] = field(default_factory=list)
    _nonces: dict[str, datetime] = field(default_factory=dict)
    _serial: int = 0

    def _next(self, prefix: str) -> str:
        self._serial += 1
        day = self.clock.now().astimezone(PLATFORM_TIMEZONE).strftime("%Y%m%d")
        return f"{prefix}{day}{self._serial:08d}"

    def split(self, insured_token: str, total_fen: int) -> tuple[int, int, int, int]:
        """(pool, account, self-pay, deductible used) for a fee, without changing anything."""
        person = self.insured[insured_token]
        scheme = self.schemes[person.scheme]
        deductible_left = (
            scheme.deductible_fen
            if person.deductible_left_fen is None
            else person.deductible_left_fen
        )
        under_deductible = min(total_fen, deductible_left)
        pool = (total_fen - under_deductible) * scheme.pool_ratio_bp // 10_000
        account = min(total_fen - pool, person.account_balance_fen)
        return pool, account, total_fen - pool - account, under_deductible

    # Operations -------------------------------------------------------------------------

    def preauth(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        out_trade_no = _text(payload, "out_trade_no")
        token = _text(payload, "insured_token")
        total = _fen(payload, "total_fen")
        if token not in self.insured:
            raise Refusal(404, "INSURED_NOT_FOUND", "no insured person has that token")
        known = self.holds_by_trade.get(out_trade_no)
        if known is not None:
            hold = self.holds[known]
            if (hold.insured_token, hold.held_fen) != (token, total):
                raise Refusal(409, "DUPLICATE_TRADE", "that out_trade_no was held otherwise")
        else:
            hold = Hold(self._next("PA"), out_trade_no, token, total)
            self.holds[hold.auth_no] = hold
            self.holds_by_trade[out_trade_no] = hold.auth_no
        return {"auth_no": hold.auth_no, "out_trade_no": out_trade_no, "held_fen": hold.held_fen}

    def _hold(self, payload: Mapping[str, Any]) -> Hold:
        hold = self.holds.get(_text(payload, "auth_no"))
        if hold is None:
            raise Refusal(404, "AUTH_NOT_FOUND", "no hold has that auth_no")
        return hold

    def settle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        hold = self._hold(payload)
        total = _fen(payload, "total_fen")
        if hold.settlement_no is not None:
            settled = self.settlements[hold.settlement_no]
            if settled.total_fen != total:
                raise Refusal(409, "ALREADY_SETTLED", "the hold was settled for another amount")
            return settled.as_json()
        if hold.released_fen is not None:
            raise Refusal(409, "AUTH_RELEASED", "the hold was released")
        if total > hold.held_fen:
            raise Refusal(409, "EXCEEDS_HOLD", "the amount is more than the hold")
        pool, account, self_pay, deductible_used = self.split(hold.insured_token, total)
        person = self.insured[hold.insured_token]
        person.account_balance_fen -= account
        person.deductible_left_fen = (
            self.schemes[person.scheme].deductible_fen
            if person.deductible_left_fen is None
            else person.deductible_left_fen
        ) - deductible_used
        settlement = SimSettlement(
            settlement_no=self._next("ST"),
            auth_no=hold.auth_no,
            out_trade_no=hold.out_trade_no,
            insured_token=hold.insured_token,
            pool_fen=pool,
            account_fen=account,
            self_pay_fen=self_pay,
            deductible_used_fen=deductible_used,
            settled_at=self.clock.now(),
        )
        self.settlements[settlement.settlement_no] = settlement
        hold.settlement_no = settlement.settlement_no
        hold.settled_fen = total
        self._notify(InsuranceEvent.SETTLED, settlement)
        return settlement.as_json()

    def release(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        hold = self._hold(payload)
        if hold.released_fen is None:
            hold.released_fen = hold.held_fen - hold.settled_fen
        return {"auth_no": hold.auth_no, "released_fen": hold.released_fen}

    def refund(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        settlement = self.settlements.get(_text(payload, "settlement_no"))
        if settlement is None:
            raise Refusal(404, "SETTLEMENT_NOT_FOUND", "no settlement has that number")
        if settlement.refund is None:
            reason = payload.get("reason")
            settlement.refund = SimRefund(
                refund_no=self._next("RF"),
                reason=reason if isinstance(reason, str) else "",
                refunded_at=self.clock.now(),
            )
            person = self.insured[settlement.insured_token]
            person.account_balance_fen += settlement.account_fen
            person.deductible_left_fen = (
                person.deductible_left_fen or 0
            ) + settlement.deductible_used_fen
            self._notify(InsuranceEvent.REFUNDED, settlement)
        return _refund_json(settlement)

    def statement(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        try:
            day = date.fromisoformat(_text(payload, "bill_date"))
        except ValueError as exc:
            raise Refusal(400, "INVALID_REQUEST", "bill_date is YYYY-MM-DD") from exc
        if day >= self.clock.now().astimezone(PLATFORM_TIMEZONE).date():
            raise Refusal(409, "STATEMENT_NOT_READY", f"the statement of {day} is not ready")

        def on_day(instant: datetime) -> bool:
            return instant.astimezone(PLATFORM_TIMEZONE).date() == day

        lines: list[dict[str, Any]] = []
        for settlement in self.settlements.values():
            common = {
                "out_trade_no": settlement.out_trade_no,
                "settlement_no": settlement.settlement_no,
                "auth_no": settlement.auth_no,
                "amount_fen": settlement.pool_fen + settlement.account_fen,
                "pool_fen": settlement.pool_fen,
                "account_fen": settlement.account_fen,
                "self_pay_fen": settlement.self_pay_fen,
                "total_fen": settlement.total_fen,
            }
            if on_day(settlement.settled_at):
                lines.append({"kind": "payment", **common, "at": settlement.settled_at.isoformat()})
            refund = settlement.refund
            if refund is not None and on_day(refund.refunded_at):
                lines.append(
                    {
                        "kind": "refund",
                        **common,
                        "refund_no": refund.refund_no,
                        "at": refund.refunded_at.isoformat(),
                    }
                )
        lines.sort(key=lambda line: str(line["at"]))
        return {"bill_date": day.isoformat(), "lines": lines}

    # Signing ----------------------------------------------------------------------------

    def _notify(self, event: InsuranceEvent, settlement: SimSettlement) -> None:
        document: dict[str, Any] = {
            "event_id": self._next("EV"),
            "event_type": event.value,
            "settlement": settlement.as_json(),
        }
        if event is InsuranceEvent.REFUNDED:
            document["refund"] = _refund_json(settlement)
        body = json.dumps(document, ensure_ascii=False).encode()
        headers = signed_headers(
            self.key,
            first_line=NOTIFY_LINE,
            org_code=self.org_code,
            now=self.clock.now(),
            nonce=secrets.token_hex(16),
            body=body,
        )
        self.notifications.append(SentNotification(headers=headers, body=body))

    def check_request(self, path: str, headers: Mapping[str, str], body: bytes) -> None:
        now = self.clock.now()
        problem = check_signature(
            self.key,
            headers,
            first_line=f"POST {path}",
            org_code=self.org_code,
            body=body,
            now=now,
        )
        if problem is not None:
            raise Refusal(401, problem.value, "the request's signature does not hold")
        nonce = headers[HEADER_NONCE]
        for seen, at in list(self._nonces.items()):
            if now - at > TIMESTAMP_WINDOW * 2:
                del self._nonces[seen]
        if nonce in self._nonces:
            raise Refusal(401, "NONCE_REUSED", "that nonce was used already")
        self._nonces[nonce] = now

    def answer(self, path: str, status: int, document: Mapping[str, Any], nonce: str) -> Response:
        body = json.dumps(document, ensure_ascii=False).encode()
        headers = signed_headers(
            self.key,
            first_line=f"{status} {path}",
            org_code=self.org_code,
            now=self.clock.now(),
            nonce=nonce,
            body=body,
        )
        return Response(body, status, headers=headers, media_type="application/json")


def _refund_json(settlement: SimSettlement) -> dict[str, Any]:
    assert settlement.refund is not None
    return {
        "refund_no": settlement.refund.refund_no,
        "settlement_no": settlement.settlement_no,
        "out_trade_no": settlement.out_trade_no,
        "pool_fen": settlement.pool_fen,
        "account_fen": settlement.account_fen,
        "self_pay_fen": settlement.self_pay_fen,
        "refunded_at": settlement.refund.refunded_at.isoformat(),
    }


def build_insurance_simulator(
    *,
    org_code: str,
    key: bytes,
    clock: Clock | None = None,
    schemes: Mapping[str, Scheme] | None = None,
    insured: Mapping[str, InsuredPerson] | None = None,
) -> FastAPI:
    """The platform as an ASGI app; `insurance_simulator_of(app)` reaches its state."""
    platform = InsuranceSimulator(
        org_code=org_code,
        key=key,
        clock=clock or SystemClock(),
        schemes=dict(schemes or DEFAULT_SCHEMES),
        insured=dict(insured or {}),
    )
    operations: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
        "preauth": platform.preauth,
        "settle": platform.settle,
        "release": platform.release,
        "refund": platform.refund,
        "statement": platform.statement,
    }
    app = FastAPI(title="Medical insurance platform (simulator)", openapi_url=None)
    app.state.platform = platform

    @app.post("/v1/{operation}")
    async def operate(operation: str, request: Request) -> Response:
        path = operation_path(operation)
        body = await request.body()
        nonce = request.headers.get(HEADER_NONCE) or secrets.token_hex(16)
        try:
            if operation not in operations:
                raise Refusal(404, "NOT_FOUND", f"no operation {operation}")
            platform.check_request(path, request.headers, body)
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise Refusal(400, "INVALID_REQUEST", "the body is not JSON") from exc
            if not isinstance(payload, dict):
                raise Refusal(400, "INVALID_REQUEST", "the body is not a JSON object")
            document = operations[operation](payload)
        except Refusal as refusal:
            return platform.answer(
                path, refusal.status, {"code": refusal.code, "message": refusal.message}, nonce
            )
        return platform.answer(path, 200, {"code": "SUCCESS", **document}, nonce)

    return app


def insurance_simulator_of(app: FastAPI) -> InsuranceSimulator:
    platform: InsuranceSimulator = app.state.platform
    return platform
