from __future__ import annotations

import re
from datetime import date

import pytest

from yuyue.kit import i18n
from yuyue.patients.rules import (
    IdType,
    InvalidIdNumber,
    InvalidLookup,
    InvalidName,
    InvalidPhone,
    LookupKind,
    ParsedIdentity,
    Sex,
    lookup_kind,
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_mobile,
    parse_identity,
    validate_name,
)

TODAY = date(2024, 6, 1)
PUBLISHED_EXAMPLE = "11010519491231002X"


def with_check(first17: str) -> str:
    """Appends the GB 11643 check character, computed independently of the production code.

    The published weights are 2^(17-i) mod 11 and the check value is the one that makes the
    weighted sum of all 18 characters ≡ 1 (mod 11), with 10 written as X.
    """
    assert re.fullmatch(r"[0-9]{17}", first17)
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(first17))
    value = (12 - total % 11) % 11
    return first17 + ("X" if value == 10 else str(value))


def test_check_helper_agrees_with_the_published_example() -> None:
    assert with_check("11010519491231002") == "11010519491231002X"
    assert with_check("44030419900101001") == "440304199001010011"


class TestParseResidentId:
    @pytest.mark.parametrize(
        ("raw", "number", "birth_date", "sex"),
        [
            ("11010519491231002X", "11010519491231002X", date(1949, 12, 31), Sex.FEMALE),
            ("11010519491231002x", "11010519491231002X", date(1949, 12, 31), Sex.FEMALE),
            (" 110105 19491231 002X ", "11010519491231002X", date(1949, 12, 31), Sex.FEMALE),
            (
                "１１０１０５１９４９１２３１００２Ｘ",
                "11010519491231002X",
                date(1949, 12, 31),
                Sex.FEMALE,
            ),
            ("440304199001010011", "440304199001010011", date(1990, 1, 1), Sex.MALE),
            (with_check("11010520000229001"), None, date(2000, 2, 29), Sex.MALE),
            (with_check("11010519000101004"), None, date(1900, 1, 1), Sex.FEMALE),
            (with_check("65010120240601002"), None, TODAY, Sex.FEMALE),
            (with_check("71000019750520007"), None, date(1975, 5, 20), Sex.MALE),
            (with_check("81000019880808123"), None, date(1988, 8, 8), Sex.MALE),
            (with_check("82000019920315008"), None, date(1992, 3, 15), Sex.FEMALE),
            (with_check("83000020010915005"), None, date(2001, 9, 15), Sex.MALE),
        ],
        ids=[
            "published-example-female",
            "lower-case-x",
            "spaces-inside",
            "full-width-digits",
            "shenzhen-male",
            "leap-day-2000",
            "earliest-birth-date",
            "born-today",
            "taiwan-region-71",
            "hk-residence-permit-81",
            "macao-residence-permit-82",
            "taiwan-residence-permit-83",
        ],
    )
    def test_valid_number_gives_birth_date_and_sex(
        self, raw: str, number: str | None, birth_date: date, sex: Sex
    ) -> None:
        parsed = parse_identity(IdType.RESIDENT_ID, raw, today=TODAY)

        assert parsed == ParsedIdentity(
            id_type=IdType.RESIDENT_ID,
            number=number or raw,
            birth_date=birth_date,
            sex=sex,
        )

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            ("110105194912310021", "checksum"),
            ("11010519491231002", "length"),
            ("11010519491231002X1", "length"),
            ("1101051949A231002X", "characters"),
            ("11010519491231X02X", "characters"),
            ("11010519491231002Y", "characters"),
            (with_check("00010519491231002"), "region"),
            (with_check("99010519491231002"), "region"),
            (with_check("16010519491231002"), "region"),
            (with_check("72010519491231002"), "region"),
            (with_check("11010519490231002"), "birth_date"),
            (with_check("11010519000229001"), "birth_date"),
            (with_check("11010518991231001"), "birth_date"),
            (with_check("11010519491301002"), "birth_date"),
            (with_check("11010519490100002"), "birth_date"),
            (with_check("11010520240602001"), "future_birth_date"),
            ("110105491231002", "old_format"),
            ("", "empty"),
            ("   ", "empty"),
        ],
        ids=[
            "wrong-check-digit",
            "17-characters",
            "19-characters",
            "letter-in-the-middle",
            "x-not-last",
            "other-letter-last",
            "region-00",
            "region-99",
            "region-16-gap",
            "region-72-gap",
            "february-31",
            "1900-not-leap",
            "before-1900",
            "month-13",
            "day-00",
            "born-after-today",
            "old-15-digit",
            "empty",
            "blank",
        ],
    )
    def test_invalid_number_is_refused_with_reason(self, raw: str, reason: str) -> None:
        with pytest.raises(InvalidIdNumber) as caught:
            parse_identity(IdType.RESIDENT_ID, raw, today=TODAY)

        assert caught.value.reason == reason
        assert caught.value.extensions() == {"reason": reason}

    @pytest.mark.parametrize("position", range(17), ids=lambda p: f"digit-{p + 1}")
    def test_any_single_mistyped_digit_is_caught(self, position: int) -> None:
        valid = "440304199001010011"
        for digit in "0123456789":
            if digit == valid[position]:
                continue
            typo = valid[:position] + digit + valid[position + 1 :]
            with pytest.raises(InvalidIdNumber):
                parse_identity(IdType.RESIDENT_ID, typo, today=TODAY)

    @pytest.mark.parametrize(
        "position",
        [p for p in range(17) if PUBLISHED_EXAMPLE[p] != PUBLISHED_EXAMPLE[p + 1]],
        ids=lambda p: f"swap-{p + 1}-{p + 2}",
    )
    def test_swapped_neighbouring_characters_are_caught(self, position: int) -> None:
        valid = PUBLISHED_EXAMPLE
        swapped = valid[:position] + valid[position + 1] + valid[position] + valid[position + 2 :]
        with pytest.raises(InvalidIdNumber):
            parse_identity(IdType.RESIDENT_ID, swapped, today=TODAY)


