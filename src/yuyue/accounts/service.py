"""Signing in with a one-time SMS code, and the browser sessions that follow."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.accounts import rules
from yuyue.accounts.models import SignInCode, WebSession
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.errors import YuyueError
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.service import enqueue
from yuyue.patients import rules as patient_rules
from yuyue.patients import service as patient_service
from yuyue.patients.models import Account

CODE_PURPOSE = "sign_in_code"
CLIENT_PURPOSE = "client_address"


def _digest(cipher: FieldCipher, code_id: uuid.UUID, code: str) -> str:
    return cipher.blind_index(f"{code_id}:{code}", purpose=CODE_PURPOSE)


def _digest_matches(cipher: FieldCipher, code_id: uuid.UUID, code: str, digest: str) -> bool:
    # A code issued just before the master secret changed was digested with the previous
    # one, so every configured secret's digest is compared.
    candidates = cipher.blind_indexes(f"{code_id}:{code}", purpose=CODE_PURPOSE)
    return any(hmac.compare_digest(candidate, digest) for candidate in candidates)


async def request_code(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    phone: str,
    client_address: str,
    now: datetime,
    policy: rules.SignInPolicy = rules.DEFAULT_POLICY,
) -> SignInCode:
    """Issues a code for a mobile number and queues the SMS that carries it."""
    mobile = patient_rules.normalise_mobile(phone)
    phone_index = patient_service.phone_index(cipher, mobile)
    client_index = cipher.blind_index(client_address, purpose=CLIENT_PURPOSE)
    day_ago = now - timedelta(days=1)
    # Counted under every configured secret, so a key rotation forgives nobody's requests.
    phone_requests = (
        await session.scalars(
            select(SignInCode.created_at).where(
                SignInCode.hospital_id == hospital_id,
                SignInCode.phone_index.in_(patient_service.phone_indexes(cipher, mobile)),
                SignInCode.created_at > day_ago,
            )
        )
    ).all()
    client_requests = (
        await session.scalars(
            select(SignInCode.created_at).where(
                SignInCode.hospital_id == hospital_id,
                SignInCode.client_index.in_(
                    cipher.blind_indexes(client_address, purpose=CLIENT_PURPOSE)
                ),
                SignInCode.created_at > now - timedelta(hours=1),
            )
        )
    ).all()
    rules.check_code_request(
        policy, phone_requests=phone_requests, client_requests=client_requests, now=now
    )
    code = rules.new_code()
    row = SignInCode(
        id=uuid.uuid4(),
        hospital_id=hospital_id,
        phone_index=phone_index,
        client_index=client_index,
        code_digest="",
        wrong_attempts=0,
        expires_at=now + timedelta(minutes=policy.code_minutes),
        created_at=now,
    )
    row.code_digest = _digest(cipher, row.id, code)
    session.add(row)
    enqueue(
        session,
        hospital_id=hospital_id,
        kind=MessageKind.SIGN_IN_CODE,
        patient_id=None,
        appointment_id=None,
        payload={"code_cipher": cipher.encrypt(code), "minutes": policy.code_minutes},
        to_phone_cipher=cipher.encrypt(mobile),
        now=now,
    )
    await session.flush()
    return row


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """A wrong code must still count its try, so refusals are returned, not raised: the
    entry point commits the count and then reports the refusal."""

    account: Account | None
    refusal: YuyueError | None


async def verify_code(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    cipher: FieldCipher,
    phone: str,
    code: str,
    now: datetime,
    policy: rules.SignInPolicy = rules.DEFAULT_POLICY,
) -> SignInOutcome:
    mobile = patient_rules.normalise_mobile(phone)
    latest = await session.scalar(
        select(SignInCode)
        .where(
            SignInCode.hospital_id == hospital_id,
            SignInCode.phone_index.in_(patient_service.phone_indexes(cipher, mobile)),
        )
        .order_by(SignInCode.created_at.desc(), SignInCode.id.desc())
        .limit(1)
    )
    if latest is None:
        return SignInOutcome(None, rules.SignInCodeExpired())
    state = rules.CodeState(latest.expires_at, latest.used_at, latest.wrong_attempts)
    try:
        rules.check_code_usable(policy, state, now=now)
    except YuyueError as refusal:
        return SignInOutcome(None, refusal)
    given = code.strip()
    if not (given.isascii() and given.isdigit() and len(given) == rules.CODE_DIGITS) or (
        not _digest_matches(cipher, latest.id, given, latest.code_digest)
    ):
        # Counted in the database, not from the loaded row: concurrent guesses all count.
        await session.execute(
            update(SignInCode)
            .where(SignInCode.id == latest.id)
            .values(wrong_attempts=SignInCode.wrong_attempts + 1)
        )
        return SignInOutcome(None, rules.wrong_code(policy, state))
    used = await session.execute(
        update(SignInCode)
        .where(
            SignInCode.id == latest.id,
            SignInCode.used_at.is_(None),
            SignInCode.wrong_attempts < policy.max_wrong_attempts,
        )
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        # Another request used (or locked) the same code a moment ago.
        return SignInOutcome(None, rules.SignInCodeExpired())
    account = await patient_service.ensure_account(
        session, hospital_id=hospital_id, cipher=cipher, phone=mobile, now=now
    )
    return SignInOutcome(account, None)


async def open_session(
    session: AsyncSession,
    *,
    hospital_id: uuid.UUID,
    account_id: uuid.UUID,
    now: datetime,
    lifetime: timedelta,
) -> WebSession:
    web_session = WebSession(
        hospital_id=hospital_id, account_id=account_id, created_at=now, expires_at=now + lifetime
    )
    session.add(web_session)
    await session.flush()
    return web_session


async def live_session(
    session: AsyncSession, *, session_id: uuid.UUID, now: datetime
) -> WebSession | None:
    web_session = await session.get(WebSession, session_id)
    if web_session is None or web_session.ended_at is not None or web_session.expires_at <= now:
        return None
    return web_session


async def end_session(session: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
