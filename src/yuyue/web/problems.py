"""Every error leaves as application/problem+json (RFC 9457) with a stable `code`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from yuyue.kit import i18n
from yuyue.kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    YuyueError,
)
from yuyue.kit.observability import REFUSALS

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://yuyue.dev/problems/"
PROBLEM_JSON = "application/problem+json"

# A unique index that fires is the database upholding a rule under a race the service
# could not see; it becomes the same refusal the rule gives.
CONSTRAINT_ERRORS: dict[str, type[YuyueError]] = {}


def register_constraint(name: str, error: type[YuyueError]) -> None:
    CONSTRAINT_ERRORS[name] = error


def locale_of(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"))


def problem_body(error: YuyueError, locale: str, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + error.code,
        "title": error.title(locale),
        "status": error.status,
        "code": error.code,
        "detail": error.detail(locale),
    }
    if instance:
        body["instance"] = instance
    body.update(error.extensions())
    return body


# The patient pages answer errors with a page, not JSON; they register how.
PageRenderer = Callable[[Request, YuyueError], Response]


def register_page_renderer(
    app: FastAPI, applies: Callable[[Request], bool], renderer: PageRenderer
) -> None:
    app.state.page_renderer = (applies, renderer)


def problem_response(
    error: YuyueError, request: Request, headers: dict[str, str] | None = None
) -> Response:
    REFUSALS.labels(error.code).inc()
    page_renderer = getattr(request.app.state, "page_renderer", None)
    if page_renderer is not None and page_renderer[0](request):
        page: Response = page_renderer[1](request, error)
        page.headers.update(headers or {})
        return page
    return JSONResponse(
        problem_body(error, locale_of(request), request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_failure(exc: RequestValidationError) -> ValidationFailed:
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    summary = ", ".join(sorted({e["field"] for e in errors}))
    return ValidationFailed(errors=errors, summary=summary)


def install(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, YuyueError)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return problem_response(exc, request, headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_failure(exc), request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error: YuyueError
        if exc.status_code == 404:
            error = NotFound(what="resource")
        elif exc.status_code == 401:
            error = Unauthorized()
        elif exc.status_code == 403:
            error = Forbidden()
        elif exc.status_code == 405:
            error = _MethodNotAllowed()
        else:
            error = ValidationFailed(summary=str(exc.detail))
        return problem_response(error, request, dict(exc.headers) if exc.headers else None)

    async def on_integrity(request: Request, exc: Exception) -> Response:
        text = str(exc)
        for name, error_type in CONSTRAINT_ERRORS.items():
            if name in text:
                return problem_response(error_type(), request)
        log.warning("unmapped integrity error: %s", text.splitlines()[0])
        return problem_response(Conflict(), request)

    async def on_database(request: Request, exc: Exception) -> Response:
        if _database_unavailable(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem_response(_Unavailable(), request, {"Retry-After": "1"})
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(_InternalError(), request)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(_InternalError(), request)

    app.add_exception_handler(YuyueError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(IntegrityError, on_integrity)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(PoolTimeout, on_database)
    app.add_exception_handler(Exception, on_unexpected)


class _MethodNotAllowed(YuyueError):
    code = "method_not_allowed"
    status = 405


class _InternalError(YuyueError):
    code = "internal_error"
    status = 500


class _Unavailable(YuyueError):
    code = "service_unavailable"
    status = 503


_UNAVAILABLE_ERRORS = {
    "TooManyConnectionsError",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "ConnectionRefusedError",
    "InterfaceError",
}


def _database_unavailable(exc: BaseException) -> bool:
    """Saturated or unreachable database: the client should retry, nothing was changed."""
    if isinstance(exc, PoolTimeout | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        chain = [exc.orig, getattr(exc.orig, "__cause__", None)]
        return any(type(e).__name__ in _UNAVAILABLE_ERRORS or isinstance(e, OSError) for e in chain)
    return False


i18n.register(
    {
        "title.service_unavailable": ("系统繁忙", "Service unavailable"),
        "error.service_unavailable": (
            "系统繁忙，请稍后重试；本次请求未做任何更改。",
            "The system is busy; nothing was changed. Please retry in a moment.",
        ),
        "title.method_not_allowed": ("方法不允许", "Method not allowed"),
        "error.method_not_allowed": (
            "该地址不支持此请求方法。",
            "This method is not allowed on this address.",
        ),
    }
)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `detail` is for people.",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "examples": ["sold_out", "validation_error"]},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "with validation_error: which field and why",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error answer in the OpenAPI description is the problem document actually sent,
    not FastAPI's default validation body."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith(("4", "5")):
                    continue
                content = response.get("content", {})
                example = content.get(PROBLEM_JSON, {}).get("example")
                documented: dict[str, Any] = {"schema": reference}
                if example is not None:
                    documented["example"] = example
                response["content"] = {PROBLEM_JSON: documented}
                if status == "422" and response.get("description") == "Validation Error":
                    response["description"] = "`validation_error`: the input is malformed"
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    return schema
