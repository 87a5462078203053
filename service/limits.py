"""Request body size limit: 413 problem before the body is read (Content-Length) or as
soon as a streamed body passes the limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
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


def known_query_only(*names: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: 422 for a query parameter the route does not define.

    A misspelt filter (``?segmnet=smb``) would otherwise be ignored silently and the caller
    would read an unfiltered list as a filtered one (found by fuzzing the risk list)."""
    allowed = frozenset(names)

    async def dependency(request: Request) -> None:
        unknown = sorted({k for k in request.query_params if k not in allowed})
        if unknown:
            raise ProblemError(
                422,
                "validation-error",
                f"invalid query: unknown parameter(s) {', '.join(map(repr, unknown[:5]))}",
                errors=[
                    {"field": f"query.{k}", "type": "extra_forbidden", "message": "unknown"}
                    for k in unknown[:20]
                ],
            )

    return dependency