class TestParseOtherDocuments:
    @pytest.mark.parametrize(
        ("id_type", "raw", "number"),
        [
            (IdType.PASSPORT, "E12345678", "E12345678"),
            (IdType.PASSPORT, " e1234 5678 ", "E12345678"),
            (IdType.PASSPORT, "AB123", "AB123"),
            (IdType.PASSPORT, "12345678901234567", "12345678901234567"),
            (IdType.HK_MACAO_PERMIT, "H12345678", "H12345678"),
            (IdType.HK_MACAO_PERMIT, "m1234567890", "M1234567890"),
            (IdType.TAIWAN_PERMIT, "12345678", "12345678"),
            (IdType.TAIWAN_PERMIT, "1234567890", "1234567890"),
            (IdType.TAIWAN_PERMIT, "1234567890b", "1234567890B"),
            (IdType.TAIWAN_PERMIT, "1234567890(B)", "1234567890B"),
        ],
        ids=[
            "passport",
            "passport-lower-case-and-spaces",
            "passport-5-characters",
            "passport-17-characters",
            "hk-macao-8-digits",
            "hk-macao-10-digits-lower-case",
            "taiwan-8-digits",
            "taiwan-old-10-digits",
            "taiwan-old-with-letter",
            "taiwan-old-letter-in-brackets",
        ],
    )
    def test_valid_number_is_normalised_without_birth_date_or_sex(
        self, id_type: IdType, raw: str, number: str
    ) -> None:
        parsed = parse_identity(id_type, raw, today=TODAY)

        assert parsed == ParsedIdentity(id_type=id_type, number=number, birth_date=None, sex=None)

    @pytest.mark.parametrize(
        ("id_type", "raw", "reason"),
        [
            (IdType.PASSPORT, "E123", "length"),
            (IdType.PASSPORT, "123456789012345678", "length"),
            (IdType.PASSPORT, "E1234-5678", "alphanumeric"),
            (IdType.PASSPORT, "护照12345", "alphanumeric"),
            (IdType.PASSPORT, "", "empty"),
            (IdType.HK_MACAO_PERMIT, "H1234567", "hk_macao_format"),
            (IdType.HK_MACAO_PERMIT, "H123456789", "hk_macao_format"),
            (IdType.HK_MACAO_PERMIT, "H12345678901", "hk_macao_format"),
            (IdType.HK_MACAO_PERMIT, "A12345678", "hk_macao_format"),
            (IdType.HK_MACAO_PERMIT, "12345678", "hk_macao_format"),
            (IdType.TAIWAN_PERMIT, "1234567", "taiwan_format"),
            (IdType.TAIWAN_PERMIT, "123456789", "taiwan_format"),
            (IdType.TAIWAN_PERMIT, "12345678901", "taiwan_format"),
            (IdType.TAIWAN_PERMIT, "T12345678", "taiwan_format"),
            (IdType.TAIWAN_PERMIT, "1234567890BC", "taiwan_format"),
        ],
        ids=[
            "passport-4-characters",
            "passport-18-characters",
            "passport-hyphen",
            "passport-chinese",
            "passport-empty",
            "hk-macao-7-digits",
            "hk-macao-9-digits",
            "hk-macao-11-digits",
            "hk-macao-wrong-letter",
            "hk-macao-no-letter",
            "taiwan-7-digits",
            "taiwan-9-digits",
            "taiwan-11-digits",
            "taiwan-leading-letter",
            "taiwan-two-letters",
        ],
    )
    def test_invalid_number_is_refused_with_reason(
        self, id_type: IdType, raw: str, reason: str
    ) -> None:
        with pytest.raises(InvalidIdNumber) as caught:
            parse_identity(id_type, raw, today=TODAY)

        assert caught.value.reason == reason


