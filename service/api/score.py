"""POST /v1/score: score up to 1,000 accounts now, by id or as what-if vectors."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from service.api.schemas import ScoreRequest, ScoreResponse
from service.auth import Reader
from service.context import Ctx
from service.problems import ProblemError, problem_responses
from service.whatif import json_bytes, score_account_ids, score_what_if

router = APIRouter(prefix="/v1", tags=["scoring"])


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses=problem_responses(401, 403, 404, 413, 422, 503),
    summary="Score accounts with the served model (latest features or what-if vectors)",
)
def post_score(body: ScoreRequest, principal: Reader, ctx: Ctx) -> Response:
    """Contributions are computed on the fly with the model served now. With ``account_ids``
    each account's latest stored feature vector is scored; with ``accounts`` the given
    features are scored (with ``account_id``: on top of that account's latest vector, e.g.
    "what if the exec sponsor were active?"). Nothing is stored. CSM keys may name only
    their own accounts; one unknown or foreign id answers 404 listing it."""
    limit = ctx.service_settings.max_batch_accounts
    count = len(body.account_ids or body.accounts or [])
    if count > limit:
        raise ProblemError(
            413, "batch-too-large", f"{count} accounts in one request; the limit is {limit}"
        )
    if body.account_ids is not None:
        results = score_account_ids(ctx, principal, body.account_ids, body.top_k)
    else:
        results = score_what_if(ctx, principal, body.accounts or [], body.top_k)
    ctx.telemetry.scores_served.labels("score").inc(len(results))
    # Rendered directly: the bodies are built here in the documented shape (tests validate
    # them against ScoreResponse); re-validating 1,000 of them would cost more than scoring.
    return Response(json_bytes({"results": results, "count": len(results)}),
                    media_type="application/json")
