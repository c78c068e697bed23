"""Open-loop and closed-loop HTTP/1.1 load generators on raw asyncio protocols.

Open loop: request ``i`` of a run at rate ``R`` has the *intended* send time ``t0 + i / R``
and is dispatched at that time whatever happened to earlier requests. Its latency is measured
from the intended send time, not from the moment it was written to a socket, so time spent
waiting for a free connection (or for the generator itself) counts as latency. This avoids
coordinated omission: a slow server cannot slow the arrival rate down and hide its queue.

The client keeps a pool of keep-alive connections (one request in flight per connection, no
pipelining). A request due while every connection is busy and the pool is at its limit waits
in a FIFO queue; such requests are counted (``queued``), as are sends later than
:data:`LATE_SEND_S` after their intended time (``late_sends``) and requests still queued when
the sending window closed (``unsent``). Every measured request is in the latency
percentiles: one that got no answer (transport error, timeout, never sent) with the time it
had waited when given up, a lower bound. Times come from :func:`time.perf_counter` (the event
loop's own clock may have only millisecond resolution). The dispatcher wakes at most once per
:data:`TICK_S` (1 ms) and sends everything due, so a send may trail its intended time by up to
a tick; that delay is part of the measured latency. Responses are parsed just enough (status line,
``Content-Length`` or chunked body, ``Connection: close``); the problem ``code`` of non-2xx
JSON answers is kept so that, e.g., ``409 sold_out`` and ``409 limit_exceeded`` are counted
apart. Everything runs from loop callbacks: no task per request, to keep the client cheap.

Closed loop (:class:`ClosedLoopClient`): a fixed number of keep-alive clients, each sending
its next request as soon as the previous answer arrives; after a warm-up, the requests sent
in the measured window give the latencies (from the moment of sending) and the answers
received in it the throughput. This is how the figures against other systems are taken
(their benchmarks are closed loops too); the open loop is the honest one for a fixed
arrival rate.

A request factory returns the raw bytes of request ``i``, or a :class:`Request` that also
names its kind (latency and statuses are then kept per kind as well) and carries a tag that
an answer hook receives back with the status and body (e.g. to remember booked appointments
or sold-out sessions while the run goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

LATE_SEND_S = 0.010
TICK_S = 0.001


class Request(NamedTuple):
    kind: str
    payload: bytes
    tag: Any = None


RequestFactory = Callable[[int], bytes | Request]
# (kind, tag, status, body) of every answer, warm-up included; status 0 = none came.
AnswerHook = Callable[[str, Any, int, bytes], None]
# Called with True when the measured window opens and False when it closes.
WindowHook = Callable[[bool], None]


@dataclass
class _Pending:
    intended: float
    measured: bool
    payload: bytes
    sent: float = 0.0
    kind: str = ""
    tag: Any = None


def _pending(intended: float, measured: bool, request: bytes | Request) -> _Pending:
    if isinstance(request, Request):
        return _Pending(intended, measured, request.payload, kind=request.kind, tag=request.tag)
    return _Pending(intended, measured, request)


@dataclass
class KindStats:
    """Latency and answers of one kind of request in a mixed run."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        return {
            "requests": len(latencies),
            "statuses": dict(sorted(self.statuses.items())),
            "codes": dict(sorted(self.codes.items())),
            "latency_ms": {
                q: round(percentile(latencies, v, presorted=True), 2)
                for q, v in (("p50", 50), ("p99", 99), ("max", 100))
            },
        }


