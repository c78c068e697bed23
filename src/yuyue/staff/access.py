"""Staff sign-in as the API and the floor pages both run it: password, lock-out, address
throttling, the second factor, and checking a token on every request.

Unlike a service, these functions take the `Database` and run their own short transactions:
a password check costs about 0.1 s of CPU (argon2) and runs between them, never inside one
(on SQLite a transaction holds the one write lock), and a refused attempt must still commit
the failure it counts before the refusal is raised. Entry points call one function each.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from yuyue.kit import crypto
from yuyue.kit.db import Database
from yuyue.kit.errors import Unauthorized, YuyueError
from yuyue.staff import rules
from yuyue.staff.errors import (
    AccountLocked,
    InvalidChallenge,
    InvalidSecondFactor,
    MfaRequired,
    PasswordChangeRequired,
    SecondFactorAlreadyEnrolled,
    SecondFactorEnrolmentRequired,
    SecondFactorNotStarted,
    TooManyAttempts,
    WeakPassword,
    WrongPassword,
)
from yuyue.staff.models import SignInThrottle, StaffRecoveryCode, StaffUser
from yuyue.staff.rules import AccessLimit, Actor, SessionEnd
from yuyue.staff.service import (
    Client,
    Granted,
    InvalidCredentials,
    end_sessions,
    open_session,
    record_audit,
    staff_access,
    touch_session,
)

CHALLENGE_KIND = "mfa"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


# --- every request ----------------------------------------------------------------------------


async def authenticate(
    db: Database,
    *,
    token: str,
    signer: crypto.TokenSigner,
    now: datetime,
    allow_limited: bool = False,
) -> Actor:
    """The actor of a staff token whose session is live. Its last_seen_at is written at most
    once a minute (the idle time-out counts from it). An actor who must first change the
    password or enrol a second factor is refused unless `allow_limited`."""
    async with db.read() as session:
        access = await staff_access(session, token=token, signer=signer, now=now)
    actor = access.actor
    if access.needs_touch and actor.session_id is not None:
        session_id = actor.session_id

        async def touch(session: AsyncSession) -> None:
            await touch_session(session, session_id=session_id, now=now)

        await db.transact(touch)
    if not allow_limited:
        refuse_limited(actor)
    return actor


def refuse_limited(actor: Actor) -> None:
    if actor.limit is AccessLimit.PASSWORD_CHANGE:
        raise PasswordChangeRequired()
    if actor.limit is AccessLimit.SECOND_FACTOR_ENROLMENT:
        raise SecondFactorEnrolmentRequired()


# --- sign-in ----------------------------------------------------------------------------------


def _address_state(row: SignInThrottle | None) -> rules.AddressState | None:
    if row is None:
        return None
    return rules.AddressState(
        failures=row.failures,
        window_started_at=row.window_started_at,
        blocked_until=row.blocked_until,
        strikes=row.strikes,
    )


async def _address_row(
    db: Database, *, hospital_id: uuid.UUID, client: Client
) -> rules.AddressState | None:
    async with db.read() as session:
        return _address_state(await session.get(SignInThrottle, (hospital_id, client.address)))


async def _count_address_failure(
    session: AsyncSession, *, hospital_id: uuid.UUID, client: Client, now: datetime
) -> None:
    values = {
        "hospital_id": hospital_id,
        "address": client.address,
        "failures": 0,
        "window_started_at": now,
        "strikes": 0,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(SignInThrottle).values(**values).on_conflict_do_nothing())
    row = await session.scalar(
        select(SignInThrottle)
        .where(SignInThrottle.hospital_id == hospital_id, SignInThrottle.address == client.address)
        .with_for_update()
    )
    assert row is not None
    state = rules.address_after_failure(_address_state(row), now=now)
    row.failures, row.window_started_at = state.failures, state.window_started_at
    row.blocked_until, row.strikes = state.blocked_until, state.strikes


async def _count_wrong(
    session: AsyncSession, *, user: StaffUser, client: Client, now: datetime, error: YuyueError
) -> YuyueError:
    """A wrong password or code: counts toward the account's lock and the address's block."""
    await _count_address_failure(session, hospital_id=user.hospital_id, client=client, now=now)
    counted = rules.after_wrong_attempt(count=user.failed_sign_ins, now=now)
    user.failed_sign_ins, user.locked_until = counted.count, counted.locked_until
    if counted.locked_until is not None:
        return AccountLocked(wait=counted.locked_until - now, now=now)
    return error


async def _locked_user(session: AsyncSession, user_id: uuid.UUID) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.id == user_id).with_for_update())


def _refuse_while_locked(user: StaffUser, now: datetime) -> AccountLocked | None:
    wait = rules.locked_for(locked_until=user.locked_until, now=now)
    return AccountLocked(wait=wait, now=now) if wait is not None else None


async def _grant(
    session: AsyncSession,
    *,
    user: StaffUser,
    client: Client,
    signer: crypto.TokenSigner,
    now: datetime,
    hours: int,
) -> Granted:
    user.failed_sign_ins, user.locked_until = 0, None
    return await open_session(
        session, user=user, client=client, signer=signer, now=now, hours=hours
    )


async def _second_factor_matches(
    session: AsyncSession, *, user: StaffUser, value: str, cipher: crypto.FieldCipher, now: datetime
) -> bool:
    """A TOTP code (six digits; its time step is remembered so it works once) or an unused
    recovery code (then spent). The caller holds the user's row lock."""
    if user.totp_secret is None:
        return False
    digits = "".join(value.split())
    if len(digits) == 6 and digits.isdigit():
        step = rules.match_totp(
            cipher.decrypt(user.totp_secret), digits, now=now, last_step=user.totp_last_step
        )
        if step is None:
            return False
        user.totp_last_step = step
        return True
    # Under every configured secret: codes made before a key rotation hold only the
    # previous secret's digest, and nobody has the codes to digest them again.
    row = await session.scalar(
        select(StaffRecoveryCode)
        .where(
            StaffRecoveryCode.user_id == user.id,
            StaffRecoveryCode.digest.in_(recovery_digests(cipher, user.id, value)),
            StaffRecoveryCode.used_at.is_(None),
        )
        .limit(1)
    )
    if row is None:
        return False
    row.used_at = now
    return True


