"""Real-name identity rules: document numbers, mobile numbers, names and on-screen masking.

Pure functions over strings and an injected ``today``; no I/O. They raise domain errors whose
sentences say exactly what is wrong, because the person reading them is usually a patient
or a registration clerk typing a number from a card.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from yuyue.kit import i18n
from yuyue.kit.errors import YuyueError
from yuyue.scheduling.enums import Channel
from yuyue.staff.rules import Actor, ActorKind


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


@dataclass(frozen=True, slots=True)
class ParsedIdentity:
    id_type: IdType
    number: str
    birth_date: date | None
    sex: Sex | None


class InvalidIdNumber(YuyueError):
    """The document number is refused; ``reason`` is a stable id with its own sentence."""

    code = "invalid_id_number"
    status = 422

    def __init__(self, *, reason: str, **values: Any) -> None:
        super().__init__(reason=reason, **values)
        self.reason = reason

    def detail(self, locale: str = i18n.DEFAULT_LOCALE) -> str:
        explained = i18n.translate(f"id_reason.{self.reason}", locale, **self.values)
        values = {**self.values, "reason": explained}
        return i18n.translate(f"error.{self.code}", locale, **values)

    def extensions(self) -> dict[str, Any]:
        return {"reason": self.reason}


class InvalidPhone(YuyueError):
    code = "invalid_phone"
    status = 422


class InvalidName(YuyueError):
    code = "invalid_name"
    status = 422


class InvalidLookup(YuyueError):
    """What a registrar typed to find a patient is neither a mobile number, a medical record
    number nor a document number of any kind."""

    code = "invalid_lookup"
    status = 422


i18n.register(
    {
        "title.invalid_id_number": ("证件号码有误", "Invalid ID number"),
        "error.invalid_id_number": (
            "证件号码有误：{reason}",
            "The ID number is not valid: {reason}",
        ),
        "id_reason.empty": ("请填写证件号码。", "Please enter the ID number."),
        "id_reason.length": (
            "号码应为{expected}位，当前为{actual}位。",
            "It should have {expected} characters, but {actual} were entered.",
        ),
        "id_reason.old_format": (
            "15位旧版身份证号码已停止使用，请填写18位居民身份证号码。",
            "Old 15-digit ID numbers are no longer accepted; please enter the 18-character number.",
        ),
        "id_reason.characters": (
            "居民身份证号码前17位只能是数字，最后一位是数字或字母 X。",
            "The first 17 characters of a resident ID number must be digits, "
            "and the last one a digit or the letter X.",
        ),
        "id_reason.region": (
            "开头两位「{region}」不是有效的省级地区代码。",
            "The first two digits ({region}) are not a valid province code.",
        ),
        "id_reason.birth_date": (
            "第7至14位的出生日期「{value}」不是1900年1月1日以后的有效日期。",
            "The birth date in characters 7 to 14 ({value}) is not a real date "
            "on or after 1 January 1900.",
        ),
        "id_reason.future_birth_date": (
            "第7至14位的出生日期「{value}」晚于今天。",
            "The birth date in characters 7 to 14 ({value}) is later than today.",
        ),
        "id_reason.checksum": (
            "最后一位校验码与前17位不符，可能有数字输错或顺序颠倒，请对照证件核对。",
            "The last character (check digit) does not match the first 17; a digit may be "
            "mistyped or two swapped. Please check it against the card.",
        ),
        "id_reason.alphanumeric": (
            "护照号码只能包含英文字母和数字。",
            "A passport number may contain only letters A–Z and digits.",
        ),
        "id_reason.hk_macao_format": (
            "港澳通行证号码应为字母 H 或 M 加8位数字（新版再加2位数字）。",
            "A Hong Kong/Macao permit number is the letter H or M followed by 8 digits "
            "(10 digits on newer permits).",
        ),
        "id_reason.taiwan_format": (
            "台湾居民来往大陆通行证号码应为8位数字，旧版为10位数字（可带一个字母）。",
            "A Taiwan residents' permit number is 8 digits, or 10 digits on old permits "
            "(optionally followed by one letter).",
        ),
        "title.invalid_phone": ("手机号码有误", "Invalid mobile number"),
        "error.invalid_phone": (
            "请填写11位中国大陆手机号码（以1开头，可带 +86）。",
            "Please enter an 11-digit mainland China mobile number starting with 1 "
            "(a +86 prefix is fine).",
        ),
        "title.invalid_lookup": ("无法查找", "Nothing to look up"),
        "error.invalid_lookup": (
            "请输入证件号码、11位手机号码或病历号（MR 开头）。",
            "Enter an ID document number, an 11-digit mobile number or a medical record "
            "number (starting MR).",
        ),
        "title.invalid_name": ("姓名有误", "Invalid name"),
        "error.invalid_name": (
            "姓名须为1至40个字，可包含汉字或字母、空格、间隔号「·」、撇号、连字符和句点，"
            "不能包含数字或其他符号。",
            "A name must be 1 to 40 characters of letters (any script), spaces, the middle "
            "dot '·', apostrophes, hyphens or periods; digits and other symbols are not allowed.",
        ),
    }
)


# GB/T 2260 province-level codes, plus 81/82/83 used by the residence permits issued to
# Hong Kong, Macao and Taiwan residents, which share the 18-character format.
_PROVINCE_CODES: Final = frozenset(
    [
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    ]
)
_CHECK_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS: Final = "10X98765432"
_EARLIEST_BIRTH: Final = date(1900, 1, 1)

# ASCII classes on purpose: ``\d`` and ``str.isdigit`` also accept Arabic-Indic, superscript
# and other digits that no Chinese document contains.
_RESIDENT_SHAPE: Final = re.compile(r"[0-9]{17}[0-9X]")
_OLD_RESIDENT_SHAPE: Final = re.compile(r"[0-9]{15}")
_PASSPORT_CHARS: Final = re.compile(r"[A-Z0-9]+")
_HK_MACAO_SHAPE: Final = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_TAIWAN_SHAPE: Final = re.compile(r"[0-9]{8}|[0-9]{10}[A-Z]?")
_MOBILE_SHAPE: Final = re.compile(r"1[3-9][0-9]{9}")


def _clean_document_number(raw: str) -> str:
    # NFKC turns the full-width digits and letters a Chinese input method produces into
    # ASCII; people also group numbers with spaces as they read them off the card.
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def parse_identity(id_type: IdType, raw: str, *, today: date) -> ParsedIdentity:
    """Validates and normalises a document number; birth date and sex for resident IDs."""
    number = _clean_document_number(raw)
    if not number:
        raise InvalidIdNumber(reason="empty")
    match id_type:
        case IdType.RESIDENT_ID:
            return _parse_resident_id(number, today=today)
        case IdType.PASSPORT:
            if not _PASSPORT_CHARS.fullmatch(number):
                raise InvalidIdNumber(reason="alphanumeric")
            if not 5 <= len(number) <= 17:
                raise InvalidIdNumber(reason="length", expected="5–17", actual=len(number))
        case IdType.HK_MACAO_PERMIT:
            if not _HK_MACAO_SHAPE.fullmatch(number):
                raise InvalidIdNumber(reason="hk_macao_format")
        case IdType.TAIWAN_PERMIT:
            # Old permits print the trailing letter in brackets, e.g. 1234567890(B).
            number = re.sub(r"[()]", "", number)
            if not _TAIWAN_SHAPE.fullmatch(number):
                raise InvalidIdNumber(reason="taiwan_format")
    return ParsedIdentity(id_type=id_type, number=number, birth_date=None, sex=None)


def _parse_resident_id(number: str, *, today: date) -> ParsedIdentity:
    if _OLD_RESIDENT_SHAPE.fullmatch(number):
        raise InvalidIdNumber(reason="old_format")
    if len(number) != 18:
        raise InvalidIdNumber(reason="length", expected=18, actual=len(number))
    if not _RESIDENT_SHAPE.fullmatch(number):
        raise InvalidIdNumber(reason="characters")
    if int(number[:2]) not in _PROVINCE_CODES:
        raise InvalidIdNumber(reason="region", region=number[:2])
    birth_text = number[6:14]
    try:
        birth_date = date(int(birth_text[:4]), int(birth_text[4:6]), int(birth_text[6:]))
    except ValueError:
        raise InvalidIdNumber(reason="birth_date", value=birth_text) from None
    if birth_date < _EARLIEST_BIRTH:
        raise InvalidIdNumber(reason="birth_date", value=birth_text)
    if birth_date > today:
        raise InvalidIdNumber(reason="future_birth_date", value=birth_text)
    total = sum(
        int(digit) * weight for digit, weight in zip(number[:17], _CHECK_WEIGHTS, strict=True)
    )
    if _CHECK_CHARS[total % 11] != number[17]:
        raise InvalidIdNumber(reason="checksum")
    sex = Sex.MALE if int(number[16]) % 2 else Sex.FEMALE
    return ParsedIdentity(id_type=IdType.RESIDENT_ID, number=number, birth_date=birth_date, sex=sex)


class LookupKind(StrEnum):
    PHONE = "phone"
    RESIDENT_ID = "resident_id"
    RECORD_NUMBER = "record_number"
    OTHER_DOCUMENT = "other_document"


# --- medical record numbers (病历号) -----------------------------------------------------------

RECORD_PREFIX: Final = "MR"
RECORD_DIGITS: Final = 8
# What a registrar may type for one: the prefix and up to 12 digits (leading zeros optional).
_RECORD_SHAPE: Final = re.compile(rf"{RECORD_PREFIX}([0-9]{{1,12}})")


def record_number(sequence: int) -> str:
    """A hospital's `sequence`-th patient's medical record number: ``MR`` and the sequence
    padded to 8 digits (``MR00000042``); a hospital past 99,999,999 patients gets more
    digits, never a repeated number."""
    if sequence < 1:
        raise ValueError("record numbers start at 1")
    return f"{RECORD_PREFIX}{sequence:0{RECORD_DIGITS}d}"


def parse_record_number(raw: str) -> str | None:
    """The stored form of a typed medical record number (``mr 42``, ``MR-00000042`` and
    full-width ``ＭＲ００００００４２`` all give ``MR00000042``), or None when the text is
    not shaped like one."""
    text = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", raw)).upper()
    found = _RECORD_SHAPE.fullmatch(text)
    if found is None or int(found.group(1)) == 0:
        return None
    return record_number(int(found.group(1)))


def lookup_kind(raw: str) -> LookupKind:
    """What a registrar's search text is: a mobile number, something shaped like a resident
    ID number (then it must be a valid one: a typo is explained, not silently not found),
    a medical record number (``MR`` and digits; a passport of that shape is found too), or
    another document's number (passport, permits). Spaces and dashes are ignored."""
    text = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", raw)).upper()
    if not text:
        raise InvalidLookup()
    try:
        normalise_mobile(text)
        return LookupKind.PHONE
    except InvalidPhone:
        pass
    # 18 characters of digits (the last maybe X), or the old 15 digits: a resident ID
    # however mistyped; other documents never have that shape.
    if re.fullmatch(r"[0-9]{17}[0-9X]|[0-9]{15}", text):
        return LookupKind.RESIDENT_ID
    if parse_record_number(text) is not None:
        return LookupKind.RECORD_NUMBER
    if not _PASSPORT_CHARS.fullmatch(re.sub(r"[()]", "", text)):
        raise InvalidLookup()
    return LookupKind.OTHER_DOCUMENT


