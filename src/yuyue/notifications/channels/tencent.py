"""Tencent Cloud SMS (API version 2021-01-11): JSON POSTs signed with TC3-HMAC-SHA256.

Tencent templates take positional values ({1}, {2}, …) while our messages carry named
ones, so the template code setting may name the order: "1234567:code,minutes" sends
`params["code"]` as {1} and `params["minutes"]` as {2}. A bare "1234567" sends the
values in key order, numeric keys by number ("1", "2", …, "10"), others alphabetically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import httpx

from yuyue.kit.clock import Clock, SystemClock
from yuyue.notifications.channels.base import SendOutcome, SmsMessage
from yuyue.notifications.channels.masking import mask_phone, scrub_phone_numbers
from yuyue.notifications.channels.transport import transport_failure, unreadable_answer

log = logging.getLogger(__name__)

TENCENT_SMS_ENDPOINT = "https://sms.tencentcloudapi.com/"
API_VERSION = "2021-01-11"
SERVICE = "sms"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
# Mainland China has one time zone and no daylight saving; the provider's days are these.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))

# LimitExceeded.* are throttles (per number, per app, per day) and InternalError.* the
# provider's own faults: both pass. FailedOperation.*, InvalidParameterValue.*,
# AuthFailure.* and anything unknown are about the message, the template or the account.
_RETRYABLE_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError")


def is_retryable(code: str) -> bool:
    return any(code == prefix or code.startswith(prefix + ".") for prefix in _RETRYABLE_PREFIXES)


def canonical_request(
    *, method: str, headers: Mapping[str, str], signed_headers: Sequence[str], payload: bytes
) -> str:
    """Method, URI "/", the (empty, for POST) query, the signed headers as lower-case
    `name:value` lines in name order, their names, and the payload's SHA-256."""
    names = sorted(name.lower() for name in signed_headers)
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name].strip().lower()}\n" for name in names)
    return "\n".join(
        [
            method,
            "/",
            "",
            canonical_headers,
            ";".join(names),
            hashlib.sha256(payload).hexdigest(),
        ]
    )


def credential_scope(timestamp: int, service: str = SERVICE) -> str:
    # The UTC date of the timestamp: a local date breaks every request between 00:00 and
    # 08:00 in Beijing.
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return f"{day}/{service}/tc3_request"


def signature(*, secret_key: str, timestamp: int, canonical: str, service: str = SERVICE) -> str:
    scope = credential_scope(timestamp, service)
    to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("TC3" + secret_key).encode()
    for part in (scope.split("/")[0], service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    signed_headers: Sequence[str] = ("content-type", "host"),
    service: str = SERVICE,
) -> str:
    canonical = canonical_request(
        method="POST", headers=headers, signed_headers=signed_headers, payload=payload
    )
    names = ";".join(sorted(name.lower() for name in signed_headers))
    value = signature(
        secret_key=secret_key, timestamp=timestamp, canonical=canonical, service=service
    )
    return (
        f"{ALGORITHM} Credential={secret_id}/{credential_scope(timestamp, service)}, "
        f"SignedHeaders={names}, Signature={value}"
    )


def template_values(template_code: str, params: Mapping[str, str]) -> tuple[str, list[str]]:
    """Splits "1234567:code,minutes" into the template id and the values in that order.
    Raises KeyError naming a parameter the message does not carry."""
    template_id, _, order = template_code.partition(":")
    if order:
        names = [name.strip() for name in order.split(",") if name.strip()]
    else:
        names = sorted(params, key=lambda key: (0, int(key), "") if key.isdigit() else (1, 0, key))
    return template_id.strip(), [params[name] for name in names]


def e164(phone: str) -> str:
    return phone if phone.startswith("+") else "+86" + phone


