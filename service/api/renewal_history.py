"""GET /v1/accounts/{account_id}/renewal/history: the score history and why it moved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.accounts import AccountPath
from service.api.workflow_schemas import HistoryOut
from service.auth import Reader, visible_account
from service.context import Ctx
from service.db import scores as scores_db
from service.problems import problem_responses
from service.workflows.history import explain_history

router = APIRouter(prefix="/v1/accounts", tags=["workflows: history"])


@router.get(
    "/{account_id}/renewal/history",
    response_model=HistoryOut,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Score history, with the features that moved the probability between scores",
)
def get_history(
    account_id: AccountPath, principal: Reader, ctx: Ctx,
    limit: Annotated[int, Query(ge=2, le=100, description="Scores, newest first.")] = 24,
    top: Annotated[int, Query(ge=1, le=10, description="Features named per change.")] = 3,
) -> dict[str, Any]:
    """Each score says, against the one before it, how many points the probability moved
    and which inputs moved it, in words. Contributions are recomputed from the stored
    feature vectors with the served model (comparable across model versions)."""
    entry = visible_account(ctx.cache, principal, account_id)
    model = ctx.models.require()
    with ctx.sessions() as session:
        scores = scores_db.history(session, entry.account_id, limit)
    data = explain_history(model, scores, ctx.stale_input_days, top)
    return {"account_id": entry.account_id, "data": data, "count": len(data)}
