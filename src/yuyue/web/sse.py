"""Server-Sent Events over the live bus.

A stream subscribes first, then sends the current state (so a reconnecting screen is
consistent at once, and nothing published in between is missed), then for every burst of
events it forwards the events a page wants to react to (a call to announce) and sends the
state again. A comment every ``heartbeat`` seconds keeps proxies from closing an idle
connection; ``retry:`` tells the browser how soon to reconnect. The stream ends when the
client goes away, or when the bus drops a subscriber that fell behind (the browser then
reconnects and starts again from the current state). A stream given ``refresh`` also sends
the state again after that many quiet seconds, for what changes with the clock alone (a
notice whose time to be shown begins or ends).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from yuyue.kit.live import LiveBus, LiveEvent, SubscriptionEnded, encode

HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 3000

Snapshot = Callable[[], Awaitable[Mapping[str, Any]]]
# Turns a bus event into the (event name, data) to forward to the page, or None to only
# refresh the state.
Forward = Callable[[LiveEvent], Awaitable[tuple[str, Mapping[str, Any]] | None]]


def frame(event: str, data: Mapping[str, Any]) -> str:
    lines = encode(data).splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def stream_events(
    request: Request,
    *,
    bus: LiveBus,
    channels: tuple[str, ...],
    snapshot: Snapshot,
    forward: Forward | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
    retry_ms: int = RETRY_MILLISECONDS,
    refresh: float | None = None,
) -> AsyncIterator[str]:
    async with bus.subscribe(*channels) as subscription:
        yield f"retry: {retry_ms}\n\n"
        yield frame("state", await snapshot())
        sent_at = time.monotonic()
        while True:
            try:
                first = await subscription.next(heartbeat)
            except SubscriptionEnded:
                return
            if first is None:
                if await request.is_disconnected():
                    return
                if refresh is not None and time.monotonic() - sent_at >= refresh:
                    yield frame("state", await snapshot())
                    sent_at = time.monotonic()
                else:
                    yield ": keep-alive\n\n"
                continue
            # A burst (a doctor calling, then starting) costs one state read.
            for _, event in [first, *subscription.pending()]:
                if forward is not None:
                    forwarded = await forward(event)
                    if forwarded is not None:
                        yield frame(*forwarded)
            yield frame("state", await snapshot())
            sent_at = time.monotonic()


def event_stream(
    request: Request,
    *,
    bus: LiveBus,
    channels: tuple[str, ...],
    snapshot: Snapshot,
    forward: Forward | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
    refresh: float | None = None,
) -> StreamingResponse:
    return StreamingResponse(
        stream_events(
            request,
            bus=bus,
            channels=channels,
            snapshot=snapshot,
            forward=forward,
            heartbeat=heartbeat,
            refresh=refresh,
        ),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-store",
            # nginx would otherwise buffer the stream.
            "X-Accel-Buffering": "no",
        },
    )
