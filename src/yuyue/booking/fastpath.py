"""Sold-out answers in front of the framework.

At the release second most booking attempts are for a session already known to be full.
This ASGI layer answers exactly those, with the same pre-rendered problem document the
route would send, before FastAPI routes, resolves dependencies and validates the body.
It answers only when it knows everything the route would check: the caller's API key is
in the caller cache, the body is a well-formed booking request, the Idempotency-Key (if
any) cannot have a stored answer, and the sold-out memory holds an entry it may serve.
Anything else, including every request that could book, passes through untouched.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yuyue.booking.api import check_idempotency_key, scope_of, sold_out_body
from yuyue.kit import crypto, i18n
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext
from yuyue.web.problems import PROBLEM_JSON

PATH = "/api/v1/appointments"
_FIELDS = {"patient_id", "session_id", "slot_id"}
_HEADERS = [(b"content-type", PROBLEM_JSON.encode())]


class SoldOutFastPath:
    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        answer = await self._answer(scope, body)
        if answer is not None:
            await send({"type": "http.response.start", "status": 409, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": answer})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _answer(self, scope: Scope, body: bytes) -> bytes | None:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(crypto.API_KEY_PREFIX):
            return None
        actor = self.ctx.actors.get(crypto.api_key_digest(token.strip()))
        if not isinstance(actor, Actor):
            return None
        request = _booking_request(body)
        if request is None:
            return None
        cache_key = (request[0], pools_for_channel(actor.channel), request[1])
        entry = self.ctx.sold_out.peek(cache_key)
        if entry is None:
            return None
        # Last, since with several processes it asks Redis: only refusals pay for it.
        raw_key = headers.get(b"idempotency-key")
        if raw_key is not None:
            key = check_idempotency_key(raw_key.decode("latin-1"), refuse=False)
            if key is None or await self.ctx.known_keys.may_have_answer(scope_of(actor), key):
                return None
            # A place may have come back while Redis answered.
            entry = self.ctx.sold_out.peek(cache_key)
            if entry is None:
                return None
        locale = i18n.negotiate(headers.get(b"accept-language", b"").decode("latin-1") or None)
        return sold_out_body(entry, locale, PATH)


def _booking_request(body: bytes) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """(session, slot) of a body the route would accept as a booking request, else None."""
    try:
        data: Any = json.loads(body)
        if not isinstance(data, dict) or not set(data) <= _FIELDS:
            return None
        uuid.UUID(data["patient_id"])
        session_id = uuid.UUID(data["session_id"])
        slot = data.get("slot_id")
        return session_id, uuid.UUID(slot) if slot is not None else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