def normalise_mobile(raw: str) -> str:
    """Returns the bare 11-digit mainland mobile number, whatever grouping was typed."""
    text = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", raw))
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        # A bare 86 is only a country code when 11 digits follow; no mobile starts with 8.
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    if not _MOBILE_SHAPE.fullmatch(text):
        raise InvalidPhone()
    return text


# Input methods and fonts offer several look-alike dots for the separator in transliterated
# names (阿卜杜拉·买买提); storing one form keeps look-ups and masking consistent.
_MIDDLE_DOT: Final = "·"
_DOT_LOOKALIKES: Final = str.maketrans(dict.fromkeys("•・･‧∙⋅", _MIDDLE_DOT))
_NAME_PUNCTUATION: Final = frozenset(f" {_MIDDLE_DOT}'’-.")


def _is_name_letter(char: str) -> bool:
    # Marks (category M) carry vowels and tones in Tibetan, Devanagari and other scripts
    # patients write their names in; they are part of the letter, not punctuation.
    return unicodedata.category(char)[0] in "LM"


def validate_name(raw: str) -> str:
    """Returns the name trimmed, with runs of spaces and look-alike dots made uniform."""
    name = " ".join(unicodedata.normalize("NFC", raw).translate(_DOT_LOOKALIKES).split())
    if not 1 <= len(name) <= 40:
        raise InvalidName()
    if not all(_is_name_letter(char) or char in _NAME_PUNCTUATION for char in name):
        raise InvalidName()
    if not any(unicodedata.category(char).startswith("L") for char in name):
        raise InvalidName()
    return name


