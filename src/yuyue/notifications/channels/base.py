"""What every delivery channel offers the delivery worker.

A sender makes one network call and reports what happened; it never touches the database
and never retries on its own: retries, back-off and the record of attempts belong to the
worker, so a provider adapter stays a thin translation of the provider's wire protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Protocol


class DeliveryChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    INBOX = "inbox"


@dataclass(frozen=True, slots=True)
class SmsMessage:
    # Mainland mobile number, 11 digits, no country prefix (the only kind we register).
    phone: str
    # Chinese providers send only pre-approved templates: the code names one, the params
    # fill it. `text` is the same message rendered in full, for providers and consoles
    # that take free text.
    template_code: str
    params: dict[str, str]
    text: str
    # Our delivery id, sent as the provider's caller reference (Alibaba `OutId`, Tencent
    # `SessionContext`) so an attempt whose outcome was lost can be looked up later.
    reference: str


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    body: str
    reference: str


@dataclass(frozen=True, slots=True)
class SendOutcome:
    accepted: bool
    # Retryable failures (timeouts, throttling, 5xx) are tried again with back-off;
    # the others (an invalid number, an unapproved template) fail at once.
    retryable: bool = False
    provider_id: str | None = None
    # Provider's own code and message, recorded on the attempt.
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)


class SmsSender(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> SendOutcome: ...

    async def was_sent(self, message: SmsMessage, *, on: date) -> bool | None:
        """Asks the provider whether a message with this reference went out on that day:
        True, False, or None when the provider cannot tell."""
        ...


class EmailSender(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> SendOutcome: ...
