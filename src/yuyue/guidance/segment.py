"""Chinese word segmentation with jieba, taught the knowledge's symptom words and the
hospital's department names (a user dictionary), so that 脑袋疼 or 心血管内科 stay one word.

jieba builds its prefix dictionary on first use (about a second) and reports it on stderr;
that report is silenced here. One `Segmenter` per process is enough: `for_knowledge()`."""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import jieba

from yuyue.guidance.knowledge import Knowledge

jieba.setLogLevel(logging.WARNING)

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def normalise(text: str) -> str:
    """Full-width letters and digits to plain ones, lower case, curly quotes straight."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return folded.replace("\u2019", "'").replace("\u2018", "'")


class Segmenter:
    def __init__(self, words: Iterable[str] = ()) -> None:
        self._tokenizer = jieba.Tokenizer()
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self.add_words(words)

    def add_words(self, words: Iterable[str]) -> None:
        """Teaches words (idempotent): each becomes one token wherever it appears."""
        fresh = sorted({w for w in words if w and w not in self._known})
        if not fresh:
            return
        with self._lock:
            for word in fresh:
                if word not in self._known:
                    self._tokenizer.add_word(word)
                    self._known.add(word)

    def tokens(self, text: str) -> list[Token]:
        """The words of `text` (already normalised) with their places; spaces dropped."""
        return [
            Token(word, start, end)
            for word, start, end in self._tokenizer.tokenize(text)
            if not _SPACE.fullmatch(word)
        ]


@functools.cache
def for_knowledge(knowledge: Knowledge) -> Segmenter:
    return Segmenter(knowledge.dictionary_words())
