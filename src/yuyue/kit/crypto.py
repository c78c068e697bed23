"""Secrets at rest and in transit: field encryption, blind indexes, passwords, API keys, tokens.

Personal data (ID numbers, phones) is stored encrypted with AES-GCM and looked up through a
keyed HMAC "blind index", so the database never holds a searchable plaintext (PIPL). All
keys derive from one master secret with HKDF, each under its own label, so one value in the
environment serves every use without one use weakening another. Previous master secrets may
be configured beside the current one while it is being replaced: they open and verify what
they made, and only the current one seals and signs (docs/operations.md, "Keys").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES: Final = 32

_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict base64url: only the canonical encoding of a value is accepted.

    Without the round-trip check, changing the last character of an unpadded string can flip
    only unused bits and decode to the same bytes, so a visibly altered token would pass.
    """
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if _b64encode(raw) != text.rstrip("="):
        raise ValueError("not canonical base64url")
    return raw


def _derive_key(secret: bytes, label: str) -> bytes:
    # No salt: the master secret is already uniformly random, so HKDF-Expand with distinct
    # labels is what separates the keys.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(secret)


def _require_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES} bytes, got {len(secret)}")


def load_master_secret(value: str) -> bytes:
    """Decodes the master secret from configuration (urlsafe base64, padding optional)."""
    # Messages never quote the value: configuration errors end up in logs.
    text = value.strip()
    try:
        secret = _b64decode(text)
    except ValueError:
        raise ValueError(
            "the master secret must be urlsafe base64 (A-Z, a-z, 0-9, '-' and '_'); "
            "create one with generate_master_secret()"
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the master secret must decode to at least {MIN_SECRET_BYTES} bytes, "
            f"got {len(secret)}; create one with generate_master_secret()"
        )
    return secret


def generate_master_secret() -> str:
    return secrets.token_urlsafe(MIN_SECRET_BYTES)


def key_id(secret: bytes) -> str:
    """A short, stable name for a master secret: tokens say which secret sealed them, and
    operators can tell secrets apart without ever seeing one.

    Derived under a label of its own, so knowing it reveals nothing of the keys derived for
    encryption, indexes or signatures.
    """
    _require_secret(secret)
    return _derive_key(secret, "yuyue/key-id")[:4].hex()


class UnknownKey(ValueError):
    """A token names a master secret this process is not configured with."""


@dataclass(frozen=True)
class MasterSecrets:
    """The current master secret, which seals and signs everything new, and any previous
    ones, which only open and verify what they made (during a rotation, see
    docs/operations.md "Keys")."""

    # Never shown: a repr ends up in logs and tracebacks.
    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        _require_secret(self.current)
        # The same secret listed again (say, as its own previous) adds nothing.
        unique = tuple(dict.fromkeys(s for s in self.previous if s != self.current))
        for secret in unique:
            _require_secret(secret)
        ids = [key_id(secret) for secret in (self.current, *unique)]
        if len(set(ids)) != len(ids):
            raise ValueError("two configured master secrets share a key id; generate another")
        object.__setattr__(self, "previous", unique)

    @property
    def current_key_id(self) -> str:
        return key_id(self.current)

    @property
    def previous_key_ids(self) -> tuple[str, ...]:
        return tuple(key_id(secret) for secret in self.previous)

    def cipher(self) -> FieldCipher:
        return FieldCipher(self.current, previous=self.previous)

    def signer(self, purpose: str) -> TokenSigner:
        return TokenSigner(self.current, purpose, previous=self.previous)


def load_master_secrets(current: str, previous: Sequence[str] = ()) -> MasterSecrets:
    """Decodes the configured secrets; errors say which one is wrong, never its value."""
    return MasterSecrets(
        load_master_secret(current),
        tuple(_load_previous(position, value) for position, value in enumerate(previous, 1)),
    )


def _load_previous(position: int, value: str) -> bytes:
    try:
        return load_master_secret(value)
    except ValueError as error:
        raise ValueError(f"previous secret number {position}: {error}") from None


@dataclass(frozen=True)
class _FieldKey:
    key_id: str
    aead: AESGCM
    index_key: bytes


# A key-named token: "k" + the sealing secret's key id, then "." and the sealed bytes.
_KEYED_PREFIX: Final = re.compile(r"k[0-9a-f]{8}")
LEGACY_VERSION: Final = "v1"


