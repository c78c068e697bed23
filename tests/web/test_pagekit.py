"""The shared page layer: the CSRF token every page form carries, and reading ids, dates,
htmx requests, `?next=` and `?done=` the same way on every page."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request

from yuyue.frontdesk.web import FloorVisitor
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.errors import ValidationFailed
from yuyue.portal.web import Visitor
from yuyue.scheduling.models import Hospital
from yuyue.web import pagekit
from yuyue.web.context import AppContext
from yuyue.web.pagekit import CsrfFailed

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def request(*, query: str = "", headers: dict[str, str] | None = None) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        }
    )


def context(cipher: FieldCipher) -> AppContext:
    return cast(AppContext, SimpleNamespace(cipher=cipher))


HOSPITAL = cast(Hospital, SimpleNamespace(timezone="Asia/Shanghai"))


def patient(cipher: FieldCipher, session_id: uuid.UUID | None) -> Visitor:
    return Visitor(
        ctx=context(cipher),
        hospital=HOSPITAL,
        locale="zh-CN",
        now=NOW,
        large_text=False,
        account=None,
        web_session_id=session_id,
    )


def staff(cipher: FieldCipher, credential: str | None) -> FloorVisitor:
    return FloorVisitor(
        ctx=context(cipher), hospital=HOSPITAL, locale="en", now=NOW, credential=credential
    )


class TestCsrf:
    def test_a_page_rendered_before_the_secret_changed_still_submits(self) -> None:
        session_id = uuid.uuid4()
        before = patient(FieldCipher(OLD), session_id).csrf
        rotating = patient(FieldCipher(NEW, previous=[OLD]), session_id)
        assert rotating.csrf != before
        rotating.check_csrf(before)
        rotating.check_csrf(rotating.csrf)

    def test_a_token_from_a_retired_secret_is_refused(self) -> None:
        session_id = uuid.uuid4()
        retired = patient(FieldCipher(OLD), session_id).csrf
        with pytest.raises(CsrfFailed):
            patient(FieldCipher(NEW), session_id).check_csrf(retired)

    @pytest.mark.parametrize("sent", [None, "", "x" * 32])
    def test_a_missing_or_wrong_token_is_refused(self, sent: str | None) -> None:
        with pytest.raises(CsrfFailed):
            staff(FieldCipher(NEW), "yk_key").check_csrf(sent)

    def test_another_sessions_token_is_refused(self) -> None:
        cipher = FieldCipher(NEW)
        other = patient(cipher, uuid.uuid4()).csrf
        with pytest.raises(CsrfFailed):
            patient(cipher, uuid.uuid4()).check_csrf(other)

    def test_a_patient_token_is_not_a_floor_token(self) -> None:
        cipher, subject = FieldCipher(NEW), uuid.uuid4()
        patient_token = patient(cipher, subject).csrf
        floor = staff(cipher, str(subject))
        assert len(patient_token) == len(floor.csrf) == pagekit.CSRF_LENGTH
        with pytest.raises(CsrfFailed):
            floor.check_csrf(patient_token)

    def test_nobody_signed_in_has_no_token_and_no_check(self) -> None:
        visitor = patient(FieldCipher(NEW), None)
        assert visitor.csrf == "" and visitor.csrf_accepted == []
        visitor.check_csrf(None)

    async def test_the_floor_takes_the_token_from_a_header_the_portal_does_not(self) -> None:
        cipher, subject = FieldCipher(NEW), uuid.uuid4()
        floor, portal = staff(cipher, str(subject)), patient(cipher, subject)

        def posted(token: str) -> Request:
            scope: dict[str, Any] = {
                "type": "http",
                "method": "POST",
                "path": "/",
                "query_string": b"",
                "headers": [
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"x-csrf-token", token.encode()),
                ],
            }

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"visit=1", "more_body": False}

            return Request(scope, receive)

        assert await pagekit.form_of(posted(floor.csrf), floor) == {"visit": "1"}
        with pytest.raises(CsrfFailed):
            await pagekit.form_of(posted(portal.csrf), portal)


class TestFormValues:
    def test_ids(self) -> None:
        value = uuid.uuid4()
        assert pagekit.uuid_or_none(str(value)) == value
        assert pagekit.parse_uuid(str(value)) == value
        for blank in (None, ""):
            assert pagekit.uuid_or_none(blank) is None
            assert pagekit.parse_uuid(blank) is None
        assert pagekit.uuid_or_none("not-an-id") is None

    def test_a_malformed_id_is_refused_naming_the_field(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            pagekit.parse_uuid("not-an-id", field="doctor_id")
        assert refused.value.values == {"summary": "doctor_id"}
        assert refused.value.status == 422

    def test_dates(self) -> None:
        assert pagekit.date_or_none("2026-11-23") == date(2026, 11, 23)
        assert pagekit.parse_date(" 2026-11-23 ") == date(2026, 11, 23)
        for blank in (None, "", "  "):
            assert pagekit.parse_date(blank) is None
        assert pagekit.date_or_none(None) is None
        assert pagekit.date_or_none("23/11/2026") is None

    def test_a_malformed_date_is_refused_naming_the_field(self) -> None:
        with pytest.raises(ValidationFailed) as refused:
            pagekit.parse_date("2026-13-01")
        assert refused.value.values == {"summary": "date"}


class TestRequests:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"HX-Request": "true"}, True),
            ({"HX-Request": "1"}, True),
            ({}, False),
            ({"HX-Request": "false"}, False),
            ({"HX-Request": ""}, False),
        ],
    )
    def test_htmx(self, headers: dict[str, str], expected: bool) -> None:
        assert pagekit.is_htmx(request(headers=headers)) is expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("/appointments/1?x=2", "/appointments/1?x=2"),
            ("//evil.example/", "/"),
            ("https://evil.example/", "/"),
            ("/\\evil.example", "/"),
            (None, "/"),
        ],
    )
    def test_next_stays_on_this_site(self, value: str | None, expected: str) -> None:
        assert pagekit.safe_next(value) == expected

    def test_the_sign_in_redirect_keeps_where_to_go_back(self) -> None:
        answer = pagekit.redirect_with_next("/signin", "/appointments/1 a")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=/appointments/1%20a"

    def test_done_notice_says_only_known_outcomes(self) -> None:
        who = staff(FieldCipher(NEW), None)
        key, known = "title.{done}", ("csrf_failed",)
        said = pagekit.done_notice(request(query="done=csrf_failed"), who, key, known)
        assert said == "Page expired"
        for query in ("done=evil", ""):
            assert pagekit.done_notice(request(query=query), who, key, known) is None
