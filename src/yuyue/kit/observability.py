"""What an operator watches: a request id on every request and log line, Prometheus
metrics, and JSON logs that never carry an identity number, a phone or a token.

The request id comes from the edge (`X-Request-ID` set by nginx, checked for shape) or is
made here, is returned in the answer's `X-Request-ID`, and rides a context variable into
every log line written while the request is served.

Metrics use the maintained `prometheus_client`. Route labels are route templates
(`/api/v1/appointments/{appointment_id}`), never raw paths, so the number of series stays
bounded; what no route answered is `unmatched`. The two answers given in front of the
router (the booking POST and cached availability) are labelled with the routes they stand
for. With several serving processes set `PROMETHEUS_MULTIPROC_DIR` (see
docs/operations.md): the client then keeps each process's values in files there and
`/metrics` sums them."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from yuyue.kit.ids import new_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# --- metrics ------------------------------------------------------------------------------

REQUESTS = Counter("yuyue_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "yuyue_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BOOKINGS = Counter("yuyue_bookings", "Appointments booked or held", ["channel"])
REFUSALS = Counter("yuyue_refusals", "Requests refused with a problem answer", ["code"])
HOLDS_OPEN = Gauge("yuyue_holds_open", "Places held for payment", multiprocess_mode="max")
HOLDS_OVERDUE = Gauge(
    "yuyue_holds_overdue",
    "Holds past their deadline that the sweep has not expired yet",
    multiprocess_mode="max",
)
OUTBOX_BACKLOG = Gauge(
    "yuyue_outbox_backlog",
    "Messages waiting for delivery at the last pass",
    multiprocess_mode="max",
)
OUTBOX_FAILURES = Counter("yuyue_outbox_failures", "Message deliveries that failed")
OUTBOX_SENT = Counter("yuyue_outbox_sent", "Message deliveries that succeeded")
QUEUE_LENGTH = Gauge(
    "yuyue_job_queue_length", "Background jobs waiting in the queue", multiprocess_mode="max"
)
POOL_IN_USE = Gauge(
    "yuyue_db_pool_in_use",
    "Database connections checked out of this process's pool",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "yuyue_db_pool_size", "Database connections this process may hold", multiprocess_mode="livesum"
)

_FRONT_ROUTES = {
    ("POST", "/api/v1/appointments"): "/api/v1/appointments",
    ("GET", "/api/v1/sessions"): "/api/v1/sessions",
}
_SLOTS = re.compile(r"/api/v1/sessions/[0-9a-fA-F-]{36}/slots")


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    template: object = getattr(route, "path", None)
    if isinstance(template, str):
        # A mounted app (static files, the simulators) is labelled by its mount point.
        return template or "/"
    front = _FRONT_ROUTES.get((scope["method"], scope["path"]))
    if front is not None:
        return front
    if scope["method"] == "GET" and _SLOTS.fullmatch(scope["path"]):
        return "/api/v1/sessions/{session_id}/slots"
    return "unmatched"


def metrics_answer() -> tuple[bytes, str]:
    """The exposition text: this process's registry, or every process's in multiprocess
    mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID_SHAPE.fullmatch(text):
                return text
            break
    return new_id().hex


class RequestObservation:
    """Gives each request its id and counts and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_request_id(scope)
        token = request_id.set(rid)
        header = (REQUEST_ID_HEADER, rid.encode("latin-1"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            method = scope["method"]
            route = route_label(scope)
            latency = _latency.get((method, route))
            if latency is None:
                latency = _latency[(method, route)] = LATENCY.labels(method, route)
            latency.observe(time.perf_counter() - started)
            answered = _answered.get((method, route, status))
            if answered is None:
                answered = _answered[(method, route, status)] = REQUESTS.labels(
                    method, route, str(status)
                )
            answered.inc()
            request_id.reset(token)


# The metrics' children per label values: `labels()` takes a lock and builds a key on every
# call, which at thousands of requests a second is worth keeping. The label values are
# bounded (route templates, not paths), so these stay small.
_latency: dict[tuple[str, str], Any] = {}
_answered: dict[tuple[str, str, int], Any] = {}


log = logging.getLogger(__name__)
# Set by the job engine when it runs in this process: how many jobs wait in its queue.
job_queue_probe: Callable[[], int] | None = None


def job_queue_length() -> int | None:
    probe = job_queue_probe
    if probe is None:
        return None
    try:
        return probe()
    except Exception:
        log.warning("job queue length unavailable", exc_info=True)
        return None


def log_not_ready(what: str) -> None:
    log.warning("%s check failed", what, exc_info=True)


# --- logs ---------------------------------------------------------------------------------

# What must never reach a log line whole: resident identity numbers, mainland mobile
# numbers, bearer tokens and API keys, and our signed tokens (base64url.base64url).
_REDACTIONS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), lambda m: m.group(1) + "***"),
    (re.compile(r"\byk_[A-Za-z0-9_-]{8,}"), lambda m: m.group(0)[:6] + "***"),
    (
        re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])"),
        lambda m: "***token***",
    ),
    (
        re.compile(r"(?<!\d)\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)"),
        lambda m: m.group(0)[:3] + "*" * 11 + m.group(0)[-4:],
    ),
    (re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"), lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:]),
)


def redact(text: str) -> str:
    for pattern, replace in _REDACTIONS:
        text = pattern.sub(replace, text)
    return text


_plain_record = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamps each record with the request being served when it was made, so a handler
    that formats later (a queue, a buffer) still knows it."""
    record = _plain_record(*args, **kwargs)
    record.request_id = request_id.get()
    return record


if getattr(_plain_record, "__name__", "") != _record_with_request_id.__name__:
    logging.setLogRecordFactory(_record_with_request_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, and the
    exception when there is one; everything passes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def logging_config(*, json_logs: bool, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for `yuyue serve` (handed to uvicorn, which applies it
    in every serving process) and `yuyue worker`: one handler on the root logger, uvicorn's
    own loggers passing through it."""
    formatter: dict[str, Any] = (
        {"()": "yuyue.kit.observability.JsonFormatter"}
        if json_logs
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "filters": {"redact": {"()": "yuyue.kit.observability.RedactingFilter"}},
        "handlers": {
            "main": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": [] if json_logs else ["redact"],
            }
        },
        "root": {"handlers": ["main"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


class RedactingFilter(logging.Filter):
    """Masks identity numbers, phones and tokens in plain-text log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