@dataclass
class RunResult:
    """What one run observed in its measured window (open loop: `offered_rate` > 0;
    closed loop: `clients` > 0)."""

    offered_rate: float
    duration_s: float
    clients: int = 0
    kinds: dict[str, KindStats] = field(default_factory=dict)
    scheduled: int = 0
    completed: int = 0
    received_in_window: int = 0
    ok_in_window: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # (second of the measured window the request was due in, latency ms, status or 0)
    events: list[tuple[int, float, int]] = field(default_factory=list)
    window_start: float = 0.0
    warmup_statuses: Counter[str] = field(default_factory=Counter)
    warmup_unanswered: int = 0
    send_lag_ms: list[float] = field(default_factory=list)
    queued: int = 0
    late_sends: int = 0
    unsent: int = 0
    timeouts: int = 0
    transport_errors: int = 0
    connections_opened: int = 0
    client_cpu_s: float = 0.0
    wall_s: float = 0.0

    def record(self, intended: float, now: float, status: int, kind: str = "") -> None:
        """Latency of one measured request; status 0 = no answer (transport error, timeout,
        never sent), whose latency is the time it had waited when given up: a lower bound."""
        latency = (now - intended) * 1000
        self.latencies_ms.append(latency)
        self.events.append((int(intended - self.window_start), latency, status))
        if kind:
            stats = self.kinds.get(kind)
            if stats is None:
                stats = self.kinds[kind] = KindStats()
            stats.latencies_ms.append(latency)
            stats.statuses[str(status)] += 1

    def count_answer(
        self, window: tuple[float, float], request: _Pending, status: int, body: bytes, now: float
    ) -> None:
        """Books one answer: into the throughput when it arrived inside the window, into
        the latencies and statuses when its request was measured."""
        if window[0] <= now <= window[1]:
            self.received_in_window += 1
            if 200 <= status < 300:
                self.ok_in_window += 1
        if request.measured:
            self.completed += 1
            self.statuses[str(status)] += 1
            self.record(request.intended, now, status, request.kind)
            if status >= 300:
                code = f"{status} {_problem_code(body)}"
                self.codes[code] += 1
                if request.kind:
                    self.kinds[request.kind].codes[code] += 1
        else:
            self.warmup_statuses[str(status)] += 1

    @property
    def achieved_rate(self) -> float:
        return self.received_in_window / self.duration_s

    @property
    def success_rate(self) -> float:
        return self.ok_in_window / self.duration_s

    @property
    def failures(self) -> int:
        """Requests that got no usable answer: 5xx, transport errors, timeouts, unsent."""
        server_errors = sum(n for s, n in self.statuses.items() if s.startswith("5"))
        return server_errors + self.transport_errors + self.timeouts + self.unsent

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        lags = sorted(self.send_lag_ms)
        return {
            "offered_rate": self.offered_rate,
            **({"clients": self.clients} if self.clients else {}),
            "duration_s": self.duration_s,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "achieved_rate": round(self.achieved_rate, 1),
            "success_rate": round(self.success_rate, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "codes": dict(sorted(self.codes.items())),
            "latency_ms": {
                q: round(percentile(latencies, v, presorted=True), 2)
                for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
            },
            "send_lag_ms": {
                q: round(percentile(lags, v, presorted=True), 2)
                for q, v in (("p50", 50), ("p99", 99), ("max", 100))
            },
            "queued_for_connection": self.queued,
            "late_sends": self.late_sends,
            "unsent": self.unsent,
            "timeouts": self.timeouts,
            "transport_errors": self.transport_errors,
            "connections_opened": self.connections_opened,
            "warmup_statuses": dict(sorted(self.warmup_statuses.items())),
            "warmup_unanswered": self.warmup_unanswered,
            "client_cpu_percent": round(100 * self.client_cpu_s / self.wall_s, 1)
            if self.wall_s
            else 0.0,
            "per_second": self.timeline(),
            **(
                {"by_kind": {k: v.summary() for k, v in sorted(self.kinds.items())}}
                if self.kinds
                else {}
            ),
        }

    def timeline(self) -> list[dict[str, Any]]:
        """Per second of the measured window (by intended send time): answers, 2xx,
        p50/p99/max latency; shows e.g. the moment of release against the rest."""
        seconds: dict[int, list[tuple[float, int]]] = {}
        for second, latency, status in self.events:
            seconds.setdefault(second, []).append((latency, status))
        rows = []
        for second in sorted(seconds):
            latencies = sorted(latency for latency, _ in seconds[second])
            rows.append(
                {
                    "second": second,
                    "answered": sum(1 for _, status in seconds[second] if status),
                    "ok": sum(1 for _, status in seconds[second] if 200 <= status < 300),
                    "p50_ms": round(percentile(latencies, 50, presorted=True), 1),
                    "p99_ms": round(percentile(latencies, 99, presorted=True), 1),
                    "max_ms": round(latencies[-1], 1),
                }
            )
        return rows


def percentile(values: list[float], q: float, *, presorted: bool = False) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when there are no values."""
    if not values:
        return math.nan
    ordered = values if presorted else sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class _Owner(Protocol):
    def on_response(
        self, conn: _Connection, request: _Pending, status: int, body: bytes, close: bool
    ) -> None: ...

    def on_lost(self, conn: _Connection) -> None: ...


class _Connection(asyncio.Protocol):
    def __init__(self, client: _Owner) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: _Pending | None = None
        self.closed = False
        self._reset_parser()

    def _reset_parser(self) -> None:
        self.status = 0
        self.body_start = -1
        self.content_length = -1
        self.chunked = False
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: _Pending) -> None:
        assert self.transport is not None
        self.current = request
        request.sent = time.perf_counter()
        self.transport.write(request.payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.current is not None:
            body = self._parse()
            if body is None:
                return
            request, self.current = self.current, None
            status, close = self.status, self.close_after
            self._reset_parser()
            self.client.on_response(self, request, status, body, close)

    def _parse(self) -> bytes | None:
        """The complete body when the whole response is in the buffer, else None."""
        if self.body_start < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            self.status = int(head[0].split(" ", 2)[1])
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    self.content_length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self.chunked = True
                elif name == "connection" and value.strip().lower() == "close":
                    self.close_after = True
            self.body_start = end + 4
        if self.chunked:
            return self._parse_chunked()
        length = max(self.content_length, 0)
        if len(self.buffer) - self.body_start < length:
            return None
        body = bytes(self.buffer[self.body_start : self.body_start + length])
        del self.buffer[: self.body_start + length]
        return body

    def _parse_chunked(self) -> bytes | None:
        pos = self.body_start
        parts: list[bytes] = []
        while True:
            eol = self.buffer.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(self.buffer[pos:eol]).split(b";")[0], 16)
            if size == 0:
                end = self.buffer.find(b"\r\n\r\n", eol)
                if end < 0:
                    return None
                del self.buffer[: end + 4]
                return b"".join(parts)
            if len(self.buffer) < eol + 2 + size + 2:
                return None
            parts.append(bytes(self.buffer[eol + 2 : eol + 2 + size]))
            pos = eol + 2 + size + 2

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client.on_lost(self)


class OpenLoopClient:
    """Runs open-loop load against one host:port. Reuse it across runs of one server."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int = 256,
        drain_timeout_s: float = 10.0,
        on_answer: AnswerHook | None = None,
    ) -> None:
        self.on_answer = on_answer
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.drain_timeout_s = drain_timeout_s
        self.loop = asyncio.get_running_loop()
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.connecting = 0
        self.waiting: deque[_Pending] = deque()
        self.result: RunResult | None = None
        self.window = (0.0, 0.0)
        self.in_flight = 0
        self._drained: asyncio.Event | None = None

    # --- connection pool --------------------------------------------------------------

    def _dispatch(self, request: _Pending) -> None:
        if self.idle:
            conn = self.idle.pop()
            self.busy.add(conn)
            self._send(conn, request)
            return
        if request.measured and self.result is not None:
            self.result.queued += 1
        self.waiting.append(request)
        if len(self.busy) + len(self.idle) + self.connecting < self.max_connections:
            self.connecting += 1
            self.loop.create_task(self._open())

    def _send(self, conn: _Connection, request: _Pending) -> None:
        conn.send(request)
        if request.measured and self.result is not None:
            lag = request.sent - request.intended
            self.result.send_lag_ms.append(lag * 1000)
            if lag > LATE_SEND_S:
                self.result.late_sends += 1

    async def _open(self) -> None:
        try:
            _transport, conn = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError:
            self.connecting -= 1
            if self.waiting:
                request = self.waiting.popleft()
                self._finish_failed(request)
            return
        self.connecting -= 1
        if self.result is not None:
            self.result.connections_opened += 1
        self._release(conn)

    def _release(self, conn: _Connection) -> None:
        if conn.closed:
            return
        if self.waiting:
            self.busy.add(conn)
            self._send(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def on_response(
        self, conn: _Connection, request: _Pending, status: int, body: bytes, close: bool
    ) -> None:
        now = time.perf_counter()
        self.busy.discard(conn)
        if self.result is not None:
            self.result.count_answer(self.window, request, status, body, now)
        if self.on_answer is not None:
            self.on_answer(request.kind, request.tag, status, body)
        self.in_flight -= 1
        if close:
            assert conn.transport is not None
            conn.transport.close()
        else:
            self._release(conn)
        self._check_drained()

    def on_lost(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn.current is not None:
            request, conn.current = conn.current, None
            self._finish_failed(request)

    def _finish_failed(self, request: _Pending) -> None:
        if self.result is not None:
            if request.measured:
                self.result.transport_errors += 1
                self.result.record(request.intended, time.perf_counter(), 0, request.kind)
            else:
                self.result.warmup_unanswered += 1
        if self.on_answer is not None:
            self.on_answer(request.kind, request.tag, 0, b"")
        self.in_flight -= 1
        self._check_drained()

    def _check_drained(self) -> None:
        if self._drained is not None and self.in_flight <= 0:
            self._drained.set()

    def close_all(self) -> None:
        for conn in [*self.idle, *self.busy]:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
        self.busy.clear()

    # --- one run ------------------------------------------------------------------------

    async def run(
        self,
        factory: RequestFactory,
        *,
        rate: float,
        duration_s: float,
        warmup_s: float = 2.0,
        warmup_factory: RequestFactory | None = None,
        at_window: WindowHook | None = None,
    ) -> RunResult:
        """Offers `rate` requests/s for `warmup_s` (not recorded) and then `duration_s`.

        `factory(i)` returns request `i`; `warmup_factory`, when given, builds the warm-up
        requests instead (e.g. reads before a run that must start from untouched
        inventory). `at_window` is called as the first measured request is due and after
        the last one was.
        """
        result = RunResult(offered_rate=rate, duration_s=duration_s)
        self.result = result
        self._drained = None
        warm_n = round(rate * warmup_s)
        total = warm_n + round(rate * duration_s)
        cpu0 = _cpu_seconds()
        wall0 = time.perf_counter()
        t0 = time.perf_counter() + 0.05
        start = t0 + warm_n / rate
        self.window = (start, start + duration_s)
        result.window_start = start
        i = 0
        while i < total:
            now = time.perf_counter()
            while i < total and t0 + i / rate <= now:
                measured = i >= warm_n
                if i == warm_n and at_window is not None:
                    at_window(True)
                build = factory if measured or warmup_factory is None else warmup_factory
                request = build(i)
                self.in_flight += 1
                if measured:
                    result.scheduled += 1
                self._dispatch(_pending(t0 + i / rate, measured, request))
                i += 1
            if i < total:
                # Never sleep less than a tick: a shorter timer would spin the CPU the server
                # needs. Latency still counts from the intended time, lateness included.
                delay = t0 + i / rate - time.perf_counter()
                await asyncio.sleep(max(delay, TICK_S))
        if at_window is not None:
            at_window(False)
        # Requests still waiting for a connection were never sent in time: drop them.
        abandoned = time.perf_counter()
        while self.waiting:
            waiting = self.waiting.popleft()
            self.in_flight -= 1
            if waiting.measured:
                result.unsent += 1
                result.record(waiting.intended, abandoned, 0, waiting.kind)
        self._drained = asyncio.Event()
        self._check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), self.drain_timeout_s)
        if self.in_flight > 0:
            # Still unanswered after the drain timeout: count them, drop their connections.
            outstanding = [c.current for c in self.busy if c.current is not None]
            result.timeouts = sum(1 for r in outstanding if r.measured)
            result.warmup_unanswered += sum(1 for r in outstanding if not r.measured)
            abandoned = time.perf_counter()
            for lost in outstanding:
                if lost.measured:
                    result.record(lost.intended, abandoned, 0, lost.kind)
            for conn in list(self.busy):
                conn.current = None
                if conn.transport is not None:
                    conn.transport.close()
            self.in_flight = 0
        result.wall_s = time.perf_counter() - wall0
        result.client_cpu_s = _cpu_seconds() - cpu0
        self.result = None
        return result


