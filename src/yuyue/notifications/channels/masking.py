"""Keeps patients' phone numbers out of logs and out of the reasons recorded on attempts."""

from __future__ import annotations

import re

# Mainland mobile numbers, with or without the +86 prefix, as providers echo them back in
# error messages (Alibaba even quotes the whole string it signed).
_MOBILE = re.compile(r"(?<!\d)(\+?86)?(1\d{2})\d{4}(\d{4})(?!\d)")


def mask_phone(phone: str) -> str:
    """138****1234: enough to tell numbers apart in a log, not enough to call one."""
    digits = phone.removeprefix("+86")
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def scrub_phone_numbers(text: str, *, limit: int = 300) -> str:
    """Masks every mobile number in a provider's free text and caps its length."""
    masked = _MOBILE.sub(lambda m: f"{m.group(2)}****{m.group(3)}", text)
    return masked if len(masked) <= limit else masked[: limit - 1] + "…"
