"""Committed queue changes reach the live bus, and the SSE stream sends state then updates."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from yuyue.config import Settings
from yuyue.kit.crypto import generate_master_secret
from yuyue.kit.live import InProcessLiveBus
from yuyue.visits import events
from yuyue.visits.events import QueueEvent, QueueEventKind
from yuyue.visits.live import board_channel, queue_channel, visit_channel
from yuyue.web.context import AppContext
from yuyue.web.sse import frame, stream_events


def _event() -> QueueEvent:
    return QueueEvent(
        kind=QueueEventKind.CALLED,
        hospital_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        department_id=uuid.uuid4(),
        visit_id=uuid.uuid4(),
        queue_number=3,
        at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )


class TestQueueEventsReachTheBus:
    async def test_publish_fans_out_on_board_queue_and_visit_channels(self, tmp_path) -> None:
        ctx = AppContext.build(
            Settings(
                database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
                secret_key=generate_master_secret(),
            )
        )
        assert isinstance(ctx.live, InProcessLiveBus)
        event = _event()
        channels = (
            board_channel(event.department_id),
            queue_channel(event.session_id),
            visit_channel(event.visit_id),
        )
        async with ctx.live.subscribe(*channels) as sub:
            await events.publish(ctx, event)
            got = [await sub.next(1) for _ in channels]
        assert [item[0] if item else None for item in got] == list(channels)
        for item in got:
            assert item is not None
            assert item[1]["kind"] == "called"
            assert item[1]["queue_number"] == 3
        await ctx.db.dispose()


class _Request:
    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


class TestStream:
    async def test_state_first_then_forwarded_events_and_fresh_state(self) -> None:
        bus = InProcessLiveBus()
        reads = iter(range(100))

        async def snapshot() -> dict[str, Any]:
            return {"read": next(reads)}

        async def forward(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
            return ("call", {"n": event["n"]}) if event.get("kind") == "called" else None

        request = _Request()
        stream = stream_events(
            request,  # type: ignore[arg-type]
            bus=bus,
            channels=("c",),
            snapshot=snapshot,
            forward=forward,
            heartbeat=0.05,
        )
        assert await anext(stream) == "retry: 3000\n\n"
        assert await anext(stream) == frame("state", {"read": 0})
        await bus.publish("c", {"kind": "called", "n": 7})
        assert await anext(stream) == frame("call", {"n": 7})
        assert await anext(stream) == frame("state", {"read": 1})
        assert await anext(stream) == ": keep-alive\n\n"
        request.gone = True
        async with asyncio.timeout(1):
            assert [chunk async for chunk in stream] == []
        assert bus.subscriber_count("c") == 0

    async def test_a_quiet_stream_with_refresh_sends_the_state_again(self) -> None:
        """What changes with the clock alone (a notice whose time comes) reaches a screen
        that hears no event."""
        bus = InProcessLiveBus()
        reads = iter(range(100))

        async def snapshot() -> dict[str, Any]:
            return {"read": next(reads)}

        request = _Request()
        stream = stream_events(
            request,  # type: ignore[arg-type]
            bus=bus,
            channels=("c",),
            snapshot=snapshot,
            heartbeat=0.02,
            refresh=0.05,
        )
        assert await anext(stream) == "retry: 3000\n\n"
        assert await anext(stream) == frame("state", {"read": 0})
        chunks = [await anext(stream) for _ in range(8)]
        assert frame("state", {"read": 1}) in chunks
        assert ": keep-alive\n\n" in chunks
        request.gone = True
        async with asyncio.timeout(1):
            assert [chunk async for chunk in stream] == []

    async def test_a_dropped_subscriber_ends_the_stream(self) -> None:
        bus = InProcessLiveBus()

        async def snapshot() -> dict[str, Any]:
            return {}

        stream = stream_events(
            _Request(),  # type: ignore[arg-type]
            bus=bus,
            channels=("c",),
            snapshot=snapshot,
        )
        await anext(stream)
        await anext(stream)
        await bus.close()
        async with asyncio.timeout(1):
            assert [chunk async for chunk in stream] == []

    def test_frame_is_one_sse_event(self) -> None:
        assert frame("state", {"html": "<b>1</b>"}) == 'event: state\ndata: {"html":"<b>1</b>"}\n\n'
