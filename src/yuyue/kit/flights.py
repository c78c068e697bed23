"""Flights: one computation per key at a time, its answer shared by whoever asks meanwhile.

At the release second hundreds of requests find the same thing missing at once (a sold-out
session's alternatives, the maintenance notice whose memory just went stale); without this
each would ask the database the same question. The first caller computes; the others wait
for its answer without computing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flights(Generic[K, V]):
    """Computations in flight per key.

    `share_failures` says what a waiter gets when the computation fails: the same error
    (True), or a computation of its own (False: a failed look-up is not an answer, and the
    next caller may well succeed)."""

    def __init__(self, *, share_failures: bool = True) -> None:
        self.share_failures = share_failures
        self._running: dict[K, asyncio.Future[V]] = {}

    def forget(self, key: K) -> None:
        """Callers from now on compute anew; those already waiting keep their answer."""
        self._running.pop(key, None)

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        loop = asyncio.get_running_loop()
        pending = self._running.get(key)
        # A flight of another event loop (a module-level instance across test loops) is
        # nobody's to wait for here.
        while pending is not None and pending.get_loop() is loop:
            if self.share_failures:
                return await asyncio.shield(pending)
            await asyncio.wait({pending})
            if not pending.cancelled() and pending.exception() is None:
                return pending.result()
            # It failed: the first waiter to get here computes, the others wait for it.
            pending = self._running.get(key)
        future: asyncio.Future[V] = loop.create_future()
        self._running[key] = future
        try:
            value = await compute()
        except BaseException as error:
            if self.share_failures and not isinstance(error, asyncio.CancelledError):
                future.set_exception(error)
                future.exception()  # marks it retrieved when nobody else waits
            else:
                future.cancel()
            raise
        finally:
            if self._running.get(key) is future:
                del self._running[key]
        future.set_result(value)
        return value
