"""RFC 9457 problem details: every error of the API, mapped in this one place.

Routes raise :class:`ProblemError` (or a domain :class:`~renewal.errors.RenewalError`);
framework errors (unknown route, wrong method, validation) and database outages are turned
into ``application/problem+json`` by the handlers installed with :func:`install_handlers`.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renewal.errors import ConfigError, DataContractError, ModelUnavailableError, RenewalError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:renewal:problem:"
#: FastAPI's HTTPException detail for a request body it cannot decode as JSON.
BODY_PARSE_ERROR = "There was an error parsing the body"
log = logging.getLogger("service.problems")


class Problem(BaseModel):
    """The problem+json body (RFC 9457); extension members are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[f"{TYPE_PREFIX}not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no account 'A000042' is visible to this key"])


class ProblemError(Exception):
    """Raise to answer with a problem; ``extensions`` become extra members of the body."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extensions = extensions


def problem_body(
    status: int, slug: str, detail: str, title: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The JSON object of one problem."""
    return {
        "type": f"{TYPE_PREFIX}{slug}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extensions,
    }


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A complete problem+json response (also used by the ASGI middlewares)."""
    body = problem_body(status, slug, detail, title, **extensions)
    return Response(
        content=json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def not_found(detail: str, **extensions: Any) -> ProblemError:
    """404, also for objects that exist but are not visible to the caller (no existence leak)."""
    return ProblemError(404, "not-found", detail, **extensions)


def forbidden(detail: str) -> ProblemError:
    """403: the key is valid but its role may not use this operation."""
    return ProblemError(403, "forbidden", detail)


def service_unavailable(detail: str, retry_after: int, slug: str = "unavailable") -> ProblemError:
    """503 with Retry-After: try again later, nothing is wrong with the request."""
    return ProblemError(503, slug, detail, headers={"Retry-After": str(retry_after)})


_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
}


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('body', 'accounts', 0, 'features', 'seats')`` → ``body.accounts[0].features.seats``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


#: Where a rejected value is said back: the caller's own URL (never a body, which may hold a
#: private note), cut to this many characters.
ECHOED_LOCATIONS = ("query", "path")
MAX_ECHOED_CHARS = 60


def _echoed_input(error: dict[str, Any]) -> str | None:
    """The rejected value of a query or path parameter (None for bodies and missing ones)."""
    loc = error.get("loc", ())
    value = error.get("input")
    if not loc or loc[0] not in ECHOED_LOCATIONS or not isinstance(value, str):
        return None
    if error.get("type") == "missing":
        return None
    return value[:MAX_ECHOED_CHARS] + ("…" if len(value) > MAX_ECHOED_CHARS else "")


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as ``{field, message, type}``; a query or path parameter's entry adds
    the rejected ``input`` (body values are not echoed back)."""
    out = []
    for e in errors:
        item = {
            "field": _field_path(e.get("loc", ())),
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        echoed = _echoed_input(e)
        if echoed is not None:
            item["input"] = echoed
        out.append(item)
    return out


def where_raised(exc: BaseException) -> str:
    """The traceback's frames (file, line, function, code) without the exception's message.

    A message may carry what the failing code held (``KeyError('A000042')``, a note's text):
    customer data that must not reach the logs. The frames say where to look.
    """
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class UnexpectedErrorMiddleware:
    """Answers an exception no handler took with ``handler``'s response, and stops it there.

    Starlette's outermost error middleware answers with the app's ``Exception`` handler and
    then re-raises, so the server logged the exception a second time, message included
    (uvicorn's "Exception in ASGI application" traceback): ``KeyError('A000042')`` or a
    note's text in the server log. Installed inside the app, this one keeps such exceptions
    from reaching the server; ``handler`` logs the type and frames only (:func:`where_raised`).
    """

    def __init__(self, app: ASGIApp, handler: ErrorHandler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - answered and logged (type and frames) here
            response = await self.handler(Request(scope), exc)
            if not started:  # else the client sees the connection end mid-response
                await response(scope, receive, send)


def _is_admin(request: Request) -> bool:
    from service.auth import PRINCIPAL_SCOPE_KEY  # auth imports this module

    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    return getattr(principal, "role", None) == "admin"


def model_unavailable_detail(request: Request, exc: ModelUnavailableError) -> str:
    """What a 503 says when no model is loaded: why (the registry's error with its URI, the
    last-known-good copy's path) for admin keys; that it is so, for the others."""
    if _is_admin(request):
        return str(exc)[:1000]
    return ("no model is loaded; train and promote one, or ask an admin (an admin key sees "
            "why in this answer)")


def data_contract_detail(request: Request, exc: DataContractError) -> str:
    """What a 503 says about a broken data directory: every problem for admin keys; for the
    others only how many and in which tables. A problem names server paths ("required table
    is missing in /srv/...") and example cell values of any account, which the API shows only
    to operators (as ``data_dir`` of ``GET /v1/scoring-runs``)."""
    if _is_admin(request):
        return "the scored data directory cannot be read: " + str(exc)[:500]
    tables = ", ".join(sorted({p.table for p in exc.problems})) or "its tables"
    return (
        f"the scored data directory cannot be read: {len(exc.problems)} problem(s) in "
        f"{tables} (an admin key sees them)"
    )


def install_handlers(app: FastAPI, retry_after_seconds: int = 5) -> None:
    """Register the handlers that turn every error into problem+json (an unexpected error is
    answered inside the app and never reaches the server: see
    :class:`UnexpectedErrorMiddleware`)."""

    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status, exc.slug, exc.detail, title=exc.title, headers=exc.headers, **exc.extensions
        )

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        if status == 404 and detail == "Not Found":
            detail = "no such route"
        if status == 400 and detail == BODY_PARSE_ERROR:
            # FastAPI's answer to a body that is not JSON (e.g. not UTF-8): the same 422
            # validation-error as any other invalid body (found by fuzzing; 400 is undocumented).
            return problem_response(
                422,
                "validation-error",
                "invalid body: not a JSON document",
                errors=[{"field": "body", "type": "json_invalid", "message": "not valid JSON"}],
            )
        return problem_response(
            status, _HTTP_SLUGS.get(status, "http-error"), detail, headers=dict(exc.headers or {})
        )

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(list(exc.errors()))
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        first = errors[0]["message"] if errors else "invalid request"
        if errors and "input" in errors[0]:  # name the bad value, not only the parameter
            first += f" (got {errors[0]['input']!r})"
        return problem_response(
            422, "validation-error", f"invalid {fields}: {first}", errors=errors
        )

    async def on_database(_request: Request, exc: Exception) -> Response:
        log.error("database unavailable: %s", type(exc).__name__)
        return problem_response(
            503,
            "database-unavailable",
            "the score database is not reachable; retry later",
            headers={"Retry-After": str(retry_after_seconds)},
        )

    async def on_domain(request: Request, exc: Exception) -> Response:
        from service.db.scores import ScoresBeingStored

        if isinstance(exc, ScoresBeingStored):
            return problem_response(503, "scores-being-stored", str(exc),
                                    headers={"Retry-After": str(retry_after_seconds)})
        if isinstance(exc, ModelUnavailableError):
            return problem_response(
                503,
                "model-unavailable",
                model_unavailable_detail(request, exc),
                headers={"Retry-After": str(retry_after_seconds)},
            )
        if isinstance(exc, DataContractError):
            log.error("data directory breaks the contract (%d problems)", len(exc.problems))
            return problem_response(
                503,
                "data-unavailable",
                data_contract_detail(request, exc),
                headers={"Retry-After": str(retry_after_seconds)},
            )
        if isinstance(exc, ConfigError):
            log.error("configuration error: %s", exc)
            return problem_response(500, "configuration-error", "the service is misconfigured")
        return problem_response(400, "bad-request", str(exc))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for db_error in (OperationalError, DBAPIError, PoolTimeoutError):
        app.add_exception_handler(db_error, on_database)
    app.add_exception_handler(RenewalError, on_domain)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(UnexpectedErrorMiddleware, handler=on_unexpected)


async def on_unexpected(_request: Request, exc: Exception) -> Response:
    """A 500 problem; the log gets the exception's type and frames, never its message."""
    log.error("unhandled %s at\n%s", type(exc).__name__, where_raised(exc))
    return problem_response(500, "internal-error", "an unexpected error occurred")


def guard_outer_middlewares(app: FastAPI) -> None:
    """Call after adding the app's last middleware: an unexpected error in one of them
    (authentication, telemetry) is answered here rather than re-raised to the server,
    whose traceback would print its message."""
    app.add_middleware(UnexpectedErrorMiddleware, handler=on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json errors of a route."""
    described = {
        400: "The request is well-formed but cannot be processed.",
        401: "Missing, unknown or revoked API key.",
        403: "The key's role may not use this operation.",
        404: "Unknown account, or one that this key may not see.",
        409: "The target's state does not allow this now (e.g. a disabled webhook).",
        413: "Request body larger than the limit.",
        422: "Validation error; `errors[].field` names each offending field.",
        503: "Model or database unavailable; see Retry-After.",
    }
    return {
        status: {
            "description": described.get(status, HTTPStatus(status).phrase),
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