class FieldCipher:
    """Encrypts single text fields and computes blind indexes for exact-match look-ups.

    A token names the secret that sealed it: "k<key id>.<nonce + ciphertext + tag>", the
    prefix authenticated with the ciphertext, so a token cannot be relabelled to another
    key. New tokens are always sealed with the current secret; a token sealed with a
    previous one still opens while that secret is configured, and `yuyue keys rotate`
    re-seals it. Tokens written before key ids existed start "v1." and name no secret:
    every configured secret is tried (AES-GCM tells the right one).
    """

    def __init__(self, master_secret: bytes, *, previous: Sequence[bytes] = ()) -> None:
        _require_secret(master_secret)
        keys = [self._field_key(master_secret)]
        for secret in previous:
            _require_secret(secret)
            key = self._field_key(secret)
            if all(key.key_id != known.key_id for known in keys):
                keys.append(key)
        self._current = keys[0]
        self._keys = {key.key_id: key for key in keys}

    @staticmethod
    def _field_key(secret: bytes) -> _FieldKey:
        # The labels are those of the first version: indexes and "v1" tokens written before
        # key ids existed stay valid under the same secret.
        return _FieldKey(
            key_id=key_id(secret),
            aead=AESGCM(_derive_key(secret, "yuyue/field-cipher/v1/encrypt")),
            index_key=_derive_key(secret, "yuyue/field-cipher/v1/blind-index"),
        )

    @property
    def key_id(self) -> str:
        """The current secret's key id: what every new token is sealed under."""
        return self._current.key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured secret's key id, the current one first."""
        return tuple(self._keys)

    @property
    def current_prefix(self) -> str:
        """How every token sealed under the current secret starts (prefix and dot)."""
        return f"k{self._current.key_id}."

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        label = f"k{self._current.key_id}"
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), label.encode())
        return f"{label}.{_b64encode(nonce + sealed)}"

    @staticmethod
    def token_key(token: str) -> str:
        """The key id a token names, "v1" for a token from before key ids, or "" when the
        text is no field-cipher token at all. Reads the prefix only; nothing is checked."""
        label, dot, _body = token.partition(".")
        if not dot:
            return ""
        if label == LEGACY_VERSION:
            return LEGACY_VERSION
        return label[1:] if _KEYED_PREFIX.fullmatch(label) else ""

    def is_current(self, token: str) -> bool:
        return token.startswith(self.current_prefix)

    def decrypt(self, token: str) -> str:
        label, dot, body = token.partition(".")
        if not dot:
            raise ValueError("not a field-cipher token of a known version")
        if label == LEGACY_VERSION:
            candidates = list(self._keys.values())
        elif _KEYED_PREFIX.fullmatch(label):
            key = self._keys.get(label[1:])
            if key is None:
                raise UnknownKey(
                    f"field-cipher token sealed with key {label[1:]}, which is not configured "
                    "(YUYUE_SECRET_KEY or YUYUE_PREVIOUS_SECRET_KEYS)"
                )
            candidates = [key]
        else:
            raise ValueError("not a field-cipher token of a known version")
        raw = _b64decode(body)
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise ValueError("field-cipher token is truncated")
        for key in candidates:
            try:
                plaintext = key.aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], label.encode())
            except InvalidTag:
                continue
            return plaintext.decode()
        raise ValueError("field-cipher token was altered or needs another key")

    def reseal(self, token: str) -> str:
        """The same plaintext sealed under the current secret (a new token even when the
        old one was current already)."""
        return self.encrypt(self.decrypt(token))

    def blind_index(self, value: str, *, purpose: str) -> str:
        """Deterministic keyed digest of ``value`` under the current secret; normalise the
        value before calling. Write this one; look up with :meth:`blind_indexes`.

        ``purpose`` (e.g. "patient.id_number") keeps equal values in different columns from
        matching, so one index cannot be used to probe another.
        """
        return self._index(self._current, value, purpose=purpose)

    def blind_indexes(self, value: str, *, purpose: str) -> list[str]:
        """The index of ``value`` under every configured secret, the current one first.

        While a rotation runs, a row is indexed under the old secret or the new one; a
        look-up (or a duplicate check) asks for all of these (`IN (...)`) to find it either
        way. With one secret configured this is the one current index.
        """
        return [self._index(key, value, purpose=purpose) for key in self._keys.values()]

    @staticmethod
    def _index(key: _FieldKey, value: str, *, purpose: str) -> str:
        if not purpose or "\x00" in purpose:
            # The NUL separates purpose from value; allowing it inside the purpose would let
            # ("a\x00b", "c") and ("a", "b\x00c") produce the same digest.
            raise ValueError("purpose must be non-empty and contain no NUL character")
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(key.index_key, message, hashlib.sha256).hexdigest()


# argon2-cffi's defaults follow RFC 9106's recommended argon2id profile.
_PASSWORDS: Final = PasswordHasher()


