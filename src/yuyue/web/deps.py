"""Request dependencies: the app context, the caller and the caller's locale."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from yuyue.kit import crypto, i18n
from yuyue.kit.errors import Unauthorized
from yuyue.staff import access as staff_access
from yuyue.staff import service as staff_service
from yuyue.staff.rules import Actor
from yuyue.web.context import AppContext

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


async def current_actor(
    ctx: CtxDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
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
        ctx.db, token=token, signer=ctx.staff_signer, now=ctx.clock.now()
    )


ActorDep = Annotated[Actor, Depends(current_actor)]


async def locale(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


LocaleDep = Annotated[str, Depends(locale)]
