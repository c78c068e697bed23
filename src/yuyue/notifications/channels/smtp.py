"""Email over SMTP (aiosmtplib): one connection per message, UTF-8 throughout."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import ssl
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

import aiosmtplib

from yuyue.kit.clock import Clock, SystemClock
from yuyue.notifications.channels.base import EmailMessage, SendOutcome

log = logging.getLogger(__name__)

# Port 465 speaks TLS from the first byte ("implicit TLS"); other ports upgrade with
# STARTTLS when configured.
IMPLICIT_TLS_PORT = 465
_MESSAGE_ID_SAFE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def message_id(reference: str, sender: str) -> str:
    """The same reference always gives the same Message-ID, so a message sent again after
    a lost answer is recognisable (and dropped by receivers that de-duplicate)."""
    domain = sender.rpartition("@")[2] or "localhost"
    local = reference if _MESSAGE_ID_SAFE.fullmatch(reference) else _digest(reference)
    return f"<{local}@{domain}>"


def _digest(reference: str) -> str:
    return "yuyue." + hashlib.sha256(reference.encode()).hexdigest()[:32]


def is_retryable(code: int) -> bool:
    """SMTP's own rule: 4xx is "try again later", 5xx is final."""
    return 400 <= code < 500


def _mask_address(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class SmtpEmailSender:
    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout_seconds: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout_seconds
        self._tls_context = tls_context
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"SmtpEmailSender(host={self._host!r}, port={self._port}, user={self._username!r})"

    def compose(self, message: EmailMessage) -> MimeMessage:
        """Raises ValueError for headers that would break the message (line breaks)."""
        mime = MimeMessage()
        mime["From"] = self._sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(self._clock.now())
        mime["Message-ID"] = message_id(message.reference, self._sender)
        mime["X-Yuyue-Reference"] = message.reference
        mime.set_content(message.body, charset="utf-8")
        return mime

    async def send(self, message: EmailMessage) -> SendOutcome:
        try:
            mime = self.compose(message)
        except ValueError as error:
            outcome = SendOutcome(accepted=False, reason=f"cannot compose: {error}")
            self._log(message, outcome)
            return outcome
        try:
            answer = await self._deliver(mime)
        except _Unsupported as error:
            # Our settings ask for STARTTLS or AUTH and the server does not offer it: a
            # configuration to fix, not a moment to wait out. Nothing was sent.
            outcome = SendOutcome(accepted=False, reason=str(error))
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0]
            outcome = _refusal(refused.code, refused.message)
        except aiosmtplib.SMTPResponseException as error:
            outcome = _refusal(error.code, error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            # Could not connect, timed out, or the connection dropped: the server never
            # answered for this message, which is worth another try.
            outcome = SendOutcome(
                accepted=False, retryable=True, reason=f"{type(error).__name__}: {error}"
            )
        else:
            outcome = SendOutcome(
                accepted=True,
                provider_id=str(mime["Message-ID"]),
                details={"response": answer},
            )
        if outcome.reason and message.to in outcome.reason:
            # Servers quote the refused address; the log and the attempt need not.
            masked = outcome.reason.replace(message.to, _mask_address(message.to))
            outcome = dataclasses.replace(outcome, reason=masked)
        self._log(message, outcome)
        return outcome

    async def _deliver(self, mime: MimeMessage) -> str:
        """One session: connect, STARTTLS, AUTH, the message; the server's final answer."""
        implicit_tls = self._port == IMPLICIT_TLS_PORT
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            use_tls=implicit_tls,
            start_tls=False,
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        async with client:
            await client.ehlo()
            if self._starttls and not implicit_tls:
                # Required, not opportunistic: a server that does not offer STARTTLS must
                # not receive the password or the patient's message in clear text.
                if not client.supports_extension("starttls"):
                    raise _Unsupported("server does not offer STARTTLS, which is required")
                await client.starttls()
                # The extensions offered before TLS are void; ask again inside it.
                await client.ehlo()
            if self._username:
                if not client.supports_extension("auth"):
                    raise _Unsupported("server does not offer AUTH, and a username is set")
                await client.login(self._username, self._password or "")
            _, answer = await client.send_message(mime)
        return answer

    def _log(self, message: EmailMessage, outcome: SendOutcome) -> None:
        if outcome.accepted:
            log.info("smtp accepted email %s to %s", message.reference, _mask_address(message.to))
        else:
            log.warning(
                "smtp refused email %s to %s (%s): %s",
                message.reference,
                _mask_address(message.to),
                "will retry" if outcome.retryable else "final",
                outcome.reason,
            )


class _Unsupported(Exception):
    pass


def _refusal(code: int, text: str) -> SendOutcome:
    return SendOutcome(
        accepted=False,
        retryable=is_retryable(code),
        reason=f"{code} {text}",
        details={"code": str(code)},
    )