def hash_password(password: str) -> str:
    return _PASSWORDS.hash(password)


def verify_password(hash: str, password: str) -> bool:
    """True when ``password`` matches; False for a wrong password or an unreadable hash."""
    try:
        return _PASSWORDS.verify(hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash of a password nobody has: checking a password for an unknown or disabled
# account against it costs what a real check costs, so timing does not tell a stranger
# which usernames exist.
_NOBODY: Final = _PASSWORDS.hash(secrets.token_urlsafe(24))


def spend_password_check(password: str) -> None:
    """Costs one password verification and always fails; for accounts that do not exist."""
    verify_password(_NOBODY, password)


def same_secret(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    if sent is None or expected is None:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def password_needs_rehash(hash: str) -> bool:
    """True when ``hash`` used weaker parameters than today's; re-hash at the next sign-in."""
    return _PASSWORDS.check_needs_rehash(hash)


API_KEY_PREFIX: Final = "yk_"


def generate_api_key() -> str:
    # 30 random bytes are exactly 40 base64url characters (240 bits), with no padding.
    return API_KEY_PREFIX + secrets.token_urlsafe(30)


def api_key_digest(key: str) -> str:
    # SHA-256 rather than a slow password hash: the key is random with 240 bits of entropy,
    # so there is nothing to brute-force, and the check runs on every booking request.
    return hashlib.sha256(key.encode()).hexdigest()


class InvalidToken(Exception):
    """A signed token is malformed, forged, for another purpose or expired."""


TokenPayload = dict[str, str | int]


class TokenSigner:
    """Compact signed tokens (vouchers, links): base64url JSON payload "." base64url MAC.

    Each purpose signs with its own HKDF-derived key, so a token issued for one purpose
    fails the signature check of any other. New tokens are signed with the current secret;
    tokens signed with a previous one (given as ``previous``) verify until they expire or
    that secret is removed from the configuration.
    """

    _MAC_BYTES: Final = 16

    def __init__(self, secret: bytes, purpose: str, *, previous: Sequence[bytes] = ()) -> None:
        _require_secret(secret)
        if not purpose:
            raise ValueError("purpose must be non-empty")
        for other in previous:
            _require_secret(other)
        self.purpose = purpose
        self._key = self._derive(secret, purpose)
        self._previous_keys = tuple(self._derive(other, purpose) for other in previous)

    @staticmethod
    def _derive(secret: bytes, purpose: str) -> bytes:
        return _derive_key(secret, f"yuyue/token-signer/v1/{purpose}")

    def _mac(self, body: str, key: bytes | None = None) -> bytes:
        digest = hmac.new(key or self._key, body.encode(), hashlib.sha256).digest()
        return digest[: self._MAC_BYTES]

    @property
    def _keys(self) -> tuple[bytes, ...]:
        return (self._key, *self._previous_keys)

    def sign(self, payload: TokenPayload, *, expires_at: datetime) -> str:
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime")
        if "exp" in payload:
            raise ValueError('"exp" is reserved for the expiry')
        if any(isinstance(value, bool) for value in payload.values()):
            # JSON would keep it a boolean, which verify() then refuses as not str | int.
            raise ValueError("payload values must be str or int, not bool")
        claims = {**payload, "exp": int(expires_at.timestamp())}
        text = json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        body = _b64encode(text.encode())
        return f"{body}.{_b64encode(self._mac(body))}"

    def verify(self, token: str, *, now: datetime) -> TokenPayload:
        """Returns the payload given to :meth:`sign` (without "exp") if the token is good."""
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        body, dot, signature = token.partition(".")
        try:
            mac = _b64decode(signature)
        except ValueError:
            raise InvalidToken("malformed token") from None
        if not dot or not body:
            raise InvalidToken("malformed token")
        # Checked before the payload is parsed, so forged input never reaches the JSON parser.
        # Every configured key is tried (no early exit), so timing tells nothing either.
        matches = [hmac.compare_digest(mac, self._mac(body, key)) for key in self._keys]
        if not any(matches):
            raise InvalidToken("bad signature, or a token for another purpose")
        try:
            claims = json.loads(_b64decode(body))
        except ValueError:
            raise InvalidToken("malformed payload") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed payload")
        payload: TokenPayload = {}
        for name, value in claims.items():
            # bool is an int subclass, but sign() never produces one.
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InvalidToken("malformed payload")
            payload[name] = value
        expiry = payload.pop("exp", None)
        if not isinstance(expiry, int):
            raise InvalidToken("malformed payload")
        if now.timestamp() >= expiry:
            raise InvalidToken("expired")
        return payload
