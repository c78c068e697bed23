"""The base of every request body: unknown fields and control characters are refused.

A NUL or other control character in a name or a note is never meant, and PostgreSQL cannot
even store a NUL in text; refusing it here gives a clear 422 instead of a failure deep in
the database.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def has_control_characters(text: str) -> bool:
    return any((ord(ch) < 32 and ch not in _ALLOWED_CONTROLS) or ord(ch) == 127 for ch in text)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and has_control_characters(value):
            raise ValueError("control characters are not allowed")
        return value
