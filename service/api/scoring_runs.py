"""GET /v1/scoring-runs: what each `renewal score` run scored, and what it said about its data.

A run's warnings (usage ending before the as-of date, an input or a threshold the model was
trained with and the data lacks) used to reach only the console of whoever ran the job; the
people reading the scores over the API need them as much, to know how far to trust them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.schemas import ScoringRunsOut
from service.auth import Reader, shown_path
from service.context import Ctx
from service.db import scores as scores_db
from service.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["model"])


@router.get(
    "/scoring-runs",
    response_model=ScoringRunsOut,
    responses=problem_responses(401, 403, 422, 503),
    summary="Recent scoring runs: date, model, accounts scored and lost, and their warnings",
)
def get_scoring_runs(
    principal: Reader, ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100, description="Runs, newest first.")] = 10,
) -> dict[str, Any]:
    """The data directory is the server's full path for admin keys, its name for the others
    (as ``outcomes_from`` of the save rate). ``warnings`` and ``accounts_lost`` are null for
    runs stored before they were recorded (unknown, not none)."""
    with ctx.sessions() as session:
        runs = scores_db.recent_runs(session, limit)
    data = [
        {
            "run_id": run.id,
            "as_of": run.as_of,
            "model_name": run.model_name,
            "model_version": run.model_version,
            "accounts_scored": run.accounts_scored,
            "accounts_lost": run.accounts_lost,
            "warnings": run.warnings,
            "data_dir": shown_path(principal, run.data_dir),
            "started_at": run.started_at,
            "finished_at": run.finished_at,
        }
        for run in runs
    ]
    return {"data": data, "count": len(data)}
