"""GET /v1/disagreements and GET /v1/stale-inputs: where the CSM's judgement needs a look."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.workflow_schemas import DisagreementList, StaleList
from service.auth import Reader, listable_accounts
from service.cache import CachedScore
from service.context import Ctx, ServiceContext
from service.db import scores as scores_db
from service.problems import ProblemError, problem_responses
from service.workflows.config import WorkflowSettings
from service.workflows.disagreements import Thresholds, find_disagreements
from service.workflows.install import Workflows
from service.workflows.stale_inputs import stale_by_csm

router = APIRouter(prefix="/v1", tags=["workflows: judgement"])


def _setting(name: str) -> str:
    """A threshold's setting and its built-in default, for the parameter descriptions."""
    return f"RENEWAL_{name.upper()}, {WorkflowSettings.model_fields[name].default}"


#: The pair rules of the thresholds cannot be said in JSON Schema: each parameter's
#: description says them, and the route checks them, defaults included.
LOW_PROBABILITY = (
    f"Model at risk below this (default {_setting('disagreement_low_probability')}). Must be "
    "below high_probability (given or default), else 422."
)
HIGH_PROBABILITY = (
    f"Model safe above this (default {_setting('disagreement_high_probability')}). Must be "
    "above low_probability (given or default), else 422."
)
HIGH_CSM_SCORE = (
    f"...while the CSM scores at least this (default "
    f"{_setting('disagreement_high_csm_score')}). Must be above low_csm_score (given or "
    "default), else 422."
)
LOW_CSM_SCORE = (
    f"...while the CSM scores at most this (default {_setting('disagreement_low_csm_score')})."
    " Must be below high_csm_score (given or default), else 422."
)


def _pair_error(low: str, high: str, low_value: float, high_value: float) -> ProblemError:
    """422 for thresholds in the wrong order, giving both values (defaults included)."""
    message = f"must be below {high} ({low_value} >= {high_value}, defaults included)"
    return ProblemError(422, "validation-error", f"invalid query.{low}: {message}",
                        errors=[{"field": f"query.{low}", "type": "threshold_order",
                                 "message": message}])


def _vectors(ctx: ServiceContext, entries: list[CachedScore]) -> dict[int, dict[str, Any]]:
    """The stored feature vectors by score id (only that column: no whole score rows)."""
    with ctx.sessions() as session:
        return scores_db.features_by_id(session, [e.score_id for e in entries])


@router.get(
    "/disagreements",
    response_model=DisagreementList,
    responses=problem_responses(401, 403, 422),
    summary="Accounts where the model and the CSM's latest judgement disagree strongly",
)
def get_disagreements(
    principal: Reader, ctx: Ctx, workflows: Workflows,
    csm_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    low_probability: Annotated[
        float | None, Query(gt=0, lt=1, description=LOW_PROBABILITY)] = None,
    high_csm_score: Annotated[int | None, Query(ge=1, le=5, description=HIGH_CSM_SCORE)] = None,
    high_probability: Annotated[
        float | None, Query(gt=0, lt=1, description=HIGH_PROBABILITY)] = None,
    low_csm_score: Annotated[int | None, Query(ge=1, le=5, description=LOW_CSM_SCORE)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Model at risk (p < low_probability) while the CSM rates the account >= high_csm_score
    or says sponsor and core process are fine, or the reverse. Both views side by side,
    never averaged; largest gap first. Thresholds default to the RENEWAL_DISAGREEMENT_*
    settings."""
    s = workflows.settings
    thresholds = Thresholds(
        low_probability if low_probability is not None else s.disagreement_low_probability,
        high_csm_score if high_csm_score is not None else s.disagreement_high_csm_score,
        high_probability if high_probability is not None else s.disagreement_high_probability,
        low_csm_score if low_csm_score is not None else s.disagreement_low_csm_score,
    )
    if thresholds.low_probability >= thresholds.high_probability:
        raise _pair_error("low_probability", "high_probability", thresholds.low_probability,
                          thresholds.high_probability)
    if thresholds.low_csm_score >= thresholds.high_csm_score:
        raise _pair_error("low_csm_score", "high_csm_score", thresholds.low_csm_score,
                          thresholds.high_csm_score)
    # Only accounts that can disagree need their stored vector.
    entries = [e for e in listable_accounts(ctx.cache, principal, csm_id)
               if e.probability < thresholds.low_probability
               or e.probability > thresholds.high_probability]
    vectors = _vectors(ctx, entries)
    rows = [(e.account_id, e.csm_id, e.as_of, e.probability, e.risk_tier, vectors[e.score_id])
            for e in entries if e.score_id in vectors]
    found = find_disagreements(rows, thresholds, ctx.stale_input_days)
    page = found[offset : offset + limit]
    return {"thresholds": thresholds.__dict__, "total": len(found), "data": page,
            "count": len(page)}


@router.get(
    "/stale-inputs",
    response_model=StaleList,
    responses=problem_responses(401, 403, 422),
    summary="Accounts whose manual health input is stale, per CSM, for re-survey",
)
def get_stale_inputs(
    principal: Reader, ctx: Ctx,
    csm_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    """Stale = the latest health input is older than stale_input_days (feature config) at the
    score's as_of, or there is none. CSM keys see their own list."""
    entries = listable_accounts(ctx.cache, principal, csm_id)
    vectors = _vectors(ctx, entries)
    rows = [(e.account_id, e.csm_id, e.as_of, vectors[e.score_id])
            for e in entries if e.score_id in vectors]
    groups = stale_by_csm(rows, ctx.stale_input_days)
    return {"stale_input_days": ctx.stale_input_days, "data": groups, "count": len(groups)}
