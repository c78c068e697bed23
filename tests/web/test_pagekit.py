"""The shared page layer: the CSRF token every page form carries, and reading ids, dates,
htmx requests, `?next=` and `?done=` the same way on every page."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request
from pydantic import BaseModel, Field, model_validator

from yuyue.frontdesk.web import FloorVisitor
from yuyue.kit import i18n
from yuyue.kit.crypto import FieldCipher
from yuyue.kit.errors import Conflict, ValidationFailed, YuyueError
from yuyue.portal.web import Visitor
from yuyue.scheduling.models import Hospital
from yuyue.web import pagekit
from yuyue.web.context import AppContext
from yuyue.web.pagekit import CsrfFailed, FormFields, FormRefused

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


# --- a form that changes something -----------------------------------------------------------

i18n.register(
    {
        "test.field.capacity": ("号源数", "places"),
        "test.field.start": ("开始", "start"),
        "test.field.end": ("结束", "end"),
    }
)
FIELDS = FormFields("test.field", whole_form="end")


class Shape(BaseModel):
    capacity: int = Field(ge=1)
    start: int = 0
    end: int = 1

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Shape:
        if self.end <= self.start:
            raise ValueError("ends before it starts")
        return self


class FakeDatabase:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    async def transact(self, work: Any) -> object:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return await work(None)


def floor_with(database: FakeDatabase, locale: str = "en") -> FloorVisitor:
    ctx = cast(AppContext, SimpleNamespace(cipher=FieldCipher(NEW), db=database))
    return FloorVisitor(ctx=ctx, hospital=HOSPITAL, locale=locale, now=NOW, credential="t")


class TestForms:
    def test_with_query_leaves_out_empty_values(self) -> None:
        assert pagekit.with_query("/x") == "/x"
        assert pagekit.with_query("/x", a=None, b="", c=0) == "/x?c=0"
        assert pagekit.with_query("/x", name="张 三", n=2) == "/x?name=%E5%BC%A0+%E4%B8%89&n=2"

    def test_filled_keeps_only_what_was_typed(self) -> None:
        form = {"a": " 1 ", "b": "  ", "c": "x", "d": ""}
        assert pagekit.filled(form, ("a", "b", "d", "missing")) == {"a": "1"}

    def test_valid_values_come_back_in_the_models_shape(self) -> None:
        shape = FIELDS.validated(floor_with(FakeDatabase(None)), Shape, {"capacity": "3"})
        assert shape == Shape(capacity=3)

    @pytest.mark.parametrize(
        ("values", "locale", "sentence"),
        [
            ({"capacity": "0"}, "en", "places"),
            ({"capacity": "x", "start": "y"}, "en", "places, start"),
            ({"capacity": "2", "start": "5", "end": "3"}, "en", "end"),
            ({"capacity": "0"}, "zh-CN", "号源数"),
            ({"capacity": "x", "start": "y"}, "zh-CN", "号源数、开始"),
        ],
    )
    def test_invalid_values_are_refused_naming_each_field_once(
        self, values: dict[str, str], locale: str, sentence: str
    ) -> None:
        who = floor_with(FakeDatabase(None), locale)
        with pytest.raises(FormRefused) as refused:
            FIELDS.validated(who, Shape, values)
        assert refused.value.status == 422
        assert refused.value.sentence == who.t("error.validation_error", summary=sentence)

    def test_without_a_whole_form_name_a_cross_field_problem_names_nothing(self) -> None:
        who = floor_with(FakeDatabase(None))
        with pytest.raises(FormRefused) as refused:
            FormFields("test.field").validated(who, Shape, {"capacity": "1", "end": "0"})
        assert refused.value.sentence == who.t("error.validation_error", summary="")

    async def test_saved_answers_what_the_work_returned(self) -> None:
        async def work(session: object) -> str:
            return "done"

        assert await FIELDS.saved(floor_with(FakeDatabase(None)), work) == "done"

    @pytest.mark.parametrize(
        ("error", "status", "sentence"),
        [
            (ValidationFailed(summary="capacity"), 422, "places"),
            # A field this form does not know is not named by a made-up label.
            (ValidationFailed(summary="elsewhere"), 422, None),
            (Conflict(), 409, None),
        ],
    )
    async def test_a_refused_save_keeps_the_services_reason_and_status(
        self, error: YuyueError, status: int, sentence: str | None
    ) -> None:
        who = floor_with(FakeDatabase(error))

        async def work(session: object) -> None:
            raise AssertionError("the transaction was refused before the work ran")

        with pytest.raises(FormRefused) as refused:
            await FIELDS.saved(who, work)
        assert refused.value.status == status
        expected = (
            error.detail("en")
            if sentence is None
            else who.t("error.validation_error", summary=sentence)
        )
        assert refused.value.sentence == expected
        assert "test.field." not in refused.value.sentence