class ClosedLoopClient:
    """`clients` keep-alive connections, each sending its next request as soon as the
    previous answer arrived. Requests sent inside the measured window are measured (latency
    from the moment of sending); answers received inside it make the throughput."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clients: int = 32,
        drain_timeout_s: float = 10.0,
        on_answer: AnswerHook | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.clients = clients
        self.drain_timeout_s = drain_timeout_s
        self.on_answer = on_answer
        self.loop = asyncio.get_running_loop()
        self.connections: set[_Connection] = set()
        self.factory: RequestFactory = lambda _i: b""
        self.result = RunResult(offered_rate=0.0, duration_s=0.0, clients=clients)
        self.window = (math.inf, math.inf)
        self.stopping = False
        self.sent = 0
        self.in_flight = 0
        self._drained: asyncio.Event | None = None

    def _next(self, conn: _Connection) -> None:
        if self.stopping or conn.closed:
            self._check_drained()
            return
        request = self.factory(self.sent)
        self.sent += 1
        now = time.perf_counter()
        measured = self.window[0] <= now < self.window[1]
        pending = _pending(now, measured, request)
        if measured:
            self.result.scheduled += 1
        self.in_flight += 1
        conn.send(pending)

    async def _open(self) -> None:
        """Opens one client's connection and sends its first request; retried while the
        run goes on, so a dropped connection is replaced."""
        while not self.stopping:
            try:
                _transport, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.host, self.port
                )
            except OSError:
                self.result.transport_errors += 1
                await asyncio.sleep(0.05)
                continue
            self.result.connections_opened += 1
            self.connections.add(conn)
            self._next(conn)
            return

    def on_response(
        self, conn: _Connection, request: _Pending, status: int, body: bytes, close: bool
    ) -> None:
        now = time.perf_counter()
        self.result.count_answer(self.window, request, status, body, now)
        if self.on_answer is not None:
            self.on_answer(request.kind, request.tag, status, body)
        self.in_flight -= 1
        if close:
            assert conn.transport is not None
            conn.transport.close()
            return  # on_lost opens the replacement
        self._next(conn)

    def on_lost(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if conn.current is not None:
            request, conn.current = conn.current, None
            self.in_flight -= 1
            if request.measured:
                self.result.transport_errors += 1
                self.result.record(request.intended, time.perf_counter(), 0, request.kind)
            else:
                self.result.warmup_unanswered += 1
            if self.on_answer is not None:
                self.on_answer(request.kind, request.tag, 0, b"")
        if self.stopping:
            self._check_drained()
        else:
            self.loop.create_task(self._open())

    def _check_drained(self) -> None:
        if self._drained is not None and self.in_flight <= 0:
            self._drained.set()

    async def run(
        self,
        factory: RequestFactory,
        *,
        duration_s: float,
        warmup_s: float = 2.0,
        at_window: WindowHook | None = None,
    ) -> RunResult:
        """Runs the clients for `warmup_s` (not recorded) and then `duration_s`, stops them
        and waits for the answers still owed."""
        result = self.result = RunResult(
            offered_rate=0.0, duration_s=duration_s, clients=self.clients
        )
        self.factory = factory
        cpu0 = _cpu_seconds()
        wall0 = time.perf_counter()
        await asyncio.gather(*(self._open() for _ in range(self.clients)))
        await asyncio.sleep(warmup_s)
        start = time.perf_counter()
        self.window = (start, start + duration_s)
        result.window_start = start
        if at_window is not None:
            at_window(True)
        await asyncio.sleep(duration_s)
        if at_window is not None:
            at_window(False)
        self.stopping = True
        self._drained = asyncio.Event()
        self._check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), self.drain_timeout_s)
        abandoned = time.perf_counter()
        for conn in list(self.connections):
            request, conn.current = conn.current, None
            if request is not None:
                if request.measured:
                    result.timeouts += 1
                    result.record(request.intended, abandoned, 0, request.kind)
                else:
                    result.warmup_unanswered += 1
            if conn.transport is not None:
                conn.transport.close()
        self.connections.clear()
        self.in_flight = 0
        result.wall_s = time.perf_counter() - wall0
        result.client_cpu_s = _cpu_seconds() - cpu0
        return result


def _problem_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return "-"
    return str(data.get("code", "-")) if isinstance(data, dict) else "-"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_request(
    method: str,
    path: str,
    *,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """Raw bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")