def recovery_digest(cipher: crypto.FieldCipher, user_id: uuid.UUID, code: str) -> str:
    # Keyed: the table alone does not let anyone try codes offline.
    return cipher.blind_index(
        rules.normalise_recovery_code(code), purpose=f"staff.recovery-code.{user_id}"
    )


def recovery_digests(cipher: crypto.FieldCipher, user_id: uuid.UUID, code: str) -> list[str]:
    return cipher.blind_indexes(
        rules.normalise_recovery_code(code), purpose=f"staff.recovery-code.{user_id}"
    )


def _challenge(signer: crypto.TokenSigner, user: StaffUser, now: datetime) -> MfaRequired:
    expires_at = now + rules.CHALLENGE_LIFETIME
    token = signer.sign(
        {"sub": str(user.id), "hid": str(user.hospital_id), "typ": CHALLENGE_KIND},
        expires_at=expires_at,
    )
    return MfaRequired(challenge=token, expires_at=expires_at)


async def _settle(
    db: Database, work: Callable[[AsyncSession], Awaitable[Granted | YuyueError]]
) -> Granted:
    """Commits what `work` counted, then raises its refusal if it refused."""
    outcome = await db.transact(work)
    if isinstance(outcome, YuyueError):
        raise outcome
    return outcome


async def sign_in(
    db: Database,
    *,
    hospital_id: uuid.UUID,
    username: str,
    password: str,
    second_factor: str | None,
    client: Client,
    signer: crypto.TokenSigner,
    cipher: crypto.FieldCipher,
    now: datetime,
    hours: int,
) -> Granted:
    """A token for the right password (and the second factor, when the account has one).

    Refusals: `too_many_attempts` (this address failed too often; nothing is checked),
    `account_locked` (right or wrong password alike), `invalid_credentials`, `mfa_required`
    with a challenge for `complete_second_factor`, `invalid_second_factor`."""
    blocked = rules.address_blocked_for(
        await _address_row(db, hospital_id=hospital_id, client=client), now=now
    )
    if blocked is not None:
        raise TooManyAttempts(wait=blocked, now=now)
    async with db.read() as session:
        user = await session.scalar(
            select(StaffUser).where(
                StaffUser.hospital_id == hospital_id, StaffUser.username == username
            )
        )
    if user is None or not user.active:
        # The same cost as a real check, so timing does not tell which usernames exist.
        crypto.spend_password_check(password)

        async def count_stranger(session: AsyncSession) -> None:
            await _count_address_failure(session, hospital_id=hospital_id, client=client, now=now)

        await db.transact(count_stranger)
        raise InvalidCredentials()
    locked = _refuse_while_locked(user, now)
    if locked is not None:
        crypto.spend_password_check(password)
        raise locked
    right = crypto.verify_password(user.password_hash, password)
    user_id = user.id

    async def settle(session: AsyncSession) -> Granted | YuyueError:
        user = await _locked_user(session, user_id)
        if user is None or not user.active:
            return InvalidCredentials()
        locked = _refuse_while_locked(user, now)
        if locked is not None:
            return locked
        if not right:
            return await _count_wrong(
                session, user=user, client=client, now=now, error=InvalidCredentials()
            )
        if user.has_second_factor:
            if not second_factor:
                return _challenge(signer, user, now)
            if not await _second_factor_matches(
                session, user=user, value=second_factor, cipher=cipher, now=now
            ):
                return await _count_wrong(
                    session, user=user, client=client, now=now, error=InvalidSecondFactor()
                )
        return await _grant(session, user=user, client=client, signer=signer, now=now, hours=hours)

    return await _settle(db, settle)