class TencentSmsSender:
    """Sends through `SendSms`; looks attempts up with `PullSmsSendStatusByPhoneNumber`."""

    name = "tencent"

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str,
        region: str = "ap-guangzhou",
        endpoint: str = TENCENT_SMS_ENDPOINT,
        timeout_seconds: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._sdk_app_id = sdk_app_id
        self._sign_name = sign_name
        self._region = region
        self._endpoint = endpoint
        self._timeout = httpx.Timeout(timeout_seconds)
        # A client passed in belongs to the caller, who closes it; one made here is ours.
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"TencentSmsSender(secret_id={self._secret_id!r}, endpoint={self._endpoint!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def send(self, message: SmsMessage) -> SendOutcome:
        try:
            template_id, values = template_values(message.template_code, message.params)
        except KeyError as missing:
            # A template setting that names a value the message lacks is our mistake and
            # no later attempt will carry it; the provider is not asked.
            outcome = SendOutcome(
                accepted=False, reason=f"template {message.template_code}: no value {missing}"
            )
            self._log(message, outcome)
            return outcome
        answer = await self._call(
            "SendSms",
            {
                "PhoneNumberSet": [e164(message.phone)],
                "SmsSdkAppId": self._sdk_app_id,
                "SignName": self._sign_name,
                "TemplateId": template_id,
                "TemplateParamSet": values,
                "SessionContext": message.reference,
            },
        )
        if isinstance(answer, SendOutcome):
            outcome = answer
        else:
            statuses = answer.get("SendStatusSet")
            status = statuses[0] if isinstance(statuses, list) and statuses else None
            if not isinstance(status, dict):
                outcome = unreadable_answer(200)
            elif status.get("Code") == "Ok":
                outcome = SendOutcome(
                    accepted=True,
                    provider_id=str(status.get("SerialNo") or "") or None,
                    details={"request_id": str(answer.get("RequestId", ""))},
                )
            else:
                outcome = _refusal(status, answer, http_status=200)
        self._log(message, outcome)
        return outcome

    async def was_sent(self, message: SmsMessage, *, on: date) -> bool | None:
        """Looks our SessionContext up among the carrier receipts for the number that day
        (China Standard Time; the provider keeps seven days).

        A SUCCESS receipt is True and a FAIL receipt False (the patient got nothing, so
        another attempt is due). Only receipts are listed, not accepted messages, so no
        receipt does not mean "not sent": it may be on its way. That is None, as is a
        look-up that fails.
        """
        begin = datetime.combine(on, time(), CHINA_STANDARD_TIME)
        answer = await self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": int(begin.timestamp()),
                "EndTime": int((begin + timedelta(days=1)).timestamp()),
                "Offset": 0,
                "Limit": 100,
                "PhoneNumber": e164(message.phone),
                "SmsSdkAppId": self._sdk_app_id,
            },
        )
        if isinstance(answer, SendOutcome):
            return None
        receipts = answer.get("PullSmsSendStatusSet")
        reports = {
            receipt.get("ReportStatus")
            for receipt in (receipts if isinstance(receipts, list) else [])
            if isinstance(receipt, dict) and receipt.get("SessionContext") == message.reference
        }
        if "SUCCESS" in reports:
            return True
        if "FAIL" in reports:
            return False
        return None

    async def _call(self, action: str, body: Mapping[str, Any]) -> dict[str, Any] | SendOutcome:
        """One signed request; the `Response` object, or the failure as an outcome."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self._clock.now().timestamp())
        request = self._client.build_request(
            "POST",
            self._endpoint,
            content=payload,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-TC-Action": action,
                "X-TC-Version": API_VERSION,
                "X-TC-Timestamp": str(timestamp),
                "X-TC-Region": self._region,
            },
            timeout=self._timeout,
        )
        # Signed after building, over the Host header the client will actually send.
        request.headers["Authorization"] = authorization(
            secret_id=self._secret_id,
            secret_key=self._secret_key,
            timestamp=timestamp,
            headers=request.headers,
            payload=payload,
        )
        try:
            response = await self._client.send(request)
        except httpx.HTTPError as error:
            return transport_failure(error)
        try:
            document = response.json()
        except ValueError:
            document = None
        answer = document.get("Response") if isinstance(document, dict) else None
        if not isinstance(answer, dict):
            return unreadable_answer(response.status_code)
        refusal = answer.get("Error")
        if isinstance(refusal, dict):
            return _refusal(refusal, answer, http_status=response.status_code)
        if response.status_code >= 400:
            return unreadable_answer(response.status_code)
        return answer

    def _log(self, message: SmsMessage, outcome: SendOutcome) -> None:
        if outcome.accepted:
            log.info(
                "tencent accepted SMS %s to %s (SerialNo %s)",
                message.reference,
                mask_phone(message.phone),
                outcome.provider_id,
            )
        else:
            log.warning(
                "tencent refused SMS %s to %s (%s): %s",
                message.reference,
                mask_phone(message.phone),
                "will retry" if outcome.retryable else "final",
                outcome.reason,
            )


def _refusal(
    error: Mapping[str, Any], answer: Mapping[str, Any], *, http_status: int
) -> SendOutcome:
    code = str(error.get("Code"))
    message = str(error.get("Message", ""))
    return SendOutcome(
        accepted=False,
        retryable=http_status >= 500 or is_retryable(code),
        reason=scrub_phone_numbers(f"{code}: {message}" if message else code),
        details={"code": code, "request_id": str(answer.get("RequestId", ""))},
    )
