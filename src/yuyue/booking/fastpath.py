"""The booking POST in front of the framework.

At the release second most booking attempts are for a session already known to be full.
This ASGI layer answers exactly those, with the same pre-rendered problem document the
route would send, before FastAPI routes, resolves dependencies and validates the body.
It answers only when it knows everything the route would check: the caller's API key is
in the caller cache, the body is a well-formed booking request, the Idempotency-Key (if
any) cannot have a stored answer, and the sold-out memory holds an entry it may serve.

A request that may book, from a caller in the cache with a body the route would accept,
is booked here too, by the route's own `book_request`; its refusals are answered by the
application's exception handlers, so the answer is the route's byte for byte. Anything
else (an unknown key, a body with a mistake) goes through the router as usual.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yuyue.booking.api import book_request, check_idempotency_key, scope_of, sold_out_body
from yuyue.booking.demand import SOLD_OUT
from yuyue.booking.schemas import AppointmentCreate
from yuyue.kit import crypto, i18n
from yuyue.kit.observability import REFUSALS
from yuyue.operations import service as operations_service
from yuyue.scheduling.rules import pools_for_channel
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext
from yuyue.web.problems import PROBLEM_JSON

PATH = "/api/v1/appointments"
_FIELDS = {"patient_id", "session_id", "slot_id"}
_HEADERS = [(b"content-type", PROBLEM_JSON.encode())]


Handler = Callable[[Request, Any], Response | Awaitable[Response]]
ExceptionHandlers = Mapping[Any, Handler]


class SoldOutFastPath:
    def __init__(
        self, app: ASGIApp, ctx: AppContext, handlers: ExceptionHandlers | None = None
    ) -> None:
        self.app = app
        self.ctx = ctx
        # The application's exception handlers (a live view): a booking answered here
        # is refused with exactly the problem document the route's refusal would get.
        self.handlers: ExceptionHandlers = handlers if handlers is not None else {}

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
        # The caller is looked up once (the key's digest is an HMAC) for both paths below.
        headers = dict(scope["headers"])
        actor = self._actor(headers)
        answer = await self._answer(headers, actor, body) if actor is not None else None
        if answer is not None:
            REFUSALS.labels("sold_out").inc()
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

        response = (
            await self._book(scope, headers, actor, body, replay) if actor is not None else None
        )
        if response is not None:
            await response(scope, replay, send)
            return
        await self.app(scope, replay, send)

    async def _book(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        actor: Actor,
        body: bytes,
        receive: Receive,
    ) -> Response | None:
        """Books a well-formed request from a known API key without the router, dependency
        resolution and a second validation: the same `book_request` the route calls, and
        its refusals answered by the application's own handlers. Anything else (an unknown
        caller, a body the route would refuse) goes through the router as usual."""
        try:
            request = AppointmentCreate.model_validate_json(body)
        except ValidationError:
            return None
        raw_key = headers.get(b"idempotency-key")
        locale = i18n.negotiate(headers.get(b"accept-language", b"").decode("latin-1") or None)
        try:
            return await book_request(
                self.ctx,
                actor=actor,
                body=request,
                key=check_idempotency_key(raw_key.decode("latin-1"))
                if raw_key is not None
                else None,
                locale=locale,
                path=PATH,
            )
        except Exception as error:
            handler = self._handler(error)
            if handler is None:
                raise
            answer = handler(Request(scope, receive), error)
            return await answer if inspect.isawaitable(answer) else answer

    def _handler(self, error: Exception) -> Handler | None:
        for kind in type(error).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler
        return None

    def _actor(self, headers: dict[bytes, bytes]) -> Actor | None:
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith(crypto.API_KEY_PREFIX):
            return None
        actor = self.ctx.actors.get(crypto.api_key_digest(token.strip()))
        return actor if isinstance(actor, Actor) else None

    async def _answer(self, headers: dict[bytes, bytes], actor: Actor, body: bytes) -> bytes | None:
        request = _booking_request(body)
        if request is None:
            return None
        known, notice = operations_service.cached(actor.hospital_id)
        if not known or notice is not None:
            return None  # the route refuses during maintenance, and asks if unsure
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
        # Counted like the route's refusals (booking/demand.py): a dict increment.
        self.ctx.demand.count(actor.hospital_id, request[0], actor.channel, SOLD_OUT)
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
