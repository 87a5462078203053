"""Interventions (save attempts) and GET /v1/save-rate: saves measured against expectation."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from service.api.accounts import AccountPath
from service.api.workflow_schemas import (
    InterventionIn,
    InterventionList,
    InterventionOut,
    SaveRateOut,
)
from service.auth import CsmOrAdmin, Reader, shown_path, visible_account
from service.context import Ctx
from service.data_dirs import outcomes_dir
from service.db.engine import transaction
from service.db.models import utc_now
from service.db.workflow_models import Intervention
from service.problems import problem_responses
from service.workflows.install import Workflows
from service.workflows.interventions import AssignedAttempt, save_rate
from service.workflows.outcomes import load_contracts

router = APIRouter(prefix="/v1", tags=["workflows: save rate"])
#: Bounds of ?confidence: closer to 1 the normal quantile rounds to infinity (a 0.9999999999999999
#: was a 500, found by fuzzing); below 0.5 an "interval" says nothing.
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.999


def _view(row: Intervention) -> dict[str, Any]:
    return {c: getattr(row, c) for c in InterventionOut.model_fields}


@router.post(
    "/accounts/{account_id}/interventions",
    response_model=InterventionOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 413, 422),
    summary="Record a save attempt (who, when, playbook, note) with today's probability",
)
def post_intervention(account_id: AccountPath, body: InterventionIn, principal: CsmOrAdmin,
                      ctx: Ctx) -> dict[str, Any]:
    """Who is the calling key, when is now (no back-dating): the probability at assignment
    is the account's latest score, which the save rate is later measured against. The note
    is private: stored, returned to the account's readers, never logged or sent out."""
    entry = visible_account(ctx.cache, principal, account_id)
    with transaction(ctx.sessions) as session:
        row = Intervention(
            account_id=entry.account_id, csm_id=entry.csm_id, author=principal.key_id,
            playbook=body.playbook.strip(), note=body.note, assigned_at=utc_now(),
            probability_at_assignment=entry.probability, score_as_of=entry.as_of,
            model_version=entry.model_version,
        )
        session.add(row)
        session.flush()
        return _view(row)


@router.get(
    "/accounts/{account_id}/interventions",
    response_model=InterventionList,
    responses=problem_responses(401, 403, 404, 422),
    summary="An account's save attempts, newest first",
)
def list_interventions(account_id: AccountPath, principal: CsmOrAdmin, ctx: Ctx,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    entry = visible_account(ctx.cache, principal, account_id)
    with ctx.sessions() as session:
        rows = session.scalars(
            select(Intervention).where(Intervention.account_id == entry.account_id)
            .order_by(Intervention.assigned_at.desc(), Intervention.id.desc()).limit(limit)
        ).all()
    data = [_view(r) for r in rows]
    return {"data": data, "count": len(data)}


@router.get(
    "/save-rate",
    response_model=SaveRateOut,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Save rate per CSM or playbook: actual vs expected renewals, uplift with CI",
)
def get_save_rate(
    principal: Reader, ctx: Ctx, workflows: Workflows,
    by: Annotated[Literal["csm", "playbook", "all", "csm_id"], Query(
        description="csm_id is taken for csm, as the metrics name it.")] = "csm",
    confidence: Annotated[
        float | None,
        Query(
            ge=MIN_CONFIDENCE,
            le=MAX_CONFIDENCE,
            description="Level of the uplift interval (default RENEWAL_SAVE_RATE_CONFIDENCE).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Accounts assigned, renewals among decided ones, expected renewals (Σ probability at
    assignment) and uplift = actual − expected with a normal interval (variance Σ p(1−p)).
    CSM keys see their own attempts."""
    by = "csm" if by == "csm_id" else by
    data_dir = outcomes_dir(ctx, workflows.settings.outcomes_data_dir)
    contracts = load_contracts(data_dir)
    contracts = contracts.assign(account_id=contracts["account_id"].astype(str))
    with ctx.sessions() as session:
        stmt = select(Intervention)
        if principal.role == "csm":
            stmt = stmt.where(Intervention.csm_id == principal.csm_id)
        rows = session.scalars(stmt).all()
    attempts = [AssignedAttempt(r.account_id, r.csm_id, r.playbook, r.assigned_at.date(),
                                r.probability_at_assignment) for r in rows]
    level = confidence or workflows.settings.save_rate_confidence
    return {"by": by, "outcomes_from": shown_path(principal, data_dir),
            "data": save_rate(attempts, contracts, by, level,
                              ctx.service_settings.risk_medium_below)}
