"""GET /metrics: Prometheus exposition (admin key; scrapers send it as a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.auth import Admin
from service.context import Ctx
from service.problems import problem_responses

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."},
        **problem_responses(401, 403),
    },
    summary="Prometheus metrics: requests and latency per route, model version, scores served",
)
def prometheus_metrics(principal: Admin, ctx: Ctx) -> Response:
    return Response(ctx.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
