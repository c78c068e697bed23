"""The base of every request body: unknown fields and control characters are refused.

A NUL or other control character in a name or a note is never meant, and PostgreSQL cannot
even store a NUL in text; refusing it here gives a clear 422 instead of a failure deep in
the database.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# Every C0 control but tab, line feed and carriage return, and DEL. A pattern rather than a
# loop over the characters: every booking request passes its ids through here.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and has_control_characters(value):
            raise ValueError("control characters are not allowed")
        return value
