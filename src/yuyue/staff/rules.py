"""Who is acting, and what their roles allow. Pure."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import pyotp

from yuyue.kit.errors import Forbidden
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role


class ActorKind(StrEnum):
    CHANNEL = "channel"
    STAFF = "staff"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    hospital_id: uuid.UUID
    kind: ActorKind
    id: str
    channel: Channel
    roles: frozenset[Role] = field(default_factory=frozenset)
    name: str = ""
    # The doctor a staff user works as (their own sessions and queues).
    doctor_id: uuid.UUID | None = None
    # Set when the member of staff must first change the password or enrol a second
    # factor: only those endpoints (and signing out) accept such an actor.
    limit: AccessLimit | None = None
    # The staff session the token belongs to.
    session_id: uuid.UUID | None = None

    @property
    def audit_name(self) -> str:
        """What the audit trail records as "who"."""
        who = self.channel.value if self.kind is ActorKind.CHANNEL else self.name or "-"
        return f"{self.kind.value}:{who}:{self.id}"[:80]

    @property
    def is_staff(self) -> bool:
        return self.kind is ActorKind.STAFF

    def has_role(self, *roles: Role) -> bool:
        return self.kind is ActorKind.STAFF and (
            Role.ADMIN in self.roles or bool(self.roles & set(roles))
        )


# Who may read the audit trail: auditors (and administrators, who hold every role).
AUDIT_READERS: tuple[Role, ...] = (Role.AUDITOR,)
# Roles that only read: they may use the pages and calls listed for them and their own
# account's (password, second factor, sign-ins), and nothing that changes the hospital's data.
READ_ONLY_ROLES: frozenset[Role] = frozenset({Role.AUDITOR})
# Who manages staff accounts (staff.accounts).
ACCOUNT_MANAGERS: tuple[Role, ...] = (Role.ADMIN,)
# Who may see a patient's identity number or phone in full (unmask), once per request and
# with a reason: the registrar, who checks a card against the record at the window (and
# administrators, who hold every role). Everyone else sees them masked.
UNMASKERS: tuple[Role, ...] = (Role.REGISTRAR,)


# --- reads of patient data ------------------------------------------------------------------
# Every staff read of patient data leaves an audit entry of the `read.` family, one per
# patient, with the reader's roles, the route, the client's address and what was read. A
# search logs the patients it found (never what was typed: an identity number is stored
# only sealed). Channel keys read only the patients their channel knows
# (`patients.rules.may_read`), and a patient's own pages are the patient's: neither is
# logged here.
READ_ACTIONS_PREFIX = "read."


class ReadKind(StrEnum):
    """What kind of read an audit entry records (its action)."""

    # A search (by document number, mobile number or voucher) found the patient.
    LOOKUP = "read.lookup"
    # The patient's record or visits were shown.
    RECORD = "read.record"
    # The patient's identity number or phone was shown in full.
    UNMASK = "read.unmask"


def reads_logged(actor: Actor) -> bool:
    """Whether this actor's reads of patient data are written to the audit trail: staff's."""
    return actor.kind is ActorKind.STAFF


# An unmasking's reason: chosen from the list or typed; never empty.
UNMASK_REASON_MIN = 2
UNMASK_REASON_MAX = 200


def unmask_reason(text: str) -> str | None:
    """The reason as it is recorded (spaces collapsed), or None when it is too short."""
    reason = " ".join(text.split())
    if len(reason) < UNMASK_REASON_MIN:
        return None
    return reason[:UNMASK_REASON_MAX]


def require_staff(actor: Actor, *roles: Role) -> None:
    if not actor.has_role(*roles):
        raise Forbidden()


def system_actor(hospital_id: uuid.UUID, name: str = "system") -> Actor:
    return Actor(hospital_id=hospital_id, kind=ActorKind.SYSTEM, id=name, channel=Channel.WINDOW)


# Staff at the hospital book into the on-site pools, as the window does.
STAFF_CHANNEL = Channel.WINDOW


# --- sign-in and access -------------------------------------------------------------------
# Setting-like constants: one place to read them, the tests travel in time past them.

# A staff session with no request for this long is over (a floor computer left signed in).
IDLE_TIMEOUT = timedelta(minutes=30)
# last_seen_at is written at most this often, so a busy page costs a write a minute at most.
TOUCH_EVERY = timedelta(minutes=1)
# Wrong passwords (or second-factor codes) in a row that lock the account, and for how long.
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
# One client address: this many failures within the window and it is refused for a while,
# the while doubling with each further block (capped), whichever accounts it tries.
ADDRESS_FAILURES = 10
ADDRESS_WINDOW = timedelta(minutes=10)
ADDRESS_BLOCK = timedelta(minutes=1)
ADDRESS_BLOCK_MAX = timedelta(hours=1)
# The "second factor required" challenge between the two steps of a sign-in.
CHALLENGE_LIFETIME = timedelta(minutes=5)
RECOVERY_CODES = 10
PASSWORD_MIN_LENGTH = 10
TOTP_STEP_SECONDS = 30

# Kiosks and waiting-room screens are devices set up with a kiosk-channel key, never staff
# roles, so by default every staff role (every person) must use a second factor.
DEFAULT_SECOND_FACTOR_ROLES: frozenset[Role] = frozenset(Role)

# The passwords guessed first (lists of leaked passwords, and the hospital's own words).
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "1234567890",
        "0123456789",
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "qwertyuiop",
        "qwerty123456",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abc1234567",
        "abcdefghij",
        "a123456789",
        "iloveyou12",
        "admin12345",
        "admin123456",
        "administrator",
        "changeme123",
        "welcome123",
        "letmein123",
        "woaini1314",
        "woaini520",
        "hospital123",
        "yiyuan123456",
        "yuyue12345",
        "yuyue123456",
        "secret-pass",
        "zaq12wsxcde",
    }
)


class AccessLimit(StrEnum):
    """What a signed-in member of staff must do before anything else."""

    PASSWORD_CHANGE = "password_change"
    SECOND_FACTOR_ENROLMENT = "second_factor_enrolment"


class SessionEnd(StrEnum):
    SIGNED_OUT = "signed_out"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    SECOND_FACTOR_RESET = "second_factor_reset"
    DISABLED = "disabled"
    ENDED_BY_USER = "ended_by_user"
    ENDED_BY_ADMIN = "ended_by_admin"


def password_weakness(password: str, *, username: str) -> str | None:
    """Why a new password is refused ("too_short", "only_digits", "username", "common"),
    or None when it may be used."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return "too_short"
    if password.isdigit():
        return "only_digits"
    lowered = password.casefold()
    if username and username.casefold() in lowered and len(lowered) - len(username) < 4:
        return "username"
    if lowered in COMMON_PASSWORDS:
        return "common"
    return None


