"""The field cipher and the signers with a current master secret and previous ones."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from yuyue.config import Settings
from yuyue.kit.crypto import (
    FieldCipher,
    InvalidToken,
    MasterSecrets,
    TokenSigner,
    UnknownKey,
    key_id,
    load_master_secrets,
)

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
THIRD = bytes(range(200, 232))
NOON = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def legacy_token(secret: bytes, plaintext: str) -> str:
    """A token as the first version wrote it ("v1.", no key id), built independently of the
    code under test: what databases written before key ids hold."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"yuyue/field-cipher/v1/encrypt"
    ).derive(secret)
    nonce = os.urandom(12)
    return "v1." + b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), b"v1"))


class TestKeyId:
    def test_stable_short_and_different_per_secret(self) -> None:
        assert re.fullmatch(r"[0-9a-f]{8}", key_id(OLD))
        assert key_id(OLD) == key_id(bytes(range(32)))
        assert key_id(OLD) != key_id(NEW)

    def test_reveals_nothing_the_keys_use(self) -> None:
        # Neither the secret's bytes nor an index under it start with the id.
        assert key_id(OLD) not in OLD.hex()
        assert not FieldCipher(OLD).blind_index("x", purpose="p").startswith(key_id(OLD))


class TestCipherWithPreviousSecrets:
    def test_new_tokens_are_sealed_under_the_current_secret(self) -> None:
        rotating = FieldCipher(NEW, previous=[OLD])

        token = rotating.encrypt("11010519491231002X")

        assert token.startswith(f"k{key_id(NEW)}.")
        assert rotating.is_current(token)
        assert FieldCipher(NEW).decrypt(token) == "11010519491231002X"
        with pytest.raises(UnknownKey):
            FieldCipher(OLD).decrypt(token)

    def test_tokens_of_the_previous_secret_still_open(self) -> None:
        old_token = FieldCipher(OLD).encrypt("13912345678")
        rotating = FieldCipher(NEW, previous=[OLD])

        assert rotating.decrypt(old_token) == "13912345678"
        assert not rotating.is_current(old_token)
        assert FieldCipher.token_key(old_token) == key_id(OLD)

    def test_reseal_moves_a_token_to_the_current_secret(self) -> None:
        old_token = FieldCipher(OLD).encrypt("13912345678")

        new_token = FieldCipher(NEW, previous=[OLD]).reseal(old_token)

        assert FieldCipher.token_key(new_token) == key_id(NEW)
        assert FieldCipher(NEW).decrypt(new_token) == "13912345678"

    @pytest.mark.parametrize(
        "configured",
        [(OLD, ()), (NEW, (OLD,)), (NEW, (THIRD, OLD))],
        ids=["its-own-secret-current", "as-previous", "second-previous"],
    )
    def test_legacy_v1_tokens_open_with_whichever_secret_made_them(
        self, configured: tuple[bytes, tuple[bytes, ...]]
    ) -> None:
        current, previous = configured
        token = legacy_token(OLD, "阿卜杜拉·买买提")

        cipher = FieldCipher(current, previous=previous)

        assert FieldCipher.token_key(token) == "v1"
        assert cipher.decrypt(token) == "阿卜杜拉·买买提"
        assert not cipher.is_current(token)

    def test_legacy_token_no_configured_secret_opens_is_refused(self) -> None:
        with pytest.raises(ValueError, match="altered or needs another key"):
            FieldCipher(NEW, previous=[THIRD]).decrypt(legacy_token(OLD, "x"))

    def test_a_token_relabelled_to_another_configured_key_is_refused(self) -> None:
        # The key id is authenticated with the ciphertext: swapping it for another
        # configured secret's id makes the token fail, it does not open under that key.
        rotating = FieldCipher(NEW, previous=[OLD])
        token = FieldCipher(OLD).encrypt("11010519491231002X")
        relabelled = f"k{key_id(NEW)}." + token.split(".", 1)[1]

        with pytest.raises(ValueError, match="altered"):
            rotating.decrypt(relabelled)

    def test_a_legacy_token_relabelled_with_a_key_id_is_refused(self) -> None:
        token = legacy_token(OLD, "x")
        relabelled = f"k{key_id(OLD)}." + token.split(".", 1)[1]

        with pytest.raises(ValueError, match="altered"):
            FieldCipher(OLD).decrypt(relabelled)

    def test_a_key_token_relabelled_as_legacy_is_refused(self) -> None:
        token = FieldCipher(OLD).encrypt("x")

        with pytest.raises(ValueError, match="altered"):
            FieldCipher(OLD).decrypt("v1." + token.split(".", 1)[1])

    def test_unknown_key_id_is_refused_by_name(self) -> None:
        token = FieldCipher(THIRD).encrypt("x")

        with pytest.raises(UnknownKey, match=f"key {key_id(THIRD)}, which is not configured"):
            FieldCipher(NEW, previous=[OLD]).decrypt(token)

    def test_blind_indexes_list_the_current_then_the_previous(self) -> None:
        rotating = FieldCipher(NEW, previous=[OLD])

        indexes = rotating.blind_indexes("13912345678", purpose="phone")

        assert indexes == [
            FieldCipher(NEW).blind_index("13912345678", purpose="phone"),
            FieldCipher(OLD).blind_index("13912345678", purpose="phone"),
        ]
        assert rotating.blind_index("13912345678", purpose="phone") == indexes[0]
        assert FieldCipher(NEW).blind_indexes("13912345678", purpose="phone") == indexes[:1]

    def test_index_of_the_first_version_is_unchanged(self) -> None:
        # Indexes already in a database stay valid under the same secret.
        import hashlib
        import hmac

        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"yuyue/field-cipher/v1/blind-index",
        ).derive(OLD)
        expected = hmac.new(key, b"phone\x0013912345678", hashlib.sha256).hexdigest()

        assert FieldCipher(OLD).blind_index("13912345678", purpose="phone") == expected

    def test_the_current_secret_listed_as_previous_counts_once(self) -> None:
        cipher = FieldCipher(NEW, previous=[NEW, OLD, OLD])

        assert cipher.key_ids == (key_id(NEW), key_id(OLD))


