"""A signed-in browser over ASGI: sign in with the code the outbox carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import World
from yuyue.notifications.enums import MessageKind
from yuyue.notifications.models import OutboxMessage
from yuyue.web.context import AppContext

HOLDER_PHONE = "13912345678"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Browser:
    http: httpx.AsyncClient
    csrf: str = ""

    async def page(self, path: str, **kwargs: object) -> httpx.Response:
        response = await self.http.get(path, **kwargs)  # type: ignore[arg-type]
        found = CSRF.search(response.text)
        if found and found.group(1):
            self.csrf = found.group(1)
        return response

    async def submit(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(path, data={"csrf": self.csrf, **(data or {})})


async def latest_code(ctx: AppContext) -> str:
    async with ctx.db.read() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.kind == MessageKind.SIGN_IN_CODE)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(1)
        )
    assert message is not None
    return ctx.cipher.decrypt(message.payload["code_cipher"])


async def sign_in(browser: Browser, ctx: AppContext, phone: str = HOLDER_PHONE) -> None:
    sent = await browser.http.post("/signin/code", data={"phone": phone, "next": "/"})
    assert sent.status_code == 200, sent.text
    signed = await browser.http.post(
        "/signin", data={"phone": phone, "code": await latest_code(ctx), "next": "/"}
    )
    assert signed.status_code == 303, signed.text
    await browser.page("/")
    assert browser.csrf


@pytest_asyncio.fixture
async def portal(app: FastAPI, ctx: AppContext, world: World) -> AsyncIterator[Browser]:
    """An anonymous browser on the world's hospital."""
    ctx.settings.hospital_code = world.hospital.code
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Browser(http)


@pytest_asyncio.fixture
async def signed_in(portal: Browser, ctx: AppContext) -> Browser:
    await sign_in(portal, ctx)
    return portal
