"""GET /v1/forecast: expected renewed ARR and logos of upcoming renewals, with intervals."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query

from service.api.interventions import MAX_CONFIDENCE, MIN_CONFIDENCE
from service.api.workflow_schemas import ForecastOut
from service.auth import Reader
from service.context import Ctx
from service.data_dirs import outcomes_dir
from service.problems import ProblemError, problem_responses
from service.workflows.forecast import forecast_table, renewals_due_in
from service.workflows.install import Workflows

router = APIRouter(prefix="/v1", tags=["workflows: forecast"])
METHOD = ("logos: exact Poisson-binomial (normal approximation above 5,000 contracts); "
          "ARR: seeded Monte Carlo of Σ arr·Bernoulli(p); terms already decided count as "
          "known outcomes")


@router.get(
    "/forecast",
    response_model=ForecastOut,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Renewal forecast by month, CSM or segment, with prediction intervals",
)
def get_forecast(
    principal: Reader, ctx: Ctx, workflows: Workflows,
    by: Annotated[Literal["month", "csm", "segment", "csm_id"], Query(
        description="csm_id is taken for csm, as the metrics name it.")] = "month",
    months: Annotated[int, Query(ge=1, le=36, description="Renewals ending this many months "
                                 "after as_of.")] = 12,
    level: Annotated[float | None, Query(ge=MIN_CONFIDENCE, le=MAX_CONFIDENCE)] = None,
) -> dict[str, Any]:
    """Contracts in force on the latest scoring as_of that end within ``months``; each
    renews with its account's latest calibrated probability, independently, unless its
    outcome is already recorded. CSM keys see their own accounts only."""
    by = "csm" if by == "csm_id" else by
    as_of = ctx.cache.latest_as_of
    if as_of is None:
        raise ProblemError(404, "no-scoring-run", "no scores yet: run `renewal score` first")
    s = workflows.settings
    start = pd.Timestamp(as_of)
    due = renewals_due_in(outcomes_dir(ctx, s.outcomes_data_dir), start,
                          start + pd.DateOffset(months=months))
    entries = {e.account_id: e for e in ctx.cache.risk_order if principal.may_see(e.csm_id)}
    if principal.role == "csm":
        due = due[due["account_id"].isin(entries)]
    scored = due["account_id"].isin(entries)
    unscored = due[~scored]
    rows = due[scored].copy()
    rows["probability"] = [entries[a].probability for a in rows["account_id"]]
    rows["csm"] = [entries[a].csm_id for a in rows["account_id"]]
    rows["segment"] = [entries[a].segment for a in rows["account_id"]]
    chosen = level or s.forecast_level
    groups, total = forecast_table(rows, by, chosen, s.forecast_draws, s.forecast_seed)
    return {
        "by": by, "as_of": as_of, "level": chosen, "method": METHOD,
        "data": [g.as_dict() for g in groups], "total": total.as_dict(),
        "unscored": {"contracts": len(unscored), "arr": float(unscored["arr"].sum())},
    }