class TestErrorSentences:
    @pytest.mark.parametrize(
        ("id_type", "raw"),
        [
            (IdType.RESIDENT_ID, ""),
            (IdType.RESIDENT_ID, "11010519491231002"),
            (IdType.RESIDENT_ID, "110105491231002"),
            (IdType.RESIDENT_ID, "1101051949A231002X"),
            (IdType.RESIDENT_ID, with_check("99010519491231002")),
            (IdType.RESIDENT_ID, with_check("11010519490231002")),
            (IdType.RESIDENT_ID, with_check("11010520240602001")),
            (IdType.RESIDENT_ID, "110105194912310021"),
            (IdType.PASSPORT, "E12"),
            (IdType.PASSPORT, "E1234-5678"),
            (IdType.HK_MACAO_PERMIT, "X1"),
            (IdType.TAIWAN_PERMIT, "X1"),
        ],
        ids=[
            "empty",
            "length",
            "old_format",
            "characters",
            "region",
            "birth_date",
            "future_birth_date",
            "checksum",
            "passport-length",
            "alphanumeric",
            "hk_macao_format",
            "taiwan_format",
        ],
    )
    @pytest.mark.parametrize("locale", i18n.LOCALES)
    def test_id_number_detail_explains_the_reason(
        self, id_type: IdType, raw: str, locale: str
    ) -> None:
        with pytest.raises(InvalidIdNumber) as caught:
            parse_identity(id_type, raw, today=TODAY)
        error = caught.value

        detail = error.detail(locale)
        reason_text = i18n.translate(f"id_reason.{error.reason}", locale, **error.values)
        assert f"id_reason.{error.reason}" in i18n.message_ids(locale)
        assert reason_text in detail
        assert "{" not in detail
        assert "id_reason" not in detail
        assert error.title(locale) != f"title.{error.code}"

    def test_length_detail_gives_the_counts(self) -> None:
        with pytest.raises(InvalidIdNumber) as caught:
            parse_identity(IdType.RESIDENT_ID, "11010519491231002", today=TODAY)

        assert caught.value.detail("zh-CN") == "证件号码有误：号码应为18位，当前为17位。"
        assert caught.value.detail("en") == (
            "The ID number is not valid: It should have 18 characters, but 17 were entered."
        )

    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (InvalidIdNumber(reason="checksum"), "invalid_id_number"),
            (InvalidPhone(), "invalid_phone"),
            (InvalidName(), "invalid_name"),
        ],
        ids=["id-number", "phone", "name"],
    )
    @pytest.mark.parametrize("locale", i18n.LOCALES)
    def test_every_error_has_a_title_and_sentence(
        self, error: InvalidIdNumber | InvalidPhone | InvalidName, code: str, locale: str
    ) -> None:
        assert error.code == code
        assert error.status == 422
        assert f"title.{code}" in i18n.message_ids(locale)
        assert f"error.{code}" in i18n.message_ids(locale)
        assert "{" not in error.detail(locale)


class TestNormaliseMobile:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("13912345678", "13912345678"),
            ("+86 139 1234 5678", "13912345678"),
            ("0086-13912345678", "13912345678"),
            ("139-1234-5678", "13912345678"),
            ("8613912345678", "13912345678"),
            ("(+86) 139 1234 5678", "13912345678"),
            ("１３９１２３４５６７８", "13912345678"),
            (" 19912345678 ", "19912345678"),
        ],
        ids=[
            "plain",
            "plus-86-with-spaces",
            "0086-with-dash",
            "dashes",
            "bare-86",
            "brackets",
            "full-width-digits",
            "199-and-surrounding-spaces",
        ],
    )
    def test_valid_number_becomes_11_digits(self, raw: str, expected: str) -> None:
        assert normalise_mobile(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "12912345678",
            "1391234567",
            "139123456789",
            "abc",
            "",
            "+8612912345678",
            "+113912345678",
            "86139123456",
            "139.1234.5678",
            "١٣٩١٢٣٤٥٦٧٨",
        ],
        ids=[
            "second-digit-2",
            "10-digits",
            "12-digits",
            "letters",
            "empty",
            "plus-86-then-invalid",
            "other-country-code",
            "86-then-too-short",
            "dots",
            "arabic-indic-digits",
        ],
    )
    def test_invalid_number_is_refused(self, raw: str) -> None:
        with pytest.raises(InvalidPhone):
            normalise_mobile(raw)


