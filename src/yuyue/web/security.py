"""Security headers on every answer, and HEAD answered like GET.

It is the outermost layer, so the answers given in front of the router (the booking fast
path, cached availability) carry the same headers as pages and API answers. The header
block is built once; adding it costs a list concatenation per response.

The content security policy allows our own scripts only (no inline script), styles from
our own files plus `style` attributes (htmx adds its indicator style), and no framing
anywhere (clickjacking on the staff pages). `/docs` loads Swagger UI from its CDN and runs
an inline bootstrap script, so it gets a policy that allows exactly that. HSTS is sent only
on HTTPS: on plain HTTP it means nothing, and a development server must stay reachable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'"
)
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
DOCS_PATHS = ("/docs", "/redoc")


def _headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


ORDINARY = _headers(CONTENT_SECURITY_POLICY)
DOCS = _headers(DOCS_CONTENT_SECURITY_POLICY)
STRICT_TRANSPORT = (b"strict-transport-security", HSTS.encode())


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        added = DOCS if path.startswith(DOCS_PATHS) else ORDINARY
        if scope.get("scheme") == "https":
            added = [*added, STRICT_TRANSPORT]
        head = scope["method"] == "HEAD"
        if head:
            # Routes declare GET; HEAD is GET without the body (RFC 9110 §9.3.2).
            scope = dict(scope, method="GET")

        finished = False

        async def send_with_headers(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [item for item in added if item[0] not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            elif head and message["type"] == "http.response.body":
                # The first body message ends a HEAD answer; a stream (live updates) stops
                # when the client, having its answer, goes away.
                if finished:
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_with_headers)
