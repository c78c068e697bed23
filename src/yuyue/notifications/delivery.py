"""Delivering the outbox: one pass of the worker (`deliver_due`).

A pass has three steps, each its own short transaction, and no network call inside any:

1. **Fan out.** Due outbox rows are taken with a conditional UPDATE (pending → dispatched)
   and become one `Delivery` per channel (SMS, in-app inbox, email).
2. **Claim.** Due deliveries are taken with a conditional UPDATE (pending → sending, with
   a lease token and a lease deadline), so two workers never take the same one; deliveries
   whose lease ran out (a worker died mid-send) are recovered the same way. The messages
   are rendered here.
3. **Send and record**, per delivery: the provider call happens outside any transaction;
   its outcome is recorded in a new one, only if the lease is still ours. Local channels
   (the inbox; the console SMS and its demo phone) write their row and mark the delivery
   sent in one transaction, so they happen exactly once.

A recovered SMS first asks the provider whether the message went out (`was_sent`): if it
did, the delivery is marked sent and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.booking.facts import session_info
from yuyue.booking.models import Appointment
from yuyue.booking.states import AppointmentStatus
from yuyue.config import Settings
from yuyue.kit import i18n
from yuyue.kit.clock import Clock
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.db import Database
from yuyue.notifications import rules
from yuyue.notifications.channels.base import (
    DeliveryChannel,
    EmailMessage,
    EmailSender,
    SendOutcome,
    SmsMessage,
    SmsSender,
)
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    DemoPhoneMessage,
    InboxItem,
    OutboxMessage,
    OutboxStatus,
)
from yuyue.notifications.service import (
    enqueue_next_reminder,
    load_delivery_settings,
    template_in_force,
)
from yuyue.notifications.templates import format_date
from yuyue.patients.models import Account, Patient
from yuyue.patients.rules import mask_phone
from yuyue.scheduling.models import ClinicSession, Department, Hospital, TimeSlot
from yuyue.visits import service as visits_service

log = logging.getLogger(__name__)


class DeliveryEnv(Protocol):
    """What a pass needs from whoever runs it (a worker's context, a test's): the database,
    the clock, the key that opens `_cipher` fields and the settings naming the channels."""

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def cipher(self) -> FieldCipher: ...

    @property
    def settings(self) -> Settings: ...


D = DeliveryStatus
_PHONE_PURPOSE = "phone"  # the blind-index purpose patients use for phones
_SEND_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Senders:
    """The outside channels. `sms=None` is the console channel (log line, demo phone);
    `email=None` means no email channel."""

    sms: SmsSender | None = None
    email: EmailSender | None = None


def senders_from_settings(settings: Settings) -> Senders:
    """The provider adapters the settings name; the console and no email when the adapters
    are not installed."""
    try:
        factory: Any = importlib.import_module("yuyue.notifications.channels.factory")
    except ImportError:
        if settings.sms_provider != "console" or settings.smtp_host:
            log.warning("provider adapters are not available; SMS goes to the console")
        return Senders()
    return Senders(
        sms=cast(SmsSender | None, factory.build_sms_sender(settings)),
        email=cast(EmailSender | None, factory.build_email_sender(settings)),
    )


@dataclass
class DeliveryReport:
    """What one pass did, in counts."""

    fanned_out: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    withdrawn: int = 0
    recovered: int = 0
    lost_leases: int = 0
    # Remote deliveries that broke after the provider may have been called, left to
    # their lease's recovery.
    left_leased: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.fanned_out or self.sent or self.retried or self.failed)


# --- 1. fan out ---------------------------------------------------------------------------


async def _fan_out(
    session: AsyncSession, *, now: datetime, limit: int, report: DeliveryReport
) -> None:
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.available_at <= now)
        .order_by(OutboxMessage.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    taken = (
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.DISPATCHED)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
    ).scalars()
    ids = list(taken)
    if not ids:
        return
    messages = (await session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)))).all()
    for message in messages:
        kind = MessageKind(message.kind)
        if kind is MessageKind.REMINDER and not await _still_booked(session, message):
            message.status = OutboxStatus.WITHDRAWN
            report.withdrawn += 1
            continue
        patient = await session.get(Patient, message.patient_id) if message.patient_id else None
        account_id = message.account_id or (patient.account_id if patient else None)
        account = await session.get(Account, account_id) if account_id else None
        channels = rules.channels_for(
            kind,
            has_phone=bool(message.to_phone_cipher or patient or account),
            has_account=account is not None,
            has_email=bool(account and account.email),
        )
        if not channels:
            message.status = OutboxStatus.FAILED
            report.failed += 1
            continue
        settings = await load_delivery_settings(session, hospital_id=message.hospital_id)
        at = rules.deliver_at(kind, now, quiet=settings.quiet, tz=settings.timezone)
        for channel in channels:
            session.add(
                Delivery(
                    hospital_id=message.hospital_id,
                    message_id=message.id,
                    channel=channel.value,
                    status=D.PENDING,
                    attempts=0,
                    next_attempt_at=at,
                    created_at=now,
                    updated_at=now,
                )
            )
        if kind is MessageKind.REMINDER:
            enqueue_next_reminder(session, sent=message, now=now)
        report.fanned_out += 1
    await session.flush()


async def _still_booked(session: AsyncSession, message: OutboxMessage) -> bool:
    return await _in_status(session, message, AppointmentStatus.BOOKED)


async def _in_status(
    session: AsyncSession, message: OutboxMessage, wanted: AppointmentStatus
) -> bool:
    if message.appointment_id is None:
        return False
    status = await session.scalar(
        select(Appointment.status).where(Appointment.id == message.appointment_id)
    )
    return status == wanted


# --- rendering ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Composed:
    """A message ready for one channel, with the plain values nothing else may keep."""

    kind: MessageKind
    locale: str
    subject: str
    body: str
    # The same text with secrets (a sign-in code) hidden, for logs.
    body_redacted: str
    params: dict[str, str]
    link: str | None
    phone: str | None
    email: str | None
    account_id: uuid.UUID | None
    patient_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    timezone: str


# Messages about a ban link to the page that explains it and takes an appeal.
_BAN_KINDS = frozenset(
    {MessageKind.BLACKLISTED, MessageKind.APPEAL_ACCEPTED, MessageKind.APPEAL_REJECTED}
)


class Undeliverable(Exception):
    """The message cannot go by this channel (no number, no address, unreadable data)."""


async def compose(
    session: AsyncSession,
    *,
    message: OutboxMessage,
    cipher: FieldCipher,
    settings: Settings,
) -> Composed:
    """Loads what the message talks about and fills its template (the hospital's own for
    the kind, language and department, else the default)."""
    kind = MessageKind(message.kind)
    hospital = await session.get(Hospital, message.hospital_id)
    if hospital is None:
        raise Undeliverable("unknown hospital")
    patient = await session.get(Patient, message.patient_id) if message.patient_id else None
    appointment = (
        await session.get(Appointment, message.appointment_id) if message.appointment_id else None
    )
    if patient is None and appointment is not None:
        patient = await session.get(Patient, appointment.patient_id)
    account_id = message.account_id or (patient.account_id if patient else None)
    account = await session.get(Account, account_id) if account_id else None
    payload = message.payload or {}
    requested = payload.get("locale")
    locale = (
        requested
        if isinstance(requested, str) and requested in i18n.LOCALES
        else account.locale
        if account and account.locale in i18n.LOCALES
        else i18n.DEFAULT_LOCALE
    )
    english = locale == "en"
    values: dict[str, str] = {"hospital": (hospital.name_en if english else "") or hospital.name}
    hidden: set[str] = set()
    for name, value in payload.items():
        if name.endswith("_cipher") and isinstance(value, str):
            plain = name.removesuffix("_cipher")
            try:
                values[plain] = cipher.decrypt(value)
            except ValueError:
                raise Undeliverable(f"unreadable {name}") from None
            hidden.add(plain)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            values[name] = str(value)
    if english:
        # A payload may carry a text in both languages (an announcement's title): the
        # English twin, where there is one, fills the field in an English message.
        for name, value in payload.items():
            if name.endswith("_en") and isinstance(value, str) and value:
                values[name.removesuffix("_en")] = value
    if patient is not None:
        values["patient"] = patient.name
    base = settings.public_base_url.rstrip("/")
    link: str | None = None
    department_id: uuid.UUID | None = None
    if appointment is not None:
        info = await session_info(
            session, hospital_id=appointment.hospital_id, session_id=appointment.session_id
        )
        department = await session.get(Department, appointment.department_id)
        department_id = appointment.department_id
        room = (
            await session.scalar(
                select(ClinicSession.room).where(ClinicSession.id == appointment.session_id)
            )
            or ""
        )
        slot = await session.get(TimeSlot, appointment.slot_id)
        values.update(
            date=format_date(appointment.visit_date, locale),
            time=slot.start_time.strftime("%H:%M") if slot else info.start_time.strftime("%H:%M"),
            department=(info.department_name_en if english else "") or info.department_name,
            doctor=info.doctor_name or "",
            location=rules.visit_place(
                (info.location_en if english else "") or info.location, room
            ),
            room=room,
            # A walk-in is told their walk-in number (现1), the one they are called by.
            sequence_number=await visits_service.patient_number(
                session,
                appointment_id=appointment.id,
                sequence_number=appointment.sequence_number,
                locale=locale,
            ),
            voucher_code=appointment.voucher_code,
            fee=f"{appointment.fee_fen / 100:.2f}",
            what_to_bring=(
                (department.what_to_bring_en if english else "") or department.what_to_bring
            )
            if department
            else "",
        )
        if appointment.hold_expires_at is not None:
            local = appointment.hold_expires_at.astimezone(ZoneInfo(hospital.timezone))
            values["pay_before"] = local.strftime("%H:%M")
        note = payload.get("note")
        values["reason"] = note if isinstance(note, str) else ""
        link = f"{base}/appointments/{appointment.id}"
    if kind is MessageKind.WAITLIST_OFFER:
        link = f"{base}/waitlist"
    if kind is MessageKind.ANNOUNCEMENT:
        link = f"{base}/announcements"
    if kind in _BAN_KINDS and patient is not None:
        link = f"{base}/patients/{patient.id}/ban"
    if link is not None:
        values["link"] = link
    subject, body = await template_for(
        session,
        hospital_id=message.hospital_id,
        kind=kind,
        locale=locale,
        department_id=department_id,
    )
    rendered = rules.render_message(subject, body, values)
    shown = rules.render_message(subject, body, rules.redacted(values, hidden))
    phone_cipher = message.to_phone_cipher or (
        patient.phone_cipher if patient else account.phone_cipher if account else None
    )
    try:
        phone = cipher.decrypt(phone_cipher) if phone_cipher else None
    except ValueError:
        raise Undeliverable("unreadable phone") from None
    allowed = rules.PLACEHOLDERS[kind]
    return Composed(
        kind=kind,
        locale=locale,
        subject=rendered.subject,
        body=rendered.body,
        body_redacted=shown.body,
        params={k: v for k, v in values.items() if k in allowed},
        link=link,
        phone=phone,
        email=account.email if account else None,
        account_id=account.id if account else None,
        patient_id=patient.id if patient else None,
        appointment_id=appointment.id if appointment else None,
        timezone=hospital.timezone,
    )


async def template_for(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    kind: MessageKind,
    locale: str,
    department_id: uuid.UUID | None,
) -> tuple[str, str]:
    """The department's own wording, else the hospital's, else the default."""
    found = await template_in_force(
        session, hospital_id=hospital_id, kind=kind, locale=locale, department_id=department_id
    )
    return found.subject, found.body


# --- 2. claim -----------------------------------------------------------------------------


@dataclass
class Claimed:
    delivery_id: uuid.UUID
    hospital_id: uuid.UUID
    token: str
    channel: DeliveryChannel
    attempt: int
    # Set when a dead worker's lease was taken over: when that worker's attempt started.
    recovered_from: datetime | None
    # Set when the previous attempt's outcome is unknown (the provider may have taken it):
    # when that attempt started. The provider is asked before the message is sent again.
    uncertain_since: datetime | None = None
    kind: MessageKind = MessageKind.REMINDER
    composed: Composed | None = None
    quiet: rules.QuietHours = rules.DEFAULT_QUIET_HOURS


def _due(now: datetime, *, expired: bool) -> Any:
    if expired:
        return and_(Delivery.status == D.SENDING, Delivery.lease_until < now)
    return and_(Delivery.status == D.PENDING, Delivery.next_attempt_at <= now)


async def _claim(
    session: AsyncSession,
    *,
    env: DeliveryEnv,
    now: datetime,
    limit: int,
    report: DeliveryReport,
) -> list[Claimed]:
    """Takes up to `limit` deliveries: first those a dead worker left behind, then due
    ones. The conditional UPDATE is the claim; PostgreSQL skips rows another worker is
    claiming at this moment, SQLite has one writer at a time."""
    token = secrets.token_hex(16)
    claimed: list[Claimed] = []
    for expired in (True, False):
        room = limit - len(claimed)
        if room <= 0:
            break
        condition = _due(now, expired=expired)
        candidates = dict(
            (
                await session.execute(
                    select(Delivery.id, Delivery.lease_until)
                    .where(condition)
                    .order_by(Delivery.next_attempt_at)
                    .limit(room)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not candidates:
            continue
        rows = (
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(list(candidates)), condition)
                .values(
                    status=D.SENDING,
                    lease_token=token,
                    lease_until=now + rules.LEASE,
                    attempts=Delivery.attempts + 1,
                    updated_at=now,
                )
                .returning(Delivery.id, Delivery.attempts, Delivery.channel, Delivery.hospital_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        uncertain = await _uncertain_attempts(
            session,
            [
                (delivery_id, int(attempts) - 1)
                for delivery_id, attempts, channel, _ in rows
                if not expired and int(attempts) > 1 and channel == DeliveryChannel.SMS.value
            ],
        )
        for delivery_id, attempts, channel, hospital_id in rows:
            old_lease = candidates[delivery_id]
            item = Claimed(
                delivery_id=delivery_id,
                hospital_id=hospital_id,
                token=token,
                channel=DeliveryChannel(channel),
                attempt=int(attempts),
                recovered_from=(old_lease - rules.LEASE) if expired and old_lease else None,
                uncertain_since=uncertain.get(delivery_id),
            )
            if expired:
                report.recovered += 1
            if await _prepare(session, env=env, item=item, now=now, report=report):
                claimed.append(item)
    return claimed


async def _uncertain_attempts(
    session: AsyncSession, previous: list[tuple[uuid.UUID, int]]
) -> dict[uuid.UUID, datetime]:
    """When each delivery's previous attempt started, for those whose previous attempt
    ended without knowing whether the provider took the message."""
    if not previous:
        return {}
    rows = await session.execute(
        select(
            DeliveryAttempt.delivery_id, DeliveryAttempt.number, DeliveryAttempt.started_at
        ).where(
            DeliveryAttempt.delivery_id.in_([delivery_id for delivery_id, _ in previous]),
            DeliveryAttempt.outcome == AttemptOutcome.UNCERTAIN,
        )
    )
    wanted = set(previous)
    return {
        delivery_id: started_at
        for delivery_id, number, started_at in rows
        if (delivery_id, number) in wanted
    }


async def _prepare(
    session: AsyncSession, *, env: DeliveryEnv, item: Claimed, now: datetime, report: DeliveryReport
) -> bool:
    """Renders a claimed delivery; a reminder whose visit is no longer booked is withdrawn,
    one that cannot be rendered fails. True when it is ready to send."""
    message = await session.scalar(
        select(OutboxMessage)
        .join(Delivery, Delivery.message_id == OutboxMessage.id)
        .where(Delivery.id == item.delivery_id)
    )
    assert message is not None
    item.kind = MessageKind(message.kind)
    if (item.kind is MessageKind.REMINDER and not await _still_booked(session, message)) or (
        item.kind is MessageKind.BOOKING_HELD
        and not await _in_status(session, message, AppointmentStatus.HELD)
    ):
        # A reminder of a visit no longer booked; a "please pay" for a place already paid
        # for (a walk-in pays at the desk in the same moment) or already let go.
        await _finish(session, item, status=D.WITHDRAWN, now=now)
        report.withdrawn += 1
        return False
    try:
        item.composed = await compose(
            session, message=message, cipher=env.cipher, settings=env.settings
        )
    except Undeliverable as error:
        await _finish(session, item, status=D.FAILED, now=now, reason=str(error))
        report.failed += 1
        return False
    settings = await load_delivery_settings(session, hospital_id=item.hospital_id)
    item.quiet = settings.quiet
    return True


async def _finish(
    session: AsyncSession,
    item: Claimed,
    *,
    status: DeliveryStatus,
    now: datetime,
    reason: str | None = None,
    provider_id: str | None = None,
    next_attempt_at: datetime | None = None,
    outcome: AttemptOutcome | None = None,
    started_at: datetime | None = None,
) -> bool:
    """Records what became of a claimed delivery, if the lease is still ours; with an
    attempt row when something was tried. False when another worker took the lease."""
    values: dict[str, Any] = {
        "status": status,
        "lease_token": None,
        "lease_until": None,
        "updated_at": now,
    }
    if reason is not None:
        values["last_error"] = reason[:300]
    if provider_id is not None:
        values["provider_id"] = provider_id[:100]
    if status is D.SENT:
        values["sent_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if status is D.WITHDRAWN:
        # Withdrawing is not an attempt.
        values["attempts"] = Delivery.attempts - 1
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == item.delivery_id,
            Delivery.lease_token == item.token,
            Delivery.status == D.SENDING,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if cast(Any, result).rowcount != 1:
        log.warning("delivery %s: lease lost before its outcome was recorded", item.delivery_id)
        return False
    if item.recovered_from is not None and outcome is not AttemptOutcome.RECOVERED:
        # The dead worker's attempt, whose fate no one knows: it is sent again.
        session.add(
            DeliveryAttempt(
                delivery_id=item.delivery_id,
                number=item.attempt - 1,
                started_at=item.recovered_from,
                finished_at=now,
                outcome=AttemptOutcome.ABANDONED,
                reason="worker stopped during the attempt",
            )
        )
    if outcome is not None:
        session.add(
            DeliveryAttempt(
                delivery_id=item.delivery_id,
                number=item.attempt - 1 if outcome is AttemptOutcome.RECOVERED else item.attempt,
                started_at=started_at or now,
                finished_at=now,
                outcome=outcome,
                reason=reason[:300] if reason else None,
                provider_id=provider_id[:100] if provider_id else None,
            )
        )
    return True


# --- 3. send and record --------------------------------------------------------------------


def _sms(item: Claimed, settings: Settings) -> SmsMessage:
    composed = item.composed
    assert composed is not None
    assert composed.phone is not None
    return SmsMessage(
        phone=composed.phone,
        template_code=settings.sms_templates.get(item.kind.value, ""),
        params=composed.params,
        text=composed.body,
        reference=str(item.delivery_id),
    )


async def _deliver_local(env: DeliveryEnv, item: Claimed, report: DeliveryReport) -> None:
    """The inbox, and the console SMS: the row and the delivery's state in one
    transaction, so the message lands exactly once however often this is retried."""
    composed = item.composed
    assert composed is not None
    settings = env.settings
    log_line: str | None = None

    async def work(session: AsyncSession) -> rules.Verdict | None:
        nonlocal log_line
        now = env.clock.now()
        problem: str | None = None
        if item.channel is DeliveryChannel.INBOX:
            if composed.account_id is None:
                problem = "no account"
            else:
                session.add(
                    InboxItem(
                        hospital_id=item.hospital_id,
                        account_id=composed.account_id,
                        patient_id=composed.patient_id,
                        appointment_id=composed.appointment_id,
                        delivery_id=item.delivery_id,
                        kind=item.kind.value,
                        title=composed.subject[:200],
                        body=composed.body,
                        link=composed.link,
                        created_at=now,
                    )
                )
        elif composed.phone is None:
            problem = "no phone number"
        else:
            masked = mask_phone(composed.phone)
            shown = composed.body if settings.demo_mode else composed.body_redacted
            log_line = f"console SMS to {masked}: {shown}"
            if settings.demo_mode:
                session.add(
                    DemoPhoneMessage(
                        hospital_id=item.hospital_id,
                        phone_masked=masked,
                        phone_index=env.cipher.blind_index(composed.phone, purpose=_PHONE_PURPOSE),
                        body=composed.body,
                        created_at=now,
                    )
                )
        if problem is not None:
            failed = await _finish(
                session,
                item,
                status=D.FAILED,
                now=now,
                reason=problem,
                outcome=AttemptOutcome.FAILED,
                started_at=now,
            )
            return rules.Verdict.FAILED if failed else None
        sent = await _finish(
            session, item, status=D.SENT, now=now, outcome=AttemptOutcome.SENT, started_at=now
        )
        return rules.Verdict.SENT if sent else None

    verdict = await env.db.transact(work)
    if verdict is None:
        report.lost_leases += 1
    elif verdict is rules.Verdict.SENT:
        report.sent += 1
        if log_line is not None:
            log.info("%s", log_line)
    else:
        report.failed += 1


async def _deliver_remote(
    env: DeliveryEnv, item: Claimed, senders: Senders, report: DeliveryReport
) -> None:
    composed = item.composed
    assert composed is not None
    started = env.clock.now()
    outcome: SendOutcome
    if item.channel is DeliveryChannel.SMS:
        sender_sms = senders.sms
        assert sender_sms is not None
        if composed.phone is None:
            outcome = SendOutcome(accepted=False, reason="no phone number")
        else:
            message = _sms(item, env.settings)
            tried_at = item.recovered_from or item.uncertain_since
            if tried_at is not None and await _went_out(
                sender_sms, message, tried_at, composed.timezone
            ):
                await _record_recovered(env, item, report)
                return
            outcome = await _attempt(sender_sms.send(message), item)
    else:
        sender_email = senders.email
        if sender_email is None:
            outcome = SendOutcome(accepted=False, reason="email channel not configured")
        elif not composed.email:
            outcome = SendOutcome(accepted=False, reason="no email address")
        else:
            outcome = await _attempt(
                sender_email.send(
                    EmailMessage(
                        to=composed.email,
                        subject=composed.subject,
                        body=composed.body,
                        reference=str(item.delivery_id),
                    )
                ),
                item,
            )
    await _record(env, item, outcome, started, report)


async def _went_out(sender: SmsSender, message: SmsMessage, started: datetime, tz: str) -> bool:
    day: date = started.astimezone(ZoneInfo(tz)).date()
    try:
        return (await sender.was_sent(message, on=day)) is True
    except Exception:
        # Not knowing is the same as "no": the message is sent again.
        log.warning("delivery %s: provider could not say whether it was sent", message.reference)
        return False


async def _attempt(call: Any, item: Claimed) -> SendOutcome:
    try:
        outcome: SendOutcome = await call
        return outcome
    except Exception as error:
        # An adapter should report failures as outcomes; one that raises is treated as a
        # passing fault, tried again later.
        log.exception("delivery %s: the %s sender raised", item.delivery_id, item.channel.value)
        return SendOutcome(accepted=False, retryable=True, reason=type(error).__name__)


async def _record_recovered(env: DeliveryEnv, item: Claimed, report: DeliveryReport) -> None:
    async def work(session: AsyncSession) -> bool:
        now = env.clock.now()
        return await _finish(
            session,
            item,
            status=D.SENT,
            now=now,
            outcome=AttemptOutcome.RECOVERED,
            reason=(
                "the provider reports it sent before the worker stopped"
                if item.recovered_from is not None
                else "the provider reports the earlier attempt went out"
            ),
            started_at=item.recovered_from or item.uncertain_since,
        )

    if await env.db.transact(work):
        report.sent += 1
    else:
        report.lost_leases += 1


async def _record(
    env: DeliveryEnv,
    item: Claimed,
    outcome: SendOutcome,
    started: datetime,
    report: DeliveryReport,
) -> None:
    verdict = rules.judge(
        accepted=outcome.accepted,
        retryable=outcome.retryable,
        attempts=item.attempt,
        max_attempts=rules.MAX_ATTEMPTS,
    )

    async def work(session: AsyncSession) -> bool:
        now = env.clock.now()
        if verdict is rules.Verdict.SENT:
            return await _finish(
                session,
                item,
                status=D.SENT,
                now=now,
                provider_id=outcome.provider_id,
                outcome=AttemptOutcome.SENT,
                started_at=started,
            )
        if verdict is rules.Verdict.RETRY:
            wait = rules.retry_delay(item.attempt, rand=random.random())
            tz = item.composed.timezone if item.composed else "Asia/Shanghai"
            at = rules.deliver_at(item.kind, now + wait, quiet=item.quiet, tz=tz)
            unknown = outcome.details.get("outcome_unknown") == "true"
            return await _finish(
                session,
                item,
                status=D.PENDING,
                now=now,
                reason=outcome.reason or "retryable failure",
                next_attempt_at=at,
                outcome=AttemptOutcome.UNCERTAIN if unknown else AttemptOutcome.RETRY,
                started_at=started,
            )
        return await _finish(
            session,
            item,
            status=D.FAILED,
            now=now,
            reason=outcome.reason or "refused by the provider",
            outcome=AttemptOutcome.FAILED,
            started_at=started,
        )

    if not await env.db.transact(work):
        report.lost_leases += 1
    elif verdict is rules.Verdict.SENT:
        report.sent += 1
    elif verdict is rules.Verdict.RETRY:
        report.retried += 1
    else:
        report.failed += 1
        log.warning(
            "delivery %s (%s, %s) failed: %s",
            item.delivery_id,
            item.kind.value,
            item.channel.value,
            outcome.reason,
        )


async def _recover_error(env: DeliveryEnv, item: Claimed, error: BaseException) -> None:
    """A local delivery that broke unexpectedly is retried later like a provider fault."""
    await _record(
        env,
        item,
        SendOutcome(accepted=False, retryable=True, reason=type(error).__name__),
        env.clock.now(),
        DeliveryReport(),
    )


# --- one pass -----------------------------------------------------------------------------


async def deliver_due(
    env: DeliveryEnv, *, limit: int = 100, senders: Senders | None = None
) -> DeliveryReport:
    """One pass: fan out due messages, claim due deliveries, send them, record outcomes.
    Safe to run in several workers at once."""
    senders = senders if senders is not None else senders_from_settings(env.settings)
    report = DeliveryReport()

    async def fan_out(session: AsyncSession) -> None:
        await _fan_out(session, now=env.clock.now(), limit=limit, report=report)

    await env.db.transact(fan_out)

    async def claim(session: AsyncSession) -> list[Claimed]:
        return await _claim(session, env=env, now=env.clock.now(), limit=limit, report=report)

    claimed = await env.db.transact(claim)
    gate = asyncio.Semaphore(_SEND_CONCURRENCY)

    async def deliver(item: Claimed) -> None:
        async with gate:
            local = item.channel is DeliveryChannel.INBOX or (
                item.channel is DeliveryChannel.SMS and senders.sms is None
            )
            try:
                if local:
                    await _deliver_local(env, item, report)
                else:
                    await _deliver_remote(env, item, senders, report)
            except Exception as error:
                log.exception("delivery %s broke", item.delivery_id)
                if local:
                    await _recover_error(env, item, error)
                    report.retried += 1
                else:
                    # The provider may have taken the message before the break (say the
                    # database went away while its outcome was being recorded). Marking it
                    # for a plain retry would send it twice; left leased, it is recovered
                    # when the lease runs out, and recovery asks the provider first.
                    report.left_leased += 1

    await asyncio.gather(*(deliver(item) for item in claimed))
    return report
