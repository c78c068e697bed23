"""Every route of the app, API and pages alike, called by every caller: nobody, a channel
key, a kiosk key, a signed-in patient and each staff role. The declared table
(`yuyue.web.access`) says who may; the test fails when a route has no row, a row has no route,
an admitted caller is refused, or a refused caller is not refused the way its kind of route
refuses (401/403 problem+json on the API; the sign-in redirect or the 403 page on pages).
A refused call changes nothing.

Path parameters are random ids (or a valid word where the path takes one), so an admitted
caller usually gets 404 or 422: that is past authorization, which is what counts here.
Authorization is decided before existence and validation, so a refused caller never learns
whether an id exists or what a valid body looks like.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text
from starlette.routing import Mount

from tests import factories as f
from tests.conftest import NOW, PG_URL, SECRET, DatabaseTemplate, World, build_world
from tests.helpers import row_counts
from tests.portal.conftest import Browser, sign_in
from yuyue.config import Settings
from yuyue.kit.clock import FixedClock
from yuyue.kit.db import Database
from yuyue.models import Base
from yuyue.scheduling.enums import Channel
from yuyue.staff.enums import Role
from yuyue.web import access
from yuyue.web.access import Caller, RouteAccess
from yuyue.web.app import create_app
from yuyue.web.context import AppContext

# Mounted apps are not routes of ours: static files are public by design.
NOT_ROUTES = {"/static"}
# Values for path parameters that are words, not ids: one the route accepts, so an admitted
# caller reaches the route's own work.
PATH_WORDS: dict[tuple[str, str], str] = {
    ("/waitlist/{entry_id}/{action}", "action"): "decline",
    ("/doctor/sessions/{session_id}/{action}", "action"): "call-next",
    ("/staff/accounts/{user_id}/{action}", "action"): "disable",
    ("/reports/{name}", "name"): "bookings-by-channel",
    ("/api/v1/reports/{name}", "name"): "bookings-by-channel",
}
# Routes that end the caller's own sign-in: those callers sign in again afterwards.
STAFF_NAMES = [role.value for role in Role]
SIGNS_OUT: dict[tuple[str, str], list[str]] = {
    ("POST", "/api/v1/auth/sign-out"): STAFF_NAMES,
    ("POST", "/staff/signout"): STAFF_NAMES,
    ("POST", "/signout"): ["patient"],
}
# A new patient sign-in needs a phone that has not just been sent a code.
PHONES = iter(f"1391234{n:04d}" for n in range(5678, 9999))
# Where a refused visitor is sent (signing out also lands on a sign-in page, without `next`).
SIGN_IN_PAGES = ("/signin?next=", "/staff/signin?next=", "/kiosk/setup")
SIGN_IN_CSRF = "sign-in-form-token-0123456789"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


# --- the routes ---------------------------------------------------------------------------------


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, HEAD left to GET (web.security)."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        assert path is not None
        if isinstance(context.original_route, Mount):
            assert path in NOT_ROUTES, f"{path} is mounted: add it to NOT_ROUTES or route it"
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append((method, path))
    return found


ROUTES = app_routes(create_app(Settings(secret_key=SECRET), run_worker=False))


def test_every_route_has_a_row_and_every_row_a_route() -> None:
    declared = [row.key for row in access.ACCESS]
    twice = sorted({key for key in declared if declared.count(key) > 1})
    missing = [key for key in ROUTES if key not in set(declared)]
    unrouted = [key for key in declared if key not in set(ROUTES)]
    problems = [f"declared twice: {m} {p}" for m, p in twice]
    problems += [
        f'no row for {m} {p}: add route("{m} {p}", ...) to yuyue/web/access.py' for m, p in missing
    ]
    problems += [f"a row for {m} {p}, which the app does not serve" for m, p in unrouted]
    assert not problems, "\n".join(problems)


def test_docs_show_the_table() -> None:
    document = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    assert access.rendered_in(document) == access.markdown(), (
        "docs/api.md shows another table: run python -m yuyue.web.access --write docs/api.md"
    )


def test_a_row_admits_administrators_with_any_role() -> None:
    row = access.route("GET /x", Role.NURSE)
    assert row.admits(roles={Role.ADMIN}) and row.admits(roles={Role.NURSE})
    assert not row.admits(roles={Role.DOCTOR}) and not row.admits(caller=Caller.PATIENT)
    public = access.route("GET /y", *access.ANYONE)
    assert public.admits() and public.admits(caller=Caller.KIOSK_KEY)


# --- the callers --------------------------------------------------------------------------------


@dataclass
class Who:
    """One caller: what it sends (a bearer, cookies, a form token) and who it is."""

    name: str
    caller: Caller | None = None
    role: Role | None = None
    bearer: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def admitted(self, row: RouteAccess) -> bool:
        return row.admits(caller=self.caller, roles={self.role} if self.role else ())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def text(self) -> str:
        return self.body[:300].decode("utf-8", "replace")


@dataclass
class Hospital:
    app: FastAPI
    ctx: AppContext
    world: World
    callers: dict[str, Who]
    kiosk_key: str


WHO_NAMES = ["nobody", "channel_key", "kiosk_key", "patient", *(role.value for role in Role)]


async def _staff(http: httpx.AsyncClient, hospital: Hospital, role: Role) -> Who:
    async with hospital.ctx.db.session_scope() as s:
        username = await f.make_staff(
            s,
            hospital=hospital.world.hospital,
            roles=[role],
            now=NOW,
            doctor=hospital.world.doctor if role is Role.DOCTOR else None,
        )
    issued = await http.post(
        "/api/v1/auth/token",
        json={
            "hospital": hospital.world.hospital.code,
            "username": username,
            "password": "secret-pass",
        },
    )
    assert issued.status_code == 200, issued.text
    page = await http.get("/staff/signin")
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found is not None
    signed = await http.post(
        "/staff/signin",
        data={"csrf": found.group(1), "username": username, "password": "secret-pass"},
    )
    assert signed.status_code == 303, signed.text
    cookie = http.cookies["yuyue_staff"]
    http.cookies.clear()
    return Who(
        role.value,
        role=role,
        bearer=issued.json()["access_token"],
        cookies={"yuyue_staff": cookie},
        csrf=hospital.ctx.cipher.blind_index(cookie, purpose="floor-csrf")[:32],
    )


async def _patient(http: httpx.AsyncClient, hospital: Hospital) -> Who:
    browser = Browser(http)
    await sign_in(browser, hospital.ctx, next(PHONES))
    cookie = http.cookies["yuyue_session"]
    http.cookies.clear()
    return Who(
        "patient", caller=Caller.PATIENT, cookies={"yuyue_session": cookie}, csrf=browser.csrf
    )


async def make_caller(hospital: Hospital, name: str) -> Who:
    if name == "nobody":
        return Who("nobody")
    if name == "channel_key":
        return Who(name, caller=Caller.CHANNEL_KEY, bearer=hospital.world.api_key)
    if name == "kiosk_key":
        key = hospital.kiosk_key
        return Who(
            name,
            caller=Caller.KIOSK_KEY,
            bearer=key,
            cookies={"yuyue_kiosk": key},
            csrf=hospital.ctx.cipher.blind_index(key, purpose="floor-csrf")[:32],
        )
    transport = httpx.ASGITransport(app=hospital.app, client=("198.51.100.20", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        if name == "patient":
            return await _patient(http, hospital)
        return await _staff(http, hospital, Role(name))


@pytest_asyncio.fixture(scope="module")
async def hospital(
    database_template: DatabaseTemplate, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hospital]:
    """One hospital for every route: its state is changed only by admitted calls on random
    ids (which find nothing), so the routes do not disturb each other."""
    if database_template.kind == "sqlite":
        path = tmp_path_factory.mktemp("access") / "access.db"
        shutil.copy(database_template.location, path)
        db = Database(f"sqlite+aiosqlite:///{path}")
    else:
        db = Database(PG_URL, connect_args=database_template.connect_args, pool_size=15)
    settings = Settings(database_url=db.url, secret_key=SECRET, worker_in_process=False)
    app = create_app(settings, clock=FixedClock(NOW), database=db, run_worker=False)
    try:
        async with app.router.lifespan_context(app):
            ctx: AppContext = app.state.ctx
            world = await build_world(ctx)
            ctx.settings.hospital_code = world.hospital.code
            async with ctx.db.session_scope() as s:
                kiosk_key = await f.make_api_key(
                    s, hospital=world.hospital, channel=Channel.KIOSK, now=NOW
                )
            made = Hospital(app, ctx, world, {}, kiosk_key)
            for name in WHO_NAMES:
                made.callers[name] = await make_caller(made, name)
            yield made
    finally:
        if database_template.kind == "postgresql":
            async with db.session_scope() as session:
                for table in reversed(Base.metadata.sorted_tables):
                    await session.execute(text(f'DELETE FROM "{table.name}"'))
        await db.dispose()


# --- calling a route ----------------------------------------------------------------------------


def fill(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        return PATH_WORDS.get((path, match.group(1)), str(uuid.uuid4()))

    return re.sub(r"{([^}:]+)(?::[^}]*)?}", value, path)


async def call(app: FastAPI, method: str, path: str, who: Who) -> Answer:
    """One request straight through the app. The client hangs up as soon as the request is
    read, so a live stream (Server-Sent Events) ends after its first answer."""
    headers = [(b"host", b"test"), (b"accept-language", b"zh-CN")]
    if who.bearer:
        headers.append((b"authorization", f"Bearer {who.bearer}".encode()))
    cookies = dict(who.cookies)
    form = {"csrf": who.csrf} if who.csrf else {}
    if method == "POST" and path.startswith("/staff/signin"):
        # The sign-in form's token pairs with a cookie of its own (nobody is signed in yet).
        cookies["yuyue_staff_signin"] = form["csrf"] = SIGN_IN_CSRF
    if cookies:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        headers.append((b"cookie", cookie.encode()))
    if who.csrf:
        headers.append((b"x-csrf-token", who.csrf.encode()))
    body = b""
    if method in STATE_CHANGING:
        if is_api(path):
            body = b"{}"
            headers.append((b"content-type", b"application/json"))
        else:
            body = urlencode(form).encode()
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.30", 50000),
        "server": ("test", 80),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    status = 0
    answer_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answer_headers.update(
                (name.decode().lower(), value.decode()) for name, value in message["headers"]
            )
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return Answer(status, answer_headers, b"".join(chunks))


def is_api(path: str) -> bool:
    return path.startswith("/api/")


def refused_properly(path: str, answer: Answer) -> bool:
    """The API refuses with 401 (who are you?) or 403 (not you) as problem+json; pages send
    the visitor to sign in (patient, staff or kiosk set-up) or show the 403 page."""
    if is_api(path):
        return answer.status in (401, 403) and answer.headers.get("content-type", "").startswith(
            "application/problem+json"
        )
    if 300 <= answer.status < 400:
        return answer.location.startswith(SIGN_IN_PAGES)
    return answer.status == 403


def let_through(path: str, answer: Answer) -> bool:
    """Past authorization: anything but a refusal. A page answering 401 has let the visitor
    in and refuses what they typed (a wrong code), which pages never do to refuse a caller."""
    if 300 <= answer.status < 400:
        return not answer.location.startswith(SIGN_IN_PAGES)
    return answer.status not in ((401, 403) if is_api(path) else (403,))


# --- every route as every caller ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_route_answers_as_the_table_says(hospital: Hospital, method: str, path: str) -> None:
    row = access.by_route().get((method, path))
    assert row is not None, f'no row for {method} {path}: add route("{method} {path}", ...)'
    concrete = fill(path)
    wrong: list[str] = []
    refused = [who for who in hospital.callers.values() if not who.admitted(row)]
    admitted = [who for who in hospital.callers.values() if who.admitted(row)]
    before = await row_counts(hospital.ctx.db) if method in STATE_CHANGING else None
    for who in refused:
        answer = await call(hospital.app, method, concrete, who)
        if not refused_properly(path, answer):
            wrong.append(f"{who.name} should be refused, got {answer.status} {answer.location}")
    if before is not None:
        after = await row_counts(hospital.ctx.db)
        changed = {
            name: (before[name], after[name]) for name in before if before[name] != after[name]
        }
        if changed:
            wrong.append(f"refused calls changed rows: {changed}")
    for who in admitted:
        answer = await call(hospital.app, method, concrete, who)
        if not let_through(path, answer):
            wrong.append(f"{who.name} should be let through, got {answer.status} {answer.text()}")
    if method == "GET":
        # HEAD is GET without the body (web.security): it admits and refuses alike.
        nobody = hospital.callers["nobody"]
        got = await call(hospital.app, "GET", concrete, nobody)
        head = await call(hospital.app, "HEAD", concrete, nobody)
        if (head.status, head.location) != (got.status, got.location) or head.body:
            wrong.append(f"HEAD answers {head.status} {head.location}, GET {got.status}")
    for name in SIGNS_OUT.get((method, path), []):
        hospital.callers[name] = await make_caller(hospital, name)
    assert not wrong, f"{method} {path} ({access.who_text(row)}):\n" + "\n".join(wrong)


async def test_the_api_refuses_a_route_the_table_has_no_row_for(
    hospital: Hospital, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yuyue.web import deps

    path = "/api/v1/departments"
    admin = hospital.callers["admin"]
    assert (await call(hospital.app, "GET", path, admin)).status == 200
    monkeypatch.delitem(deps._ROWS, ("GET", path))
    answer = await call(hospital.app, "GET", path, admin)
    assert answer.status == 403
    assert json.loads(answer.body)["code"] == "forbidden"
