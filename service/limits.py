"""Request limits: the body size (413 problem before the body is read, from Content-Length,
or as soon as a streamed body passes the limit) and the query string (422 for a parameter the
route does not declare)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import ProblemError, problem_response


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


def declared_query_parameters(dependant: Any) -> frozenset[str]:
    """The query parameter names a route declares, its dependencies' included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(field.alias for field in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)


async def reject_unknown_query(request: Request) -> None:
    """A dependency of every route: a route that declares query parameters answers 422 for
    one it does not declare, naming it.

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


#: Add to a router's (or route's) ``dependencies``.
KnownQueryOnly = Depends(reject_unknown_query)