class TestSignerWithPreviousSecrets:
    def test_tokens_signed_before_the_switch_verify_until_they_expire(self) -> None:
        old_token = TokenSigner(OLD, "voucher").sign({"aid": "a"}, expires_at=NOON)
        rotating = TokenSigner(NEW, "voucher", previous=[OLD])

        assert rotating.verify(old_token, now=NOON - timedelta(minutes=1)) == {"aid": "a"}
        with pytest.raises(InvalidToken, match="expired"):
            rotating.verify(old_token, now=NOON)

    def test_new_tokens_are_signed_with_the_current_secret(self) -> None:
        token = TokenSigner(NEW, "voucher", previous=[OLD]).sign({"aid": "a"}, expires_at=NOON)

        earlier = NOON - timedelta(hours=1)
        assert TokenSigner(NEW, "voucher").verify(token, now=earlier) == {"aid": "a"}
        with pytest.raises(InvalidToken, match="bad signature"):
            TokenSigner(OLD, "voucher").verify(token, now=earlier)

    def test_removing_the_previous_secret_ends_its_tokens(self) -> None:
        old_token = TokenSigner(OLD, "staff").sign({"sub": "u"}, expires_at=NOON)

        with pytest.raises(InvalidToken, match="bad signature"):
            TokenSigner(NEW, "staff").verify(old_token, now=NOON - timedelta(hours=1))

    def test_a_previous_secret_still_separates_purposes(self) -> None:
        voucher = TokenSigner(OLD, "voucher").sign({"aid": "a"}, expires_at=NOON)

        with pytest.raises(InvalidToken, match="bad signature"):
            TokenSigner(NEW, "staff", previous=[OLD]).verify(voucher, now=NOON - timedelta(1))


class TestConfiguredSecrets:
    def test_settings_read_previous_secrets_comma_separated(self) -> None:
        current, first, second = (b64encode(s) for s in (NEW, OLD, THIRD))
        settings = Settings(secret_key=current, previous_secret_keys=f" {first}, {second} ,")

        secrets = settings.master_secrets()

        assert secrets.current == NEW
        assert secrets.previous == (OLD, THIRD)
        assert secrets.current_key_id == key_id(NEW)
        assert secrets.previous_key_ids == (key_id(OLD), key_id(THIRD))

    def test_no_previous_secret_by_default(self) -> None:
        assert Settings(secret_key=b64encode(NEW)).master_secrets().previous == ()

    def test_a_bad_previous_secret_is_named_by_position_not_value(self) -> None:
        bad = b64encode(bytes(20))

        with pytest.raises(ValueError, match="previous secret number 2") as caught:
            load_master_secrets(b64encode(NEW), [b64encode(OLD), bad])

        assert bad not in str(caught.value)

    def test_secrets_never_show_in_a_repr(self) -> None:
        current, previous = b64encode(NEW), b64encode(OLD)
        settings = Settings(secret_key=current, previous_secret_keys=previous)
        secrets = settings.master_secrets()

        shown = repr(settings) + repr(secrets) + str(secrets)

        assert current not in shown and previous not in shown
        assert repr(NEW) not in shown and repr(OLD) not in shown

    def test_cipher_and_signer_follow_the_configuration(self) -> None:
        secrets = MasterSecrets(NEW, (OLD,))
        old_token = FieldCipher(OLD).encrypt("x")
        old_signed = TokenSigner(OLD, "portal-session").sign({"sid": "s"}, expires_at=NOON)

        assert secrets.cipher().decrypt(old_token) == "x"
        assert secrets.cipher().key_id == key_id(NEW)
        assert secrets.signer("portal-session").verify(old_signed, now=NOON - timedelta(1)) == {
            "sid": "s"
        }
