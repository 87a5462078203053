"""HTTP routers of the scoring service: :data:`ROUTERS` lists them all (the core routes and
the customer-success workflows of issue 8); :func:`include_routes` puts them on an app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

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
    scoring_runs,
    survey_followups,
    webhooks,
    what_if,
)
from service.limits import KnownQueryOnly, declared_query_parameters

ROUTERS: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (
        health,
        accounts,
        score,
        risk_list,
        health_inputs,
        metrics,
        model,
        scoring_runs,
        admin,
        # customer-success workflows (cores in service/workflows/)
        what_if,
        renewal_history,
        disagreements,
        interventions,
        survey_followups,
        forecast,
        webhooks,
        # operations and documentation
        prometheus,
        docs,
    )
)


def _takes_query(router: APIRouter) -> bool:
    return any(
        declared_query_parameters(route.dependant)
        for route in router.routes
        if isinstance(route, APIRoute)
    )


def include_routes(app: FastAPI) -> None:
    """Every router straight on the app; routes that take query parameters refuse ones they
    do not declare (see service.limits; a route without any ignores the query string, so
    it needs no check). Not through one umbrella router and no dependency that does nothing:
    FastAPI matches nested routers level by level and solves every dependency per request,
    each a measurable share of the hot GET."""
    for router in ROUTERS:
        app.include_router(router, dependencies=[KnownQueryOnly] if _takes_query(router) else [])
