from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest

from yuyue.kit.crypto import (
    FieldCipher,
    InvalidToken,
    TokenSigner,
    UnknownKey,
    api_key_digest,
    generate_api_key,
    generate_master_secret,
    hash_password,
    key_id,
    load_master_secret,
    password_needs_rehash,
    verify_password,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher(SECRET)


class TestFieldCipher:
    @pytest.mark.parametrize(
        "plaintext",
        ["", "11010519491231002X", "13912345678", "阿卜杜拉·买买提", "emoji 😀", "x" * 10_000],
        ids=["empty", "id-number", "phone", "chinese", "emoji", "long"],
    )
    def test_round_trip(self, cipher: FieldCipher, plaintext: str) -> None:
        token = cipher.encrypt(plaintext)

        assert token.startswith(f"k{key_id(SECRET)}.")
        assert len(b64decode(token[10:])) == 12 + len(plaintext.encode()) + 16
        assert cipher.decrypt(token) == plaintext
        assert FieldCipher(SECRET).decrypt(token) == plaintext

    def test_same_text_encrypts_differently_each_time(self, cipher: FieldCipher) -> None:
        assert cipher.encrypt("13912345678") != cipher.encrypt("13912345678")

    @pytest.mark.parametrize(
        "index",
        [0, 11, 12, -17, -1],
        ids=["nonce", "nonce-end", "ciphertext", "tag-start", "tag-end"],
    )
    def test_tampered_byte_is_refused(self, cipher: FieldCipher, index: int) -> None:
        token = cipher.encrypt("11010519491231002X")
        raw = bytearray(b64decode(token[10:]))
        raw[index] ^= 0x01

        with pytest.raises(ValueError, match="altered"):
            cipher.decrypt(token[:10] + b64encode(bytes(raw)))

    def test_every_changed_character_is_refused(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt("张三")
        for position in range(10, len(token)):
            replacement = "A" if token[position] != "A" else "B"
            with pytest.raises(ValueError, match=r"altered|base64"):
                cipher.decrypt(token[:position] + replacement + token[position + 1 :])

    def test_other_master_secret_cannot_decrypt(self, cipher: FieldCipher) -> None:
        token = cipher.encrypt("11010519491231002X")

        with pytest.raises(UnknownKey, match=f"key {key_id(SECRET)}, which is not configured"):
            FieldCipher(OTHER_SECRET).decrypt(token)

    @pytest.mark.parametrize(
        ("token", "message"),
        [
            ("", "known version"),
            ("v1", "known version"),
            ("v1.", "truncated"),
            ("v1.AAAA", "truncated"),
            ("v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "known version"),
            ("v1.!!!!", "base64"),
            ("plain text", "known version"),
            ("kABCDEF12.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "known version"),
            ("k1234567.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "known version"),
        ],
        ids=[
            "empty",
            "no-dot",
            "no-body",
            "truncated",
            "unknown-version",
            "not-base64",
            "plaintext",
            "key-id-not-lowercase-hex",
            "key-id-too-short",
        ],
    )
    def test_malformed_token_is_refused(
        self, cipher: FieldCipher, token: str, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            cipher.decrypt(token)

    def test_short_master_secret_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 32 bytes"):
            FieldCipher(bytes(31))


class TestBlindIndex:
    def test_equal_values_match_across_instances(self, cipher: FieldCipher) -> None:
        digest = cipher.blind_index("11010519491231002X", purpose="patient.id_number")

        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert digest == FieldCipher(SECRET).blind_index(
            "11010519491231002X", purpose="patient.id_number"
        )

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (("13912345678", "patient.phone"), ("13912345678", "account.phone")),
            (("13912345678", "patient.phone"), ("13912345679", "patient.phone")),
            (("b", "a"), ("", "ab")),
            (
                ("11010519491231002X", "patient.id_number"),
                ("11010519491231002x", "patient.id_number"),
            ),
        ],
        ids=["purpose-separates", "value-separates", "boundary-shift", "case-is-not-folded"],
    )
    def test_different_inputs_never_collide(
        self, cipher: FieldCipher, first: tuple[str, str], second: tuple[str, str]
    ) -> None:
        (value_a, purpose_a), (value_b, purpose_b) = first, second

        assert cipher.blind_index(value_a, purpose=purpose_a) != cipher.blind_index(
            value_b, purpose=purpose_b
        )

    def test_index_depends_on_the_master_secret(self, cipher: FieldCipher) -> None:
        assert cipher.blind_index("x", purpose="p") != FieldCipher(OTHER_SECRET).blind_index(
            "x", purpose="p"
        )

    @pytest.mark.parametrize("purpose", ["", "patient\x00phone"], ids=["empty", "contains-nul"])
    def test_ambiguous_purpose_is_refused(self, cipher: FieldCipher, purpose: str) -> None:
        with pytest.raises(ValueError, match="purpose"):
            cipher.blind_index("x", purpose=purpose)


class TestMasterSecret:
    def test_generated_secret_loads_to_32_bytes(self) -> None:
        value = generate_master_secret()

        assert len(load_master_secret(value)) == 32
        assert generate_master_secret() != value

    @pytest.mark.parametrize(
        "value",
        [
            b64encode(SECRET),
            base64.urlsafe_b64encode(SECRET).decode(),
            f"  {b64encode(SECRET)}\n",
        ],
        ids=["unpadded", "padded", "surrounding-whitespace"],
    )
    def test_accepted_forms(self, value: str) -> None:
        assert load_master_secret(value) == SECRET

    def test_longer_secret_is_accepted(self) -> None:
        assert load_master_secret(b64encode(bytes(64))) == bytes(64)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "at least 32 bytes"),
            (b64encode(bytes(31)), "at least 32 bytes"),
            ("not base64!", "urlsafe base64"),
            (base64.b64encode(bytes([251] * 33)).decode(), "urlsafe base64"),
            ("A", "urlsafe base64"),
        ],
        ids=["empty", "31-bytes", "punctuation", "standard-alphabet", "impossible-length"],
    )
    def test_refused_with_a_clear_message(self, value: str, message: str) -> None:
        with pytest.raises(ValueError, match=message) as caught:
            load_master_secret(value)

        assert len(value) < 4 or value not in str(caught.value)


class TestPasswords:
    @pytest.mark.parametrize(
        "password", ["correct horse", "密码很长很长的一句话"], ids=["latin", "chinese"]
    )
    def test_hash_then_verify(self, password: str) -> None:
        hashed = hash_password(password)

        assert hashed.startswith("$argon2id$")
        assert password not in hashed
        assert verify_password(hashed, password)
        assert not verify_password(hashed, password + "!")
        assert not password_needs_rehash(hashed)

    def test_same_password_hashes_differently(self) -> None:
        assert hash_password("secret") != hash_password("secret")

    @pytest.mark.parametrize(
        "bad_hash",
        ["", "not a hash", "$argon2id$v=19$m=1$broken"],
        ids=["empty", "text", "truncated"],
    )
    def test_unreadable_hash_verifies_false(self, bad_hash: str) -> None:
        assert verify_password(bad_hash, "secret") is False


class TestApiKeys:
    def test_generated_key_shape(self) -> None:
        key = generate_api_key()

        assert re.fullmatch(r"yk_[A-Za-z0-9_-]{40}", key)
        assert generate_api_key() != key

    def test_digest_is_hex_sha256(self) -> None:
        # FIPS 180-2 test vector for "abc".
        assert api_key_digest("abc") == (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )

    def test_digest_is_stable_and_distinguishes_keys(self) -> None:
        key = generate_api_key()

        assert api_key_digest(key) == api_key_digest(key)
        assert api_key_digest(key) != api_key_digest(generate_api_key())


class TestTokenSigner:
    @pytest.fixture
    def signer(self) -> TokenSigner:
        return TokenSigner(SECRET, "voucher")

    def test_round_trip(self, signer: TokenSigner) -> None:
        payload: dict[str, str | int] = {"appointment_id": "0190a1b2", "seq": 12, "name": "张三"}

        token = signer.sign(payload, expires_at=NOON + timedelta(hours=1))

        assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", token)
        assert signer.verify(token, now=NOON) == payload
        assert TokenSigner(SECRET, "voucher").verify(token, now=NOON) == payload

    @pytest.mark.parametrize(
        ("now", "valid"),
        [
            (NOON - timedelta(days=1), True),
            (NOON - timedelta(seconds=1), True),
            (NOON, False),
            (NOON + timedelta(seconds=1), False),
            (NOON + timedelta(days=9), False),
        ],
        ids=["day-before", "last-second", "at-expiry", "second-after", "long-after"],
    )
    def test_expiry(self, signer: TokenSigner, now: datetime, valid: bool) -> None:
        token = signer.sign({"a": 1}, expires_at=NOON)

        if valid:
            assert signer.verify(token, now=now) == {"a": 1}
        else:
            with pytest.raises(InvalidToken, match="expired"):
                signer.verify(token, now=now)

    def test_tampered_signature_is_refused(self, signer: TokenSigner) -> None:
        body, signature = signer.sign({"a": 1}, expires_at=NOON).split(".")
        mac = bytearray(b64decode(signature))
        mac[0] ^= 0x01

        with pytest.raises(InvalidToken, match="signature"):
            signer.verify(f"{body}.{b64encode(bytes(mac))}", now=NOON - timedelta(hours=1))

    def test_tampered_payload_is_refused(self, signer: TokenSigner) -> None:
        _, signature = signer.sign({"seq": 1}, expires_at=NOON).split(".")
        forged = b64encode(b'{"exp":1717243200,"seq":2}')

        with pytest.raises(InvalidToken, match="signature"):
            signer.verify(f"{forged}.{signature}", now=NOON - timedelta(hours=1))

    @pytest.mark.parametrize(
        "other",
        [TokenSigner(SECRET, "password-reset"), TokenSigner(OTHER_SECRET, "voucher")],
        ids=["other-purpose", "other-secret"],
    )
    def test_token_from_another_signer_is_refused(
        self, signer: TokenSigner, other: TokenSigner
    ) -> None:
        token = other.sign({"a": 1}, expires_at=NOON)

        with pytest.raises(InvalidToken):
            signer.verify(token, now=NOON - timedelta(hours=1))

    @pytest.mark.parametrize(
        "token",
        ["", "abc", ".", "abc.", ".abc", "a.b.c", "!!!.###", "e30.AAAAAAAAAAAAAAAAAAAAAA"],
        ids=[
            "empty",
            "no-dot",
            "only-dot",
            "no-signature",
            "no-body",
            "two-dots",
            "not-base64",
            "wrong-mac",
        ],
    )
    def test_malformed_token_is_refused(self, signer: TokenSigner, token: str) -> None:
        with pytest.raises(InvalidToken):
            signer.verify(token, now=NOON)

    @pytest.mark.parametrize(
        ("payload", "expires_at", "message"),
        [
            ({"exp": 1}, NOON, "reserved"),
            ({"flag": True}, NOON, "not bool"),
            ({"a": 1}, NOON.replace(tzinfo=None), "aware"),
        ],
        ids=["reserved-exp", "bool-value", "naive-expiry"],
    )
    def test_sign_refuses_bad_input(
        self,
        signer: TokenSigner,
        payload: dict[str, str | int],
        expires_at: datetime,
        message: str,
    ) -> None:
        with pytest.raises(ValueError, match=message):
            signer.sign(payload, expires_at=expires_at)

    def test_verify_refuses_naive_now(self, signer: TokenSigner) -> None:
        token = signer.sign({"a": 1}, expires_at=NOON)

        with pytest.raises(ValueError, match="aware"):
            signer.verify(token, now=NOON.replace(tzinfo=None))

    @pytest.mark.parametrize(
        ("secret", "purpose", "message"),
        [(bytes(16), "voucher", "at least 32 bytes"), (SECRET, "", "purpose")],
        ids=["short-secret", "no-purpose"],
    )
    def test_constructor_refuses_weak_setup(
        self, secret: bytes, purpose: str, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            TokenSigner(secret, purpose)
