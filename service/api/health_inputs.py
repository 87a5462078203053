"""PUT and GET /v1/accounts/{account_id}/health-inputs: CSM judgement with an audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.accounts import AccountPath
from service.api.schemas import HealthInputHistory, HealthInputIn, HealthInputRecorded
from service.auth import CsmOrAdmin, visible_account
from service.context import Ctx
from service.db.health_inputs import health_input_history
from service.model_inputs import reads_judgement
from service.problems import problem_responses
from service.rescore import input_view, record_and_rescore
from service.workflows.install import Workflows

router = APIRouter(prefix="/v1/accounts", tags=["health inputs"])


@router.put(
    "/{account_id}/health-inputs",
    response_model=HealthInputRecorded,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Record a CSM's health input and re-score the account now",
)
def put_health_inputs(
    account_id: AccountPath,
    body: HealthInputIn,
    principal: CsmOrAdmin,
    ctx: Ctx,
    workflows: Workflows,
) -> dict[str, Any]:
    """Stored with its author (the key's id) and time, never changed afterwards. The next
    scoring run uses it, and the account is re-scored on the spot with the served model
    (a drop of more than the app's ``probability_drop_points`` raises the webhook event)."""
    entry = visible_account(ctx.cache, principal, account_id)
    record, renewal = record_and_rescore(
        ctx, principal, entry, body, drop_points=workflows.settings.probability_drop_points
    )
    ctx.telemetry.scores_served.labels("health_inputs").inc()
    model = ctx.models.current
    reads = model is not None and reads_judgement(model.feature_names)
    return {"health_input": record, "renewal": renewal, "model_reads_inputs": reads}


@router.get(
    "/{account_id}/health-inputs",
    response_model=HealthInputHistory,
    responses=problem_responses(401, 403, 404, 422),
    summary="History of an account's health inputs, newest first",
)
def get_health_inputs(
    account_id: AccountPath,
    principal: CsmOrAdmin,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Every input recorded through the API for the account, with author and time."""
    visible_account(ctx.cache, principal, account_id)
    with ctx.sessions() as session:
        rows = health_input_history(session, account_id, limit)
    return {"data": [input_view(r) for r in rows], "count": len(rows)}
