"""SMTP email sender against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from yuyue.config import Settings
from yuyue.notifications.channels.base import EmailMessage
from yuyue.notifications.channels.factory import build_email_sender
from yuyue.notifications.channels.smtp import SmtpEmailSender, message_id

SENDER = "noreply@hospital.example"
PATIENT = "zhang.wei@patient.example"
USERNAME = "mailer"
PASSWORD = "smtp-password-not-real"


def letter(**overrides: str) -> EmailMessage:
    values = {
        "to": PATIENT,
        "subject": "预约成功：内科 11月23日 上午",
        "body": "张伟您好，您已预约 11月23日 上午 内科 王医生，第 12 号。\n请提前 15 分钟到院。",
        "reference": "delivery-7f3a",
    }
    values.update(overrides)
    return EmailMessage(**values)


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it is given and how it was given."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    sessions: list[tuple[bool, bool]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append(envelope)
        self.sessions.append((session.ssl is not None, bool(session.authenticated)))
        return "250 2.0.0 queued as 4FgH2k"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem", pem


def serve(mailbox: Mailbox, **smtp_options: Any) -> Controller:
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    return controller


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def plain_server(mailbox: Mailbox) -> Iterator[Controller]:
    controller = serve(mailbox)
    yield controller
    controller.stop()


@pytest.fixture
def tls_server(mailbox: Mailbox, certificate: tuple[Path, Path, bytes]) -> Iterator[Controller]:
    """STARTTLS required before anything else, AUTH required before MAIL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate[0], certificate[1])

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        valid = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        # handled=False: the server itself answers a refusal with 535.
        return AuthResult(success=valid, handled=False)

    controller = serve(
        mailbox,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    yield controller
    controller.stop()


def plain_sender(controller: Controller, **overrides: Any) -> SmtpEmailSender:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": controller.port,
        "sender": SENDER,
        "starttls": False,
        "timeout_seconds": 2.0,
    }
    options.update(overrides)
    return SmtpEmailSender(**options)


def tls_sender(controller: Controller, pem: bytes, **overrides: Any) -> SmtpEmailSender:
    options: dict[str, Any] = {
        "starttls": True,
        "username": USERNAME,
        "password": PASSWORD,
        "tls_context": ssl.create_default_context(cadata=pem.decode()),
    }
    options.update(overrides)
    return plain_sender(controller, **options)


class TestDelivery:
    async def test_message_arrives_in_utf8_with_a_message_id_from_our_reference(
        self, plain_server: Controller, mailbox: Mailbox
    ) -> None:
        outcome = await plain_sender(plain_server).send(letter())

        assert outcome.accepted
        [received] = mailbox.messages
        assert received["Subject"] == "预约成功：内科 11月23日 上午"
        assert received.get_content().replace("\r\n", "\n").rstrip("\n") == letter().body
        assert received["Message-ID"] == "<delivery-7f3a@hospital.example>"
        assert received["X-Yuyue-Reference"] == "delivery-7f3a"
        assert outcome.provider_id == "<delivery-7f3a@hospital.example>"
        assert "queued as 4FgH2k" in outcome.details["response"]
        [envelope] = mailbox.envelopes
        assert (envelope.mail_from, envelope.rcpt_tos) == (SENDER, [PATIENT])
        # No username configured: no AUTH, and no STARTTLS when it is turned off.
        assert mailbox.sessions == [(False, False)]

    async def test_a_resend_carries_the_same_message_id(
        self, plain_server: Controller, mailbox: Mailbox
    ) -> None:
        sender = plain_sender(plain_server)

        await sender.send(letter())
        await sender.send(letter())
        await sender.send(letter(reference="delivery-9b21"))

        assert [m["Message-ID"] for m in mailbox.messages] == [
            "<delivery-7f3a@hospital.example>",
            "<delivery-7f3a@hospital.example>",
            "<delivery-9b21@hospital.example>",
        ]

    def test_a_reference_unfit_for_a_message_id_is_digested_the_same_way_each_time(
        self,
    ) -> None:
        first = message_id("order 7/3 <x>", SENDER)

        assert first == message_id("order 7/3 <x>", SENDER)
        assert first != message_id("order 7/3 <y>", SENDER)
        assert first.startswith("<yuyue.") and first.endswith("@hospital.example>")
        assert " " not in first and "/" not in first

    async def test_starttls_and_auth_when_configured(
        self,
        tls_server: Controller,
        mailbox: Mailbox,
        certificate: tuple[Path, Path, bytes],
    ) -> None:
        outcome = await tls_sender(tls_server, certificate[2]).send(letter())

        assert outcome.accepted
        assert mailbox.sessions == [(True, True)]

    async def test_a_wrong_password_is_final(
        self,
        tls_server: Controller,
        mailbox: Mailbox,
        certificate: tuple[Path, Path, bytes],
    ) -> None:
        sender = tls_sender(tls_server, certificate[2], password="wrong")

        outcome = await sender.send(letter())

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.reason is not None and outcome.reason.startswith("535")
        assert mailbox.messages == []

    async def test_without_a_username_a_server_requiring_auth_refuses(
        self,
        tls_server: Controller,
        mailbox: Mailbox,
        certificate: tuple[Path, Path, bytes],
    ) -> None:
        sender = tls_sender(tls_server, certificate[2], username=None, password=None)

        outcome = await sender.send(letter())

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "530"
        assert mailbox.messages == []

    async def test_required_starttls_missing_on_the_server_sends_nothing(
        self, plain_server: Controller, mailbox: Mailbox
    ) -> None:
        sender = plain_sender(plain_server, starttls=True, username=USERNAME, password=PASSWORD)

        outcome = await sender.send(letter())

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert mailbox.messages == []

    async def test_a_header_with_a_line_break_is_final_and_sends_nothing(
        self, plain_server: Controller, mailbox: Mailbox
    ) -> None:
        outcome = await plain_sender(plain_server).send(
            letter(subject="预约成功\nBcc: everyone@example.com")
        )

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert mailbox.envelopes == []


