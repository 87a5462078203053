"""GET /v1/accounts/{account_id}/renewal: the CRM's call, served from memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from service.api.schemas import Renewal
from service.auth import Reader, visible_account
from service.context import ServiceContext
from service.problems import problem_responses

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

AccountPath = Annotated[str, Path(min_length=1, max_length=200, examples=["A000042"])]


@router.get(
    "/{account_id}/renewal",
    response_model=Renewal,
    responses=problem_responses(401, 403, 404, 422),
    summary="Latest renewal probability with its drivers in words",
)
async def get_renewal(account_id: AccountPath, principal: Reader, request: Request) -> Response:
    """The latest stored score (no model work per request): probability, risk tier, the
    heuristic's probability, change over 30 days and the top risk drivers and protective
    factors. CSM keys see only their own accounts (others answer 404)."""
    # The context straight from the app, not the Ctx dependency: the CRM's hot call, where
    # each dependency FastAPI solves costs a measurable share (docs/performance.md).
    ctx: ServiceContext = request.app.state.context
    entry = visible_account(ctx.cache, principal, account_id)
    ctx.telemetry.scores_served.labels("renewal").inc()
    return Response(content=entry.body, media_type="application/json")
