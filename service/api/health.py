"""GET /healthz (process up) and GET /readyz (model and database ready): no key needed.

The database check answers within ``DATABASE_CHECK_SECONDS`` even when the database hangs
(accepts connections but never answers, e.g. a frozen server): the check runs in a thread of
its own, at most one at a time per engine, and a check still running counts as "not ready".
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from service.api.schemas import Liveness, Readiness
from service.context import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ok while the process serves requests (the Docker HEALTHCHECK)."""
    return {"status": "ok"}


DATABASE_CHECK_SECONDS = 2.0


def check_database(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


class DatabaseProbe:
    """One database check at a time, in a daemon thread (a hung check neither piles up
    threads nor holds up the server's shutdown)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._running: Future[dict[str, Any]] | None = None

    def start(self) -> Future[dict[str, Any]]:
        with self._lock:
            if self._running is None or self._running.done():
                future: Future[dict[str, Any]] = Future()
                threading.Thread(
                    target=self._check, args=(future,), name="readyz-db", daemon=True
                ).start()
                self._running = future
            return self._running

    def _check(self, future: Future[dict[str, Any]]) -> None:
        future.set_result(check_database(self._engine))

    async def check(self, timeout: float = DATABASE_CHECK_SECONDS) -> dict[str, Any]:
        pending = asyncio.wrap_future(self.start())
        try:
            return await asyncio.wait_for(asyncio.shield(pending), timeout)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {timeout:g} s"}


_probes: weakref.WeakKeyDictionary[Engine, DatabaseProbe] = weakref.WeakKeyDictionary()


def database_probe(engine: Engine) -> DatabaseProbe:
    probe = _probes.get(engine)
    if probe is None:
        probe = _probes.setdefault(engine, DatabaseProbe(engine))
    return probe


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "No model or no database."}},
    summary="Readiness: model loaded (or degraded to last-known-good) and database reachable",
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """ "ready", "degraded" (serving the last-known-good copy: 200) or "unavailable" (503)."""
    database = await database_probe(ctx.engine).check()
    model = ctx.models.current
    status = ctx.models.status if database["ok"] else "unavailable"
    if model is None:
        status = "unavailable"
    body = Readiness(
        status=status,
        model={
            "status": ctx.models.status,
            "reason": ctx.models.public_reason,  # answers anyone: no paths, no URIs
            "version": model.version if model else None,
            "source": model.source if model else None,
        },
        database=database,
    )
    code = 503 if status == "unavailable" else 200
    headers = (
        {"Retry-After": str(ctx.service_settings.db_retry_after_seconds)} if code == 503 else None
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=code, headers=headers)


# HEAD too: load balancers and uptime checkers probe with it (a 405 read as "down"). Added
# apart and left out of the OpenAPI document: one route with both methods gave both
# operations the same operationId, which code generators refuse (found by review).
for _path, _endpoint in (("/healthz", healthz), ("/readyz", readyz)):
    router.add_api_route(_path, _endpoint, methods=["HEAD"], include_in_schema=False)