def access_limit(
    *,
    roles: frozenset[Role],
    second_factor_roles: frozenset[Role],
    has_second_factor: bool,
    password_must_change: bool,
) -> AccessLimit | None:
    if password_must_change:
        return AccessLimit.PASSWORD_CHANGE
    if roles & second_factor_roles and not has_second_factor:
        return AccessLimit.SECOND_FACTOR_ENROLMENT
    return None


def session_alive(
    *, ended_at: datetime | None, last_seen_at: datetime, expires_at: datetime, now: datetime
) -> bool:
    return ended_at is None and now < expires_at and now - last_seen_at < IDLE_TIMEOUT


def needs_touch(*, last_seen_at: datetime, now: datetime) -> bool:
    return now - last_seen_at >= TOUCH_EVERY


def locked_for(*, locked_until: datetime | None, now: datetime) -> timedelta | None:
    """How long the account stays locked, or None when it is not."""
    if locked_until is None or locked_until <= now:
        return None
    return locked_until - now


@dataclass(frozen=True, slots=True)
class FailedAttempts:
    count: int
    locked_until: datetime | None


def after_wrong_attempt(*, count: int, now: datetime) -> FailedAttempts:
    """The account's state after one more wrong password or code: the fifth in a row locks
    it (and starts the count again, so the next lock needs five more)."""
    count += 1
    if count >= LOCK_AFTER:
        return FailedAttempts(count=0, locked_until=now + LOCK_FOR)
    return FailedAttempts(count=count, locked_until=None)


@dataclass(frozen=True, slots=True)
class AddressState:
    failures: int
    window_started_at: datetime
    blocked_until: datetime | None
    strikes: int


def address_blocked_for(state: AddressState | None, *, now: datetime) -> timedelta | None:
    if state is None or state.blocked_until is None or state.blocked_until <= now:
        return None
    return state.blocked_until - now


def address_after_failure(state: AddressState | None, *, now: datetime) -> AddressState:
    """One more failure from an address. Failures count within a window; reaching the limit
    blocks the address for ADDRESS_BLOCK, doubled for each block before (up to the cap),
    and starts a new window. A quiet window (no block for a day) forgives the strikes."""
    if state is None or now - state.window_started_at >= ADDRESS_WINDOW:
        strikes = state.strikes if state is not None else 0
        if state is not None and now - state.window_started_at >= timedelta(days=1):
            strikes = 0
        state = AddressState(failures=0, window_started_at=now, blocked_until=None, strikes=strikes)
    failures = state.failures + 1
    if failures < ADDRESS_FAILURES:
        return AddressState(failures, state.window_started_at, state.blocked_until, state.strikes)
    block = min(ADDRESS_BLOCK * (2**state.strikes), ADDRESS_BLOCK_MAX)
    return AddressState(
        failures=0, window_started_at=now, blocked_until=now + block, strikes=state.strikes + 1
    )


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_SECONDS


def match_totp(secret: str, code: str, *, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (this one or a neighbour, for a clock a little off),
    or None when it matches none or its step was already used (a code is good once)."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS)
    current = totp_step(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())
