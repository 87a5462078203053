"""POST /v1/accounts/{account_id}/what-if: levers a CSM can pull, before and after."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from service.api.accounts import AccountPath
from service.api.workflow_schemas import LeverList, WhatIfIn, WhatIfOut
from service.auth import Reader, visible_account
from service.context import Ctx
from service.db import scores as scores_db
from service.problems import ProblemError, problem_responses
from service.workflows.levers import LeverError, LeverRequest, what_if

router = APIRouter(prefix="/v1", tags=["workflows: what-if"])


@router.get("/levers", response_model=LeverList, responses=problem_responses(401),
            summary="The levers a CSM can pull, and the features each one changes")
def list_levers(principal: Reader) -> dict[str, Any]:
    from features.levers import LEVERS

    data = [{"name": lv.name, "description": lv.description, "features": list(lv.features),
             "value": asdict(lv.value)} for lv in LEVERS]
    return {"data": data, "count": len(data)}


@router.post(
    "/accounts/{account_id}/what-if",
    response_model=WhatIfOut,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Probability before and after each lever, and with all of them",
)
def post_what_if(account_id: AccountPath, body: WhatIfIn, principal: Reader,
                 ctx: Ctx) -> dict[str, Any]:
    """Starts from the account's latest stored feature vector and changes only the features
    the levers declare (see GET /v1/levers). Nothing is stored. CSM keys: own accounts only."""
    entry = visible_account(ctx.cache, principal, account_id)
    model = ctx.models.require()
    with ctx.sessions() as session:
        stored = scores_db.scores_by_id(session, [entry.score_id]).get(entry.score_id)
    if stored is None:
        raise ProblemError(404, "not-found", "the account's stored features are gone; retry")
    vector = dict(stored.features)
    try:
        result = what_if(model, vector, [LeverRequest(lv.name, lv.value) for lv in body.levers])
    except LeverError as exc:
        raise ProblemError(
            422, "validation-error", f"invalid {exc.field}: {exc.message}",
            errors=[{"field": exc.field, "message": exc.message, "type": "lever"}],
        ) from None
    return {
        "account_id": entry.account_id,
        "as_of": entry.as_of,
        "model": {"name": model.name, "version": model.version},
        "stored_probability": round(entry.probability, 4),
        **result,
    }
