"""POST /v1/admin/reload: swap in the newly promoted champion (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query

from service.api.schemas import ReloadResult
from service.auth import Admin
from service.context import Ctx, ServiceContext
from service.problems import problem_responses
from service.workflows.promotion import announce_promotion

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def reload_everything(ctx: ServiceContext, force: bool = False) -> dict[str, Any]:
    """Reload the model from the registry alias, then the score cache from the database; a
    swap is announced to webhook subscribers (``model_promoted``)."""
    outcome = ctx.models.reload(force=force)
    ctx.telemetry.model_reloads.labels(outcome.outcome).inc()
    announce_promotion(ctx, outcome)
    cached = ctx.cache.load()
    ctx.telemetry.cached_accounts.set(cached)
    ctx.metric_results.clear()
    return {
        "outcome": outcome.outcome,
        "version": outcome.version,
        "previous_version": outcome.previous_version,
        "detail": outcome.detail,
        "cached_accounts": cached,
    }


@router.post(
    "/reload",
    response_model=ReloadResult,
    responses=problem_responses(401, 403, 422, 503),
    summary="Reload the model (registry alias) and the score cache",
)
async def post_reload(
    principal: Admin,
    ctx: Ctx,
    force: Annotated[bool, Query(description="Reload even if the version is unchanged.")] = False,
) -> dict[str, Any]:
    """Builds and checks the new model completely before one atomic swap; requests in flight
    finish on the old model. A model that fails to load or score is refused (outcome
    'refused') and the old one keeps serving."""
    return await anyio.to_thread.run_sync(reload_everything, ctx, force)
