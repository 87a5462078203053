"""HTTP routers of the scoring service; :data:`api_router` includes them all."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import (
    accounts,
    admin,
    docs,
    health,
    health_inputs,
    metrics,
    model,
    prometheus,
    risk_list,
    score,
)

api_router = APIRouter()
for module in (
    health,
    accounts,
    score,
    risk_list,
    health_inputs,
    metrics,
    model,
    admin,
    prometheus,
    docs,
):
    api_router.include_router(module.router)
