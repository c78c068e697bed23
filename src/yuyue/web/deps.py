"""Request dependencies: the app context, the caller and the caller's locale."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from yuyue.kit import crypto, i18n
from yuyue.kit.errors import Forbidden, Unauthorized
from yuyue.scheduling.enums import Channel
from yuyue.staff import access as staff_access
from yuyue.staff import service as staff_service
from yuyue.staff.rules import Actor, ActorKind
from yuyue.staff.service import ReadSource
from yuyue.web import access
from yuyue.web.context import AppContext

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    description="A channel API key (`yk_…`, decides the channel and its pool) or a staff token "
    "from `POST /api/v1/auth/token`.",
)


# Dependencies are `async def`: FastAPI runs plain `def` ones in a worker thread, a
# thread hop per request on the booking hot path.
async def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(context)]


CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _caller(
    ctx: AppContext, credentials: HTTPAuthorizationCredentials | None, *, allow_limited: bool
) -> Actor:
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    token = credentials.credentials.strip()
    if token.startswith(crypto.API_KEY_PREFIX):
        digest = crypto.api_key_digest(token)
        cached = ctx.actors.get(digest)
        if isinstance(cached, Actor):
            return cached
        async with ctx.db.read() as session:
            actor = await staff_service.channel_actor(session, key=token)
        ctx.actors.put(digest, actor)
        return actor
    return await staff_access.authenticate(
        ctx.db,
        token=token,
        signer=ctx.staff_signer,
        now=ctx.clock.now(),
        allow_limited=allow_limited,
    )


async def current_actor(request: Request, ctx: CtxDep, credentials: CredentialsDep) -> Actor:
    # The door (`authorize`) has usually found the caller already; a token is checked once.
    found = getattr(request.state, "actor", None)
    if isinstance(found, Actor):
        staff_access.refuse_limited(found)
        return found
    return await _caller(ctx, credentials, allow_limited=False)


ActorDep = Annotated[Actor, Depends(current_actor)]


def caller_kind(actor: Actor) -> access.Caller | None:
    if actor.kind is not ActorKind.CHANNEL:
        return None
    if actor.channel is Channel.KIOSK:
        return access.Caller.KIOSK_KEY
    return access.Caller.CHANNEL_KEY


def _bearer_of(request: Request) -> HTTPAuthorizationCredentials | None:
    # Read here rather than through `bearer`: as a dependency it would mark every route,
    # the public ones too, as needing a bearer in the OpenAPI document.
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


async def authorize(request: Request, ctx: CtxDep) -> None:
    """The API's door: the declared table (`web.access`) decides who may call the route,
    before its path, query and body are read, so a caller it refuses learns nothing about
    what exists or what a valid request looks like. A route without a row is refused.
    Routes and services keep their own finer checks (a doctor's own sessions, the
    password change a new account must make first)."""
    route = request.scope.get("route")
    row = _ROWS.get((request.method, getattr(route, "path", "")))
    if row is None:
        log.error("no row in yuyue.web.access for %s %s", request.method, request.url.path)
        raise Forbidden()
    if row.public:
        return
    # A staff member who must first change the password is refused by the route itself,
    # with that reason, if the table lets their role through.
    actor = await _caller(ctx, _bearer_of(request), allow_limited=True)
    request.state.actor = actor
    roles = actor.roles if actor.kind is ActorKind.STAFF else frozenset()
    if not row.admits(caller=caller_kind(actor), roles=roles):
        raise Forbidden()


_ROWS = access.by_route()


async def locale(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


LocaleDep = Annotated[str, Depends(locale)]


def read_source(request: Request) -> ReadSource:
    """Where a read of patient data comes from, for the audit trail: the route as declared
    (method and path template, so no id or number from the address is copied) and the
    client's address (the proxy's, unless the server trusts its forwarded header)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return ReadSource(
        route=f"{request.method} {path}", address=request.client.host if request.client else ""
    )


async def _read_source(request: Request) -> ReadSource:
    return read_source(request)


ReadSourceDep = Annotated[ReadSource, Depends(_read_source)]
