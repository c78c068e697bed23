"""One translation layer for every sentence a person reads (zh-CN default, English available).

Catalogues are plain Python dictionaries keyed by a stable message id; values are
`str.format` templates. Keeping them in code means no compile step and a test can check
that every id exists in every language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DEFAULT_LOCALE: Final = "zh-CN"
LOCALES: Final = ("zh-CN", "en")

_CATALOGUES: dict[str, dict[str, str]] = {"zh-CN": {}, "en": {}}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """Adds messages as ``{id: (zh_cn, en)}``; each context registers its own."""
    for key, (zh, en) in messages.items():
        _CATALOGUES["zh-CN"][key] = zh
        _CATALOGUES["en"][key] = en


def negotiate(accept_language: str | None) -> str:
    """Picks zh-CN or en from an Accept-Language header, zh-CN when unsure."""
    if not accept_language:
        return DEFAULT_LOCALE
    best: tuple[float, str] | None = None
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = "en" if tag.startswith("en") else "zh-CN" if tag.startswith("zh") else None
        if locale and (best is None or quality > best[0]):
            best = (quality, locale)
    return best[1] if best else DEFAULT_LOCALE


def translate(key: str, locale: str = DEFAULT_LOCALE, /, **values: object) -> str:
    catalogue = _CATALOGUES.get(locale, _CATALOGUES[DEFAULT_LOCALE])
    template = catalogue.get(key) or _CATALOGUES[DEFAULT_LOCALE].get(key) or key
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def message_ids(locale: str) -> set[str]:
    return set(_CATALOGUES[locale])
