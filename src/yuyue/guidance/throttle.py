"""A light per-client limit for the open guidance endpoints: at most `limit` answers in any
`per_seconds`, counted in this process (each server counts its own; the limit is there so a
script cannot keep a server busy segmenting text, not to meter anyone exactly)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from yuyue.kit.errors import YuyueError

LIMIT = 20
PER_SECONDS = 60.0
MAX_CLIENTS = 10_000


class TooManyRequests(YuyueError):
    code = "too_many_requests"
    status = 429

    def extensions(self) -> dict[str, object]:
        return {"retry_after": int(self.values["seconds"])}


class ClientThrottle:
    def __init__(
        self,
        *,
        limit: int = LIMIT,
        per_seconds: float = PER_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.per_seconds = per_seconds
        self._now = monotonic
        self._seen: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        """Counts one request from `client`, or refuses it with the seconds to wait."""
        now = self._now()
        recent = self._seen.get(client)
        if recent is None:
            if len(self._seen) >= MAX_CLIENTS:
                self._seen.clear()
            recent = self._seen[client] = deque()
        while recent and recent[0] <= now - self.per_seconds:
            recent.popleft()
        if len(recent) >= self.limit:
            seconds = max(1, math.ceil(recent[0] + self.per_seconds - now))
            raise TooManyRequests(seconds=seconds)
        recent.append(now)