class TestRefusals:
    async def test_550_is_final(self, mailbox: Mailbox) -> None:
        mailbox.rcpt_reply = "550 5.1.1 <zhang.wei@patient.example>: mailbox unavailable"
        controller = serve(mailbox)
        try:
            outcome = await plain_sender(controller).send(letter())
        finally:
            controller.stop()

        assert (outcome.accepted, outcome.retryable) == (False, False)
        assert outcome.details["code"] == "550"
        assert outcome.reason is not None and "mailbox unavailable" in outcome.reason
        assert PATIENT not in outcome.reason

    async def test_451_is_retryable(self, mailbox: Mailbox) -> None:
        mailbox.data_reply = "451 4.3.0 Temporary local problem, try again later"
        controller = serve(mailbox)
        try:
            outcome = await plain_sender(controller).send(letter())
        finally:
            controller.stop()

        assert (outcome.accepted, outcome.retryable) == (False, True)
        assert outcome.details["code"] == "451"

    async def test_a_closed_port_is_retryable(self) -> None:
        sender = SmtpEmailSender(host="127.0.0.1", port=free_port(), sender=SENDER, starttls=False)

        outcome = await sender.send(letter())

        assert (outcome.accepted, outcome.retryable) == (False, True)

    async def test_a_server_that_never_greets_times_out_as_retryable(self) -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = SmtpEmailSender(
            host="127.0.0.1", port=port, sender=SENDER, starttls=False, timeout_seconds=0.3
        )
        try:
            started = time.monotonic()
            outcome = await sender.send(letter())
            elapsed = time.monotonic() - started
        finally:
            server.close()

        assert elapsed < 2
        assert (outcome.accepted, outcome.retryable) == (False, True)


class TestLogging:
    async def test_logs_hide_the_password_and_the_address(
        self,
        tls_server: Controller,
        certificate: tuple[Path, Path, bytes],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="yuyue")

        sender = tls_sender(tls_server, certificate[2])
        await sender.send(letter())
        await tls_sender(tls_server, certificate[2], password="wrong").send(letter())

        assert "z***@patient.example" in caplog.text
        assert PATIENT not in caplog.text
        assert PASSWORD not in caplog.text
        assert PASSWORD not in repr(sender)


class TestFactory:
    def test_no_host_means_no_email(self) -> None:
        assert build_email_sender(Settings(smtp_host=None)) is None

    def test_a_username_without_a_password_is_refused(self) -> None:
        with pytest.raises(ValueError, match="YUYUE_SMTP_PASSWORD"):
            build_email_sender(Settings(smtp_host="127.0.0.1", smtp_username=USERNAME))

    async def test_built_sender_delivers(self, plain_server: Controller, mailbox: Mailbox) -> None:
        sender = build_email_sender(
            Settings(
                smtp_host="127.0.0.1",
                smtp_port=plain_server.port,
                smtp_sender=SENDER,
                smtp_starttls=False,
            )
        )
        assert sender is not None

        outcome = await sender.send(letter())

        assert outcome.accepted
        assert mailbox.envelopes[0].mail_from == SENDER
