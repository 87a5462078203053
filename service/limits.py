"""Request limits: the body size (413 problem before the body is read, from Content-Length,
or as soon as a streamed body passes the limit), its media type (415 for a body on the API
that is not JSON) and the query string (422 for a parameter the route does not declare)."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Sequence, Set
from typing import Any

from fastapi import Depends, Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import ProblemError, problem_response

#: Methods whose body the API reads as JSON.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JsonBodyMiddleware:
    """415 for a request body on the API (``/v1/``) sent as anything but JSON.

    ``curl -d '{...}'`` without ``-H 'Content-Type: application/json'`` sends a form type;
    FastAPI then validated the raw bytes and answered 422 "Input should be a valid
    dictionary", which sends people looking for a wrong field (a body without a type got the
    same 422). ``application/*+json`` is JSON too."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in BODY_METHODS
                and scope["path"].startswith(self.prefix)):
            headers = dict(scope.get("headers", ()))
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            has_body = (headers.get(b"content-length", b"0") != b"0"
                        or b"transfer-encoding" in headers)
            if has_body and not _is_json(media):
                shown = repr(media.decode("latin-1")[:100]) if media else "without a type"
                response = problem_response(
                    415, "unsupported-media-type",
                    f"the body must be JSON (Content-Type: application/json), not {shown}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_json(media: bytes) -> bool:
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json"))


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413 application/problem+json."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_bytes:
            response = problem_response(
                413, "content-too-large", self._detail(), headers={"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes FastAPI's body parsing untouched → 413 problem.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


def _query_fields(dependant: Any) -> Iterator[Any]:
    """The query parameter fields a route declares, its dependencies' included."""
    stack = [dependant]
    while stack:
        current = stack.pop()
        yield from current.query_params
        stack.extend(current.dependencies)


def declared_query_parameters(dependant: Any) -> frozenset[str]:
    """The query parameter names a route declares, its dependencies' included."""
    return frozenset(field.alias for field in _query_fields(dependant))


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter's type holds several values (``list[str]``, ``tuple[int, ...]``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _takes_many(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return any(_takes_many(a) for a in typing.get_args(annotation))
    candidate = origin or annotation
    return (
        isinstance(candidate, type)
        and issubclass(candidate, Sequence | Set)
        and not issubclass(candidate, str | bytes)
    )


def repeatable_query_parameters(dependant: Any) -> frozenset[str]:
    """The declared query parameters that take several values (may be given repeatedly)."""
    return frozenset(field.alias for field in _query_fields(dependant)
                     if _takes_many(field.field_info.annotation))


def _repeated(request: Request, dependant: Any) -> ProblemError | None:
    """422 for a single-valued parameter given more than once: the framework would keep the
    last value silently (``?segment=smb&segment=enterprise`` listed enterprise only, which
    reads as "smb or enterprise"; ``?limit=5&limit=10`` answered 10)."""
    counts: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        counts.setdefault(name, []).append(value)
    many = repeatable_query_parameters(dependant)
    repeated = sorted(k for k, values in counts.items() if len(values) > 1 and k not in many)
    if not repeated:
        return None

    def message(name: str) -> str:
        values = ", ".join(repr(v[:50]) for v in counts[name][:5])
        return f"given {len(counts[name])} times ({values}); give it once"

    return ProblemError(
        422,
        "validation-error",
        f"invalid query.{repeated[0]}: {message(repeated[0])}",
        errors=[
            {"field": f"query.{k}", "type": "multiple_values", "message": message(k)}
            for k in repeated[:20]
        ],
    )


async def reject_unknown_query(request: Request) -> None:
    """A dependency of every route: a route that declares query parameters answers 422 for
    one it does not declare, naming it, and for a single-valued one given more than once.

    A misspelt filter (``?segmnet=smb``) would otherwise be ignored silently and the caller
    would read an unfiltered list as a filtered one (found by fuzzing the risk list). The
    allowed names are read from the route itself, so they never drift from its signature.
    Routes without query parameters ignore the query string (cache busters stay harmless)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or not request.query_params:
        return
    allowed = declared_query_parameters(dependant)
    if not allowed:
        return
    unknown = sorted({k for k in request.query_params if k not in allowed})
    if unknown:
        raise ProblemError(
            422,
            "validation-error",
            f"invalid query: unknown parameter(s) {', '.join(map(repr, unknown[:5]))}; "
            f"this route takes {', '.join(sorted(allowed))}",
            errors=[
                {"field": f"query.{k}", "type": "extra_forbidden", "message": "unknown parameter"}
                for k in unknown[:20]
            ],
        )
    repeated = _repeated(request, dependant)
    if repeated is not None:
        raise repeated


#: Add to a router's (or route's) ``dependencies``.
KnownQueryOnly = Depends(reject_unknown_query)
