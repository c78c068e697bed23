"""A small in-process cache whose entries are forgotten after a fixed time."""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live `ttl` seconds (0 keeps nothing); past `limit` entries it starts over,
    which is cheaper than tracking age and never grows without bound."""

    def __init__(
        self, ttl: float, *, limit: int = 50_000, monotonic: Callable[[], float] = clock.monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._now = monotonic
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._now():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (self._now() + self.ttl, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