class TestValidateName:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("张三", "张三"),
            (" 李小明 ", "李小明"),
            ("阿卜杜拉·买买提", "阿卜杜拉·买买提"),
            ("阿卜杜拉•买买提", "阿卜杜拉·买买提"),
            ("阿卜杜拉・买买提", "阿卜杜拉·买买提"),
            ("John Smith", "John Smith"),
            ("John   Smith", "John Smith"),
            ("O'Brien", "O'Brien"),
            ("Mary-Jane Watson", "Mary-Jane Watson"),
            ("J. R. R. Tolkien", "J. R. R. Tolkien"),
            ("José Núñez", "José Núñez"),
            ("王", "王"),
            ("名" * 40, "名" * 40),
        ],
        ids=[
            "chinese",
            "trimmed",
            "middle-dot",
            "bullet-becomes-middle-dot",
            "katakana-dot-becomes-middle-dot",
            "latin",
            "spaces-collapsed",
            "apostrophe",
            "hyphen",
            "periods",
            "accents",
            "one-character",
            "40-characters",
        ],
    )
    def test_valid_name_is_cleaned(self, raw: str, expected: str) -> None:
        assert validate_name(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "   ",
            "张三1",
            "名" * 41,
            "Robert'); DROP TABLE",
            "张三@",
            "·",
            "--",
            "张_三",
            "张三😀",
        ],
        ids=[
            "empty",
            "blank",
            "digit",
            "41-characters",
            "brackets-and-semicolon",
            "at-sign",
            "only-a-dot",
            "only-hyphens",
            "underscore",
            "emoji",
        ],
    )
    def test_invalid_name_is_refused(self, raw: str) -> None:
        with pytest.raises(InvalidName):
            validate_name(raw)


class TestMasking:
    @pytest.mark.parametrize(
        ("number", "masked"),
        [
            ("11010519491231002X", "1101**********002X"),
            ("E12345678", "E123*5678"),
            ("G1234567", "G1****67"),
            ("AB123", "AB*23"),
            ("ABCD", "****"),
            ("", ""),
        ],
        ids=[
            "resident-id",
            "9-characters",
            "8-characters",
            "5-characters",
            "4-characters",
            "empty",
        ],
    )
    def test_id_number(self, number: str, masked: str) -> None:
        assert mask_id_number(number) == masked

    @pytest.mark.parametrize(
        ("phone", "masked"),
        [("13912345678", "139****5678"), ("1234567", "*******")],
        ids=["mobile", "too-short-to-show-anything"],
    )
    def test_phone(self, phone: str, masked: str) -> None:
        assert mask_phone(phone) == masked

    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("张三", "张*"),
            ("张小明", "张*明"),
            ("欧阳小明", "欧**明"),
            ("王", "*"),
            ("阿卜杜拉·买买提", "阿***·**提"),
            ("John Smith", "J*** S****"),
            ("Mary-Jane Watson", "M***-**** W*****"),
            ("Li", "L*"),
        ],
        ids=[
            "two-characters",
            "three-characters",
            "compound-surname",
            "one-character",
            "transliterated-with-middle-dot",
            "latin",
            "latin-hyphenated",
            "latin-one-word",
        ],
    )
    def test_name(self, name: str, masked: str) -> None:
        assert mask_name(name) == masked


class TestLookupKind:
    """What the registration window's search text is taken for."""

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("13912345678", LookupKind.PHONE),
            ("+86 139-1234-5678", LookupKind.PHONE),
            ("11010519491231002X", LookupKind.RESIDENT_ID),
            ("110105 19491231 002x", LookupKind.RESIDENT_ID),
            # Mistyped, still a resident ID: the look-up explains what is wrong with it.
            ("110105194912310021", LookupKind.RESIDENT_ID),
            ("110105491231002", LookupKind.RESIDENT_ID),
            ("E12345678", LookupKind.OTHER_DOCUMENT),
            ("H12345678", LookupKind.OTHER_DOCUMENT),
            ("1234567890(B)", LookupKind.OTHER_DOCUMENT),
        ],
    )
    def test_kinds(self, text: str, kind: LookupKind) -> None:
        assert lookup_kind(text) is kind

    @pytest.mark.parametrize("text", ["", "   ", "张三", "a@b", "139 1234 567?"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(InvalidLookup):
            lookup_kind(text)
