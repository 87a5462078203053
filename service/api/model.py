"""GET /v1/model: the model card of what is served now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.schemas import ModelCard
from service.auth import Reader
from service.context import Ctx
from service.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["model"])
#: What a reload refusal says to keys other than admin (its reason names paths and URIs).
HIDDEN_REASON = "refused (an admin key sees why)"


@router.get(
    "/model",
    response_model=ModelCard,
    responses=problem_responses(401, 403, 503),
    summary="Model card: version, alias, training window, test metrics vs the heuristic",
)
def get_model(principal: Reader, ctx: Ctx) -> dict[str, Any]:
    """Also says where the model came from (registry or last-known-good copy), the last
    reload that was refused, with its reason, and the outcome of the last reload of this
    worker (``last_reload``: swapped, unchanged or refused; null before the first). The
    reasons name model paths and registry URIs: admin keys read them, the others read
    where the model came from and that a reload was refused."""
    model = ctx.models.require()
    refusal = ctx.models.last_refusal
    reload = ctx.models.last_reload
    admin = principal.role == "admin"
    refused = refusal.as_dict() if refusal else None
    last = reload.as_dict() if reload else None
    if not admin:
        if refused is not None:
            refused["reason"] = HIDDEN_REASON
        if last is not None and last["outcome"] == "refused":
            last["detail"] = f"{HIDDEN_REASON}; still serving v{model.version}"
    return {
        **model.card,
        "status": ctx.models.status,
        "status_reason": ctx.models.status_reason if admin else ctx.models.public_reason,
        "last_refusal": refused,
        "last_reload": last,
    }
