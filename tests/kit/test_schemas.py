"""The base of every request body: control characters are refused, ordinary text is not."""

from __future__ import annotations

import pytest

from yuyue.kit.schemas import has_control_characters


@pytest.mark.parametrize("char", [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)])
def test_every_control_character_but_the_whitespace_ones_is_found(char: str) -> None:
    assert has_control_characters(f"张三{char}")


@pytest.mark.parametrize(
    "text", ["", "张三", "line one\nline two", "a\tb", "windows\r\n", "ÄÖü 😀", "\u00a0\u2028"]
)
def test_ordinary_text_passes(text: str) -> None:
    assert not has_control_characters(text)
