"""Alibaba Cloud SMS (dysmsapi, API version 2017-05-25): RPC style, signature V1.

Requests are POSTed as a form. The signature covers the same parameters as for GET (only
the method in the string to sign differs), and a body keeps phone numbers and template
values out of URLs, which HTTP clients, proxies and gateways write to their logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from yuyue.kit.clock import Clock, SystemClock
from yuyue.notifications.channels.base import SendOutcome, SmsMessage
from yuyue.notifications.channels.masking import mask_phone, scrub_phone_numbers
from yuyue.notifications.channels.transport import transport_failure, unreadable_answer

log = logging.getLogger(__name__)

ALIBABA_SMS_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"
# QuerySendDetails pages hold at most 50 records; more than this many pages for one number
# on one day would mean something else is wrong, so the look-up gives up and says so.
_PAGE_SIZE = 50
_MAX_PAGES = 10

# Refusals that say "not now" rather than "never": the provider's own faults and its
# throttles (per number: one a minute, five an hour, ten a day by default).
_RETRYABLE_CODES = frozenset(
    {
        "isp.SYSTEM_ERROR",
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "SignatureNonceUsed",
        "ServiceUnavailable",
        "InternalError",
    }
)
_RETRYABLE_PREFIXES = ("Throttling", "ServiceUnavailable.", "InternalError.")


def percent_encode(value: str) -> str:
    """RFC 3986 as the provider documents it: UTF-8, unreserved characters (A-Z a-z 0-9
    - _ . ~) kept, everything else %XX in upper case, so a space is %20, never "+", and
    "*" is %2A."""
    return quote(value, safe="")


def canonicalized_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter but Signature."""
    digest = hmac.new(
        (access_key_secret + "&").encode(),
        string_to_sign(method, params).encode(),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode()


def is_retryable(code: str) -> bool:
    """Unknown codes are final: a refusal we cannot name is more often a template, a
    signature or an account matter, which repeating the request does not mend."""
    return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES)


def _reason(code: str, message: str) -> str:
    # SignatureDoesNotMatch quotes the whole string the server signed (phone number and
    # template values included); the code says enough.
    message = message.split("server string to sign is", 1)[0].rstrip(" :,.")
    return scrub_phone_numbers(f"{code}: {message}" if message else code)


class AlibabaSmsSender:
    """Sends through `SendSms` and looks attempts up with `QuerySendDetails`."""

    name = "alibaba"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        region: str = "cn-hangzhou",
        endpoint: str = ALIBABA_SMS_ENDPOINT,
        timeout_seconds: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._sign_name = sign_name
        self._region = region
        self._endpoint = endpoint
        self._timeout = httpx.Timeout(timeout_seconds)
        # A client passed in belongs to the caller, who closes it; one made here is ours.
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return (
            f"AlibabaSmsSender(access_key_id={self._access_key_id!r}, endpoint={self._endpoint!r})"
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def send(self, message: SmsMessage) -> SendOutcome:
        answer = await self._call(
            "SendSms",
            {
                "PhoneNumbers": message.phone,
                "SignName": self._sign_name,
                "TemplateCode": message.template_code,
                "TemplateParam": json.dumps(message.params, ensure_ascii=False),
                "OutId": message.reference,
            },
        )
        if isinstance(answer, SendOutcome):
            outcome = answer
        elif answer.get("Code") == "OK":
            outcome = SendOutcome(
                accepted=True,
                provider_id=str(answer.get("BizId") or "") or None,
                details={"request_id": str(answer.get("RequestId", ""))},
            )
        else:
            outcome = self._refusal(answer, http_status=200)
        self._log(message, outcome)
        return outcome

    async def was_sent(self, message: SmsMessage, *, on: date) -> bool | None:
        """Looks our OutId up among the day's records for the number.

        "Sent" means the provider took the message and has not reported it undelivered:
        SendStatus 3 (delivered) and 1 (waiting for the carrier's receipt) are True,
        because the text is already on its way and sending it again would reach the
        patient twice; 2 (failed) is False, since the patient got nothing and another
        attempt is what they need. A record exists from the moment SendSms accepts a
        message (ask a little after the attempt: it can take seconds to appear), so a day
        with no record of our OutId is False too. `on` is the date in China Standard Time,
        the provider's calendar. None when the look-up itself fails.
        """
        statuses: list[int] = []
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._call(
                "QuerySendDetails",
                {
                    "PhoneNumber": message.phone,
                    "SendDate": on.strftime("%Y%m%d"),
                    "PageSize": str(_PAGE_SIZE),
                    "CurrentPage": str(page),
                },
            )
            if isinstance(answer, SendOutcome) or answer.get("Code") != "OK":
                return None
            records = _send_details(answer)
            statuses += [
                _as_int(record.get("SendStatus"))
                for record in records
                if record.get("OutId") == message.reference
            ]
            if len(records) < _PAGE_SIZE or page * _PAGE_SIZE >= _as_int(answer.get("TotalCount")):
                break
        else:
            return None
        return any(status in (1, 3) for status in statuses)

    async def _call(
        self, action: str, operation: Mapping[str, str]
    ) -> dict[str, Any] | SendOutcome:
        """One signed request; the provider's JSON answer, or the failure as an outcome."""
        params = {
            "Action": action,
            "Version": API_VERSION,
            "Format": "JSON",
            "AccessKeyId": self._access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": self._clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RegionId": self._region,
            **operation,
        }
        params["Signature"] = sign("POST", params, self._access_key_secret)
        try:
            response = await self._client.post(
                self._endpoint,
                content=canonicalized_query(params),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            return transport_failure(error)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("Code"), str):
            return unreadable_answer(response.status_code)
        if response.status_code >= 400:
            return self._refusal(body, http_status=response.status_code)
        return body

    @staticmethod
    def _refusal(body: Mapping[str, Any], *, http_status: int) -> SendOutcome:
        code = str(body.get("Code"))
        return SendOutcome(
            accepted=False,
            retryable=http_status >= 500 or is_retryable(code),
            reason=_reason(code, str(body.get("Message", ""))),
            details={"code": code, "request_id": str(body.get("RequestId", ""))},
        )

    def _log(self, message: SmsMessage, outcome: SendOutcome) -> None:
        if outcome.accepted:
            log.info(
                "alibaba accepted SMS %s to %s (BizId %s)",
                message.reference,
                mask_phone(message.phone),
                outcome.provider_id,
            )
        else:
            log.warning(
                "alibaba refused SMS %s to %s (%s): %s",
                message.reference,
                mask_phone(message.phone),
                "will retry" if outcome.retryable else "final",
                outcome.reason,
            )


def _as_int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _send_details(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    container = answer.get("SmsSendDetailDTOs")
    records = container.get("SmsSendDetailDTO") if isinstance(container, dict) else None
    return [record for record in records or [] if isinstance(record, dict)]