async def complete_second_factor(
    db: Database,
    *,
    challenge: str,
    second_factor: str,
    client: Client,
    signer: crypto.TokenSigner,
    cipher: crypto.FieldCipher,
    now: datetime,
    hours: int,
    hospital_id: uuid.UUID | None = None,
) -> Granted:
    """The second step: the challenge from `mfa_required` and a code or recovery code."""
    try:
        claims = signer.verify(challenge, now=now)
        if claims.get("typ") != CHALLENGE_KIND:
            raise ValueError("not a challenge")
        user_id = uuid.UUID(str(claims["sub"]))
        challenge_hospital = uuid.UUID(str(claims["hid"]))
    except (crypto.InvalidToken, KeyError, ValueError):
        raise InvalidChallenge() from None
    if hospital_id is not None and hospital_id != challenge_hospital:
        raise InvalidChallenge()
    blocked = rules.address_blocked_for(
        await _address_row(db, hospital_id=challenge_hospital, client=client), now=now
    )
    if blocked is not None:
        raise TooManyAttempts(wait=blocked, now=now)

    async def settle(session: AsyncSession) -> Granted | YuyueError:
        user = await _locked_user(session, user_id)
        if user is None or not user.active or not user.has_second_factor:
            return InvalidChallenge()
        locked = _refuse_while_locked(user, now)
        if locked is not None:
            return locked
        if not await _second_factor_matches(
            session, user=user, value=second_factor, cipher=cipher, now=now
        ):
            return await _count_wrong(
                session, user=user, client=client, now=now, error=InvalidSecondFactor()
            )
        return await _grant(session, user=user, client=client, signer=signer, now=now, hours=hours)

    return await _settle(db, settle)


async def sign_out(db: Database, *, actor: Actor, now: datetime) -> None:
    if actor.session_id is None:
        return
    session_id = actor.session_id

    async def work(session: AsyncSession) -> None:
        await end_sessions(
            session,
            user_id=uuid.UUID(actor.id),
            reason=SessionEnd.SIGNED_OUT,
            now=now,
            session_id=session_id,
        )

    await db.transact(work)


# --- the password -----------------------------------------------------------------------------


def check_new_password(password: str, *, username: str) -> None:
    weakness = rules.password_weakness(password, username=username)
    if weakness is not None:
        raise WeakPassword(reason=weakness)


