"""Secrets at rest and in transit: field encryption, blind indexes, passwords, API keys, tokens.

Personal data (ID numbers, phones) is stored encrypted with AES-GCM and looked up through a
keyed HMAC "blind index", so the database never holds a searchable plaintext (PIPL). All
keys derive from one master secret with HKDF, each under its own label, so one value in the
environment serves every use without one use weakening another.
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


class FieldCipher:
    """Encrypts single text fields and computes blind indexes for exact-match look-ups.

    Tokens carry a version prefix ("v1."). Rotating the master secret later means adding a
    "v2" key here: new values are written under it while "v1" tokens still decrypt, and a
    background job re-encrypts them.
    """

    _CURRENT: Final = "v1"

    def __init__(self, master_secret: bytes) -> None:
        _require_secret(master_secret)
        self._aeads = {"v1": AESGCM(_derive_key(master_secret, "yuyue/field-cipher/v1/encrypt"))}
        self._index_key = _derive_key(master_secret, "yuyue/field-cipher/v1/blind-index")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        # The version is authenticated too, so a token cannot be relabelled to another key.
        version = self._CURRENT
        sealed = self._aeads[version].encrypt(nonce, plaintext.encode(), version.encode())
        return f"{version}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str) -> str:
        version, dot, body = token.partition(".")
        aead = self._aeads.get(version)
        if not dot or aead is None:
            raise ValueError("not a field-cipher token of a known version")
        raw = _b64decode(body)
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise ValueError("field-cipher token is truncated")
        try:
            plaintext = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], version.encode())
        except InvalidTag:
            raise ValueError("field-cipher token was altered or needs another key") from None
        return plaintext.decode()

    def blind_index(self, value: str, *, purpose: str) -> str:
        """Deterministic keyed digest of ``value``; normalise the value before calling.

        ``purpose`` (e.g. "patient.id_number") keeps equal values in different columns from
        matching, so one index cannot be used to probe another.
        """
        if not purpose or "\x00" in purpose:
            # The NUL separates purpose from value; allowing it inside the purpose would let
            # ("a\x00b", "c") and ("a", "b\x00c") produce the same digest.
            raise ValueError("purpose must be non-empty and contain no NUL character")
        message = f"{purpose}\x00{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()


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
    fails the signature check of any other.
    """

    _MAC_BYTES: Final = 16

    def __init__(self, secret: bytes, purpose: str) -> None:
        _require_secret(secret)
        if not purpose:
            raise ValueError("purpose must be non-empty")
        self.purpose = purpose
        self._key = _derive_key(secret, f"yuyue/token-signer/v1/{purpose}")

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()[: self._MAC_BYTES]

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
        if not hmac.compare_digest(mac, self._mac(body)):
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
