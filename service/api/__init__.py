"""HTTP routers of the scoring service; :data:`api_router` includes them all (the core
routes and the customer-success workflows of issue 8)."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import (
    accounts,
    admin,
    disagreements,
    docs,
    forecast,
    health,
    health_inputs,
    interventions,
    metrics,
    model,
    prometheus,
    renewal_history,
    risk_list,
    score,
    webhooks,
    what_if,
)
from service.limits import KnownQueryOnly

#: Every route refuses query parameters it does not declare (see service.limits).
api_router = APIRouter(dependencies=[KnownQueryOnly])
for module in (
    health,
    accounts,
    score,
    risk_list,
    health_inputs,
    metrics,
    model,
    admin,
    # customer-success workflows (cores in service/workflows/)
    what_if,
    renewal_history,
    disagreements,
    interventions,
    forecast,
    webhooks,
    # operations and documentation
    prometheus,
    docs,
):
    api_router.include_router(module.router)
