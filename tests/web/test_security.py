"""Security headers on every kind of answer, HEAD like GET, equal-cost sign-in refusals and
constant-time token comparison."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import World
from yuyue.kit import crypto
from yuyue.web import security
from yuyue.web.context import AppContext

TEMPLATES = Path(security.__file__).resolve().parents[1]


def assert_guarded(response: httpx.Response, *, https: bool = False) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    assert ("strict-transport-security" in headers) is https


@pytest.fixture(autouse=True)
def our_hospital(ctx: AppContext, world: World) -> None:
    """The pages serve the hospital the settings name."""
    ctx.settings.hospital_code = world.hospital.code


@pytest.fixture
async def https_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as http:
        yield http


class TestHeadersOnEveryAnswer:
    async def test_pages_api_static_errors_and_the_fast_paths_carry_the_headers(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        answers = [
            await client.get("/healthz"),
            await client.get("/"),
            await client.get("/static/portal.css"),
            await client.get("/api/v1/departments", headers=world.auth),
            await client.get("/api/v1/nothing-here"),
            await client.get("/api/v1/sessions", headers=world.auth),
            # The booking POST is answered in front of the router.
            await client.post(
                "/api/v1/appointments",
                headers=world.auth,
                json={"patient_id": "not-an-id"},
            ),
        ]
        assert [a.status_code for a in answers][:3] == [200, 200, 200]
        assert answers[4].status_code == 404
        assert answers[6].status_code in (400, 422)
        for answer in answers:
            assert_guarded(answer)

    async def test_only_our_own_scripts_may_run(self, client: httpx.AsyncClient) -> None:
        policy = (await client.get("/")).headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]

    async def test_no_page_template_carries_an_inline_script(self) -> None:
        """An inline script would be blocked by the policy and silently stop working."""
        inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
        offenders = [
            str(path.relative_to(TEMPLATES))
            for path in TEMPLATES.rglob("*.html")
            if inline.search(path.read_text(encoding="utf-8"))
        ]
        assert offenders == []

    async def test_no_form_or_link_puts_a_security_token_in_an_address(self) -> None:
        """A GET form sends its fields in the address, which access logs, proxies and the
        browser's history keep: a CSRF token (or any token) must never be one of them."""
        get_form = re.compile(r"<form\b[^>]*method=\"get\"[^>]*>(.*?)</form>", re.I | re.S)
        offenders = []
        for path in TEMPLATES.rglob("*.html"):
            text = path.read_text(encoding="utf-8")
            for form in get_form.findall(text):
                if re.search(r"name=\"(csrf|token)\"|v\.csrf", form):
                    offenders.append(str(path.relative_to(TEMPLATES)))
            if re.search(r"[?&](csrf|token)=", text):
                offenders.append(f"{path.relative_to(TEMPLATES)} (link)")
        assert offenders == []

    async def test_no_get_form_posts_without_its_token(self) -> None:
        """A GET form carries no token, so a button in it that posts the form
        (`formmethod="post"`) would always be refused as a stale page: posting needs a POST
        form with the token."""
        get_form = re.compile(r"<form\b[^>]*method=\"get\"[^>]*>(.*?)</form>", re.I | re.S)
        offenders = [
            str(path.relative_to(TEMPLATES))
            for path in TEMPLATES.rglob("*.html")
            for form in get_form.findall(path.read_text(encoding="utf-8"))
            if re.search(r"formmethod=\"post\"", form, re.I)
        ]
        assert offenders == []

    async def test_api_docs_get_a_policy_that_lets_swagger_ui_load(
        self, client: httpx.AsyncClient
    ) -> None:
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert_guarded(docs)

    async def test_hsts_only_over_https(self, https_client: httpx.AsyncClient) -> None:
        answer = await https_client.get("/healthz")
        assert_guarded(answer, https=True)
        assert answer.headers["strict-transport-security"].startswith("max-age=31536000")

    async def test_headers_a_route_sets_itself_are_kept(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/healthz")
        assert answer.headers.get_list("content-security-policy") == [
            security.CONTENT_SECURITY_POLICY
        ]


class TestHead:
    @pytest.mark.parametrize("path", ["/", "/healthz", "/static/portal.css", "/departments"])
    async def test_head_answers_like_get_without_a_body(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert_guarded(head)

    async def test_head_of_a_missing_page_is_404(self, client: httpx.AsyncClient) -> None:
        assert (await client.head("/no-such-page")).status_code == 404


class TestSignInRefusalsCostTheSame:
    async def test_unknown_username_costs_a_password_check(
        self, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        checks: list[str] = []
        real = crypto.verify_password

        def counted(hash: str, password: str) -> bool:
            checks.append(password)
            return real(hash, password)

        monkeypatch.setattr(crypto, "verify_password", counted)
        answer = await client.post(
            "/api/v1/auth/token",
            json={"hospital": world.hospital.code, "username": "nobody", "password": "guess-1"},
        )
        assert answer.status_code == 401
        assert checks == ["guess-1"]


class TestSameSecret:
    @pytest.mark.parametrize(
        ("sent", "expected", "same"),
        [
            ("abc", "abc", True),
            ("abc", "abd", False),
            ("", "abc", False),
            (None, "abc", False),
            ("abc", None, False),
            ("令牌", "令牌", True),
        ],
    )
    def test_compares_whole_tokens(
        self, sent: str | None, expected: str | None, same: bool
    ) -> None:
        assert crypto.same_secret(sent, expected) is same
