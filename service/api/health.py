"""GET /healthz (process up) and GET /readyz (model and database ready): no key needed."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.schemas import Liveness, Readiness
from service.context import Ctx, ServiceContext

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ok while the process serves requests (the Docker HEALTHCHECK)."""
    return {"status": "ok"}


def check_database(ctx: ServiceContext) -> dict[str, Any]:
    try:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "No model or no database."}},
    summary="Readiness: model loaded (or degraded to last-known-good) and database reachable",
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """ "ready", "degraded" (serving the last-known-good copy: 200) or "unavailable" (503)."""
    database = await anyio.to_thread.run_sync(check_database, ctx)
    model = ctx.models.current
    status = ctx.models.status if database["ok"] else "unavailable"
    if model is None:
        status = "unavailable"
    body = Readiness(
        status=status,
        model={
            "status": ctx.models.status,
            "reason": ctx.models.status_reason,
            "version": model.version if model else None,
            "source": model.source if model else None,
        },
        database=database,
        cached_accounts=len(ctx.cache),
    )
    code = 503 if status == "unavailable" else 200
    headers = (
        {"Retry-After": str(ctx.service_settings.db_retry_after_seconds)} if code == 503 else None
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=code, headers=headers)