def mask_id_number(number: str) -> str:
    """Keeps just enough of a document number for a person to recognise their own."""
    if len(number) >= 9:
        keep = 4
    elif len(number) > 4:
        keep = 2
    else:
        # Keeping two at each end of so short a value would show all of it.
        return "*" * len(number)
    return number[:keep] + "*" * (len(number) - 2 * keep) + number[-keep:]


def mask_phone(phone: str) -> str:
    """``13912345678`` → ``139****5678``, the form Chinese apps and SMS use."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


# In free text (a reason, an appeal): a resident ID number (18, the last may be X; or the
# old 15 digits) and a mainland mobile number, not part of a longer run of digits.
_ID_IN_TEXT: Final = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE_IN_TEXT: Final = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d{9})(?!\d)")


def mask_text(text: str) -> str:
    """Free text with any ID number or mobile number in it masked where it stands."""
    text = _ID_IN_TEXT.sub(lambda found: mask_id_number(found.group(1)), text)
    return _PHONE_IN_TEXT.sub(
        lambda found: (found.group(1) or "") + mask_phone(found.group(2)), text
    )


# --- who may read a patient -------------------------------------------------------------------


class UnmaskField(StrEnum):
    """What an unmasking shows in full."""

    ID_NUMBER = "id_number"
    PHONE = "phone"


def links_channel(channel: Channel) -> bool:
    """Whether registering a patient through this channel lets the channel read them later.
    Kiosks read no patient by id (they serve whoever stands in front of them, through the
    check-in flows); the window is staff, whose reads are by role and logged."""
    return channel not in (Channel.KIOSK, Channel.WINDOW)


def may_read(actor: Actor, *, known_to_channel: bool) -> bool:
    """Whether a caller may read a patient it names by id (the record, the visits, the
    waitlist entries, guidance by the patient's age and sex):

    - staff, any role (each read is logged: `staff.service.record_read`), and the system;
    - a channel key, only a patient its channel knows (`known_to_channel`): one it
      registered, or one it registered again with the same name and document number, or
      one it had booked for before this rule (carried over by the migration);
    - a kiosk key, none.

    Callers refused are told "not found", as for a patient that does not exist."""
    if actor.kind is not ActorKind.CHANNEL:
        return True
    if actor.channel is Channel.KIOSK:
        return False
    return known_to_channel


def _is_cjk(char: str) -> bool:
    return (
        "\u3400" <= char <= "\u4dbf"
        or "\u4e00" <= char <= "\u9fff"
        or "\uf900" <= char <= "\ufaff"
        or "\U00020000" <= char <= "\U0003134f"
    )


def mask_name(name: str) -> str:
    """A name for the waiting-room screen: recognisable to its owner, not to the room."""
    if any(_is_cjk(char) for char in name):
        # Chinese names have no word breaks: keep the first and last character (only the
        # first for two-character names) and the separators between transliterated parts.
        letters = [i for i, char in enumerate(name) if char not in _NAME_PUNCTUATION]
        if len(letters) >= 3:
            shown = {letters[0], letters[-1]}
        elif len(letters) == 2:
            shown = {letters[0]}
        else:
            shown = set()
        return "".join(
            char if i in shown or char in _NAME_PUNCTUATION else "*" for i, char in enumerate(name)
        )
    return " ".join(
        word[:1] + "".join(char if char in _NAME_PUNCTUATION else "*" for char in word[1:])
        for word in name.split()
    )