async def change_password(
    db: Database, *, actor: Actor, current: str, new: str, client: Client, now: datetime
) -> None:
    """A new password for the signed-in user. A wrong current password counts toward the
    lock-out; on success every session of the user ends (this one too: sign in again)."""
    user_id = uuid.UUID(actor.id)
    async with db.read() as session:
        user = await session.get(StaffUser, user_id)
    if user is None:
        raise Unauthorized()
    locked = _refuse_while_locked(user, now)
    if locked is not None:
        raise locked
    check_new_password(new, username=user.username)
    right = crypto.verify_password(user.password_hash, current)
    new_hash = crypto.hash_password(new) if right else ""

    async def settle(session: AsyncSession) -> YuyueError | None:
        user = await _locked_user(session, user_id)
        if user is None or not user.active:
            return Unauthorized()
        locked = _refuse_while_locked(user, now)
        if locked is not None:
            return locked
        if not right:
            return await _count_wrong(
                session, user=user, client=client, now=now, error=WrongPassword()
            )
        user.password_hash, user.password_must_change = new_hash, False
        user.failed_sign_ins, user.locked_until = 0, None
        await end_sessions(session, user_id=user.id, reason=SessionEnd.PASSWORD_CHANGED, now=now)
        record_audit(
            session,
            actor=actor,
            action="staff.password_changed",
            entity_type="staff_user",
            entity_id=user.id,
            before=None,
            after=None,
            now=now,
        )
        return None

    refused = await db.transact(settle)
    if refused is not None:
        raise refused


# --- enrolling the second factor --------------------------------------------------------------


def provisioning(secret: str, *, username: str, issuer: str) -> tuple[str, str]:
    """The otpauth:// URI an authenticator app reads, and its QR code as an SVG data URI."""
    uri = pyotp.TOTP(secret, interval=rules.TOTP_STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer
    )
    return uri, segno.make(uri, error="m").svg_data_uri(scale=4)


async def start_enrolment(
    session: AsyncSession, *, actor: Actor, cipher: crypto.FieldCipher, keep_pending: bool = False
) -> tuple[StaffUser, str]:
    """A new secret, kept encrypted and not yet in force until confirmed with a code (or,
    with `keep_pending`, the one already waiting for its code: a page reloaded shows the
    same QR code)."""
    user = await _locked_user(session, uuid.UUID(actor.id))
    if user is None:
        raise Unauthorized()
    if user.has_second_factor:
        raise SecondFactorAlreadyEnrolled()
    if keep_pending and user.totp_secret is not None:
        return user, cipher.decrypt(user.totp_secret)
    secret = pyotp.random_base32()
    user.totp_secret = cipher.encrypt(secret)
    user.totp_confirmed_at, user.totp_last_step = None, None
    await session.flush()
    return user, secret


def new_recovery_codes() -> list[str]:
    def one() -> str:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        return f"{raw[:5]}-{raw[5:]}"

    return [one() for _ in range(rules.RECOVERY_CODES)]


async def confirm_enrolment(
    db: Database,
    *,
    actor: Actor,
    code: str,
    client: Client,
    cipher: crypto.FieldCipher,
    now: datetime,
) -> list[str]:
    """Puts the second factor in force with a first code; returns the recovery codes
    (shown once; only their keyed digests are stored). A wrong code counts as a wrong
    attempt toward the lock-out."""
    user_id = uuid.UUID(actor.id)
    codes = new_recovery_codes()

    async def settle(session: AsyncSession) -> list[str] | YuyueError:
        user = await _locked_user(session, user_id)
        if user is None:
            return Unauthorized()
        if user.has_second_factor:
            return SecondFactorAlreadyEnrolled()
        if user.totp_secret is None:
            return SecondFactorNotStarted()
        locked = _refuse_while_locked(user, now)
        if locked is not None:
            return locked
        step = rules.match_totp(cipher.decrypt(user.totp_secret), code, now=now, last_step=None)
        if step is None:
            return await _count_wrong(
                session, user=user, client=client, now=now, error=InvalidSecondFactor()
            )
        user.totp_confirmed_at, user.totp_last_step = now, step
        user.failed_sign_ins = 0
        await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.user_id == user.id))
        for each in codes:
            session.add(
                StaffRecoveryCode(user_id=user.id, digest=recovery_digest(cipher, user.id, each))
            )
        record_audit(
            session,
            actor=actor,
            action="staff.second_factor_enrolled",
            entity_type="staff_user",
            entity_id=user.id,
            before=None,
            after={"second_factor": True},
            now=now,
        )
        await session.flush()
        return codes

    outcome = await db.transact(settle)
    if isinstance(outcome, YuyueError):
        raise outcome
    return outcome
