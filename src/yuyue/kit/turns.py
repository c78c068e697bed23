"""Turns: at most a few holders of one key at a time, the rest waiting in line.

Booking transactions of one clinic session contend for the same pool row in the
database: the claim takes the session's earliest free place, so every concurrent claimer
locks the same row and waits for the holder's commit, holding a database connection
while it waits. At the release second that queue fills the booking connections with
requests that mostly end up refused, and the winners of every other session wait behind
them. Taking turns per session in the process keeps the waiting out of the database: one
transaction per session is in flight, the others wait here without a connection, and once
the session is known to be full they are answered from memory without a transaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Line:
    holders: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)


class Turns:
    """Per-key admission with `width` holders at a time, first come first served."""

    def __init__(self, width: int = 1) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self._width = width
        self._lines: dict[Hashable, _Line] = {}

    def waiting(self, key: Hashable) -> int:
        line = self._lines.get(key)
        return len(line.waiting) if line is not None else 0

    def holders(self, key: Hashable) -> int:
        line = self._lines.get(key)
        return line.holders if line is not None else 0

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line()
        if line.holders < self._width and not line.waiting:
            line.holders += 1
        else:
            ticket: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            line.waiting.append(ticket)
            try:
                # A ticket that is set carries a holder's place over to its owner.
                await ticket
            except asyncio.CancelledError:
                if ticket.done() and not ticket.cancelled():
                    self._pass_on(key, line)  # handed a turn while being cancelled
                else:
                    if ticket in line.waiting:  # a turn passed on meanwhile skipped it
                        line.waiting.remove(ticket)
                    self._drop_if_idle(key, line)
                raise
        try:
            yield
        finally:
            self._pass_on(key, line)

    def _pass_on(self, key: Hashable, line: _Line) -> None:
        while line.waiting:
            ticket = line.waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return
        line.holders -= 1
        self._drop_if_idle(key, line)

    def _drop_if_idle(self, key: Hashable, line: _Line) -> None:
        if line.holders == 0 and not line.waiting and self._lines.get(key) is line:
            del self._lines[key]
