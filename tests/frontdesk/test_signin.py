# ruff: noqa: F811  (the floor fixtures are imported and then taken as arguments)
"""The floor pages' sign-in: its CSRF pair, the second step, and signing out for good."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.frontdesk.test_pages import Floor, floor, http, sign_in_form  # noqa: F401
from tests.helpers import row_counts
from yuyue.kit.clock import FixedClock
from yuyue.staff import access
from yuyue.staff.models import StaffAccessPolicy, StaffUser
from yuyue.staff.rules import STAFF_CHANNEL, Actor, ActorKind

CHALLENGE = re.compile(r'name="challenge" value="([^"]*)"')
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


async def enrol_nurse(floor: Floor, clock: FixedClock) -> str:
    """The nurse's second factor, set up through the service; returns the secret."""
    async with floor.ctx.db.read() as s:
        nurse = await s.scalar(select(StaffUser).where(StaffUser.username == "nurse"))
    assert nurse is not None
    actor = Actor(
        hospital_id=nurse.hospital_id, kind=ActorKind.STAFF, id=str(nurse.id), channel=STAFF_CHANNEL
    )

    async def start(session: AsyncSession) -> str:
        return (await access.start_enrolment(session, actor=actor, cipher=floor.ctx.cipher))[1]

    secret: str = await floor.ctx.db.transact(start)
    await access.confirm_enrolment(
        floor.ctx.db,
        actor=actor,
        code=pyotp.TOTP(secret).at(clock.now()),
        client=access.Client.of("", ""),
        cipher=floor.ctx.cipher,
        now=clock.now(),
    )
    return secret


class TestSignInForm:
    async def test_a_post_without_the_forms_token_is_refused_and_signs_no_one_in(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        before = await row_counts(floor.ctx.db)
        forged = await http.post(
            "/staff/signin", data={"username": "nurse", "password": "secret-pass", "csrf": "x" * 32}
        )
        assert forged.status_code == 403
        assert "yuyue_staff=" not in forged.headers.get("set-cookie", "")
        assert await row_counts(floor.ctx.db) == before

    async def test_signing_out_kills_the_cookie_even_if_it_was_kept(
        self, http: httpx.AsyncClient, floor: Floor
    ) -> None:
        signed = await sign_in_form(http, {"username": "nurse", "password": "secret-pass"})
        assert signed.status_code == 303
        token = http.cookies.get("yuyue_staff")
        desk = await http.get("/desk")
        assert desk.status_code == 200
        csrf = CSRF.search(desk.text)
        assert csrf is not None
        assert (await http.post("/staff/signout", data={"csrf": csrf.group(1)})).status_code == 303
        http.cookies.set("yuyue_staff", token or "")
        assert (await http.get("/desk")).status_code == 303

    async def test_a_second_factor_is_a_second_page(
        self, http: httpx.AsyncClient, floor: Floor, clock: FixedClock
    ) -> None:
        secret = await enrol_nurse(floor, clock)
        # The code used to enrol is spent: sign in at the next time step.
        clock.set(clock.now() + timedelta(seconds=30))
        first = await sign_in_form(http, {"username": "nurse", "password": "secret-pass"})
        assert first.status_code == 200 and "yuyue_staff=" not in first.headers.get(
            "set-cookie", ""
        )
        challenge, csrf = CHALLENGE.search(first.text), CSRF.search(first.text)
        assert challenge is not None and csrf is not None
        wrong = await http.post(
            "/staff/signin/code",
            data={"csrf": csrf.group(1), "challenge": challenge.group(1), "code": "000000"},
        )
        assert wrong.status_code == 401 and "动态码或恢复码不正确" in wrong.text
        forged = await http.post(
            "/staff/signin/code",
            data={
                "csrf": "y" * 32,
                "challenge": challenge.group(1),
                "code": pyotp.TOTP(secret).at(clock.now()),
            },
        )
        assert forged.status_code == 403
        right = await http.post(
            "/staff/signin/code",
            data={
                "csrf": csrf.group(1),
                "challenge": challenge.group(1),
                "code": pyotp.TOTP(secret).at(clock.now()),
            },
        )
        assert right.status_code == 303 and right.headers["location"] == "/desk"
        assert (await http.get("/desk")).status_code == 200

    async def test_a_limited_sign_in_is_sent_to_enrol(
        self, http: httpx.AsyncClient, floor: Floor, clock: FixedClock
    ) -> None:
        async with floor.ctx.db.session_scope() as s:
            policy = await s.get(StaffAccessPolicy, floor.world.hospital.id)
            assert policy is not None
            policy.second_factor_roles = ["nurse"]
        signed = await sign_in_form(http, {"username": "nurse", "password": "secret-pass"})
        assert signed.headers["location"] == "/staff/second-factor"
        assert (await http.get("/desk")).status_code == 303
        page = await http.get("/staff/second-factor")
        assert page.status_code == 200 and "data:image/svg+xml" in page.text
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.text)
        csrf = CSRF.search(page.text)
        assert secret is not None and csrf is not None
        done = await http.post(
            "/staff/second-factor",
            data={"csrf": csrf.group(1), "code": pyotp.TOTP(secret.group(1)).at(clock.now())},
        )
        assert done.status_code == 200 and done.text.count("<li><code>") == 10
        assert (await http.get("/desk")).status_code == 200
