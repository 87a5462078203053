"""GET /openapi.json and /docs behind a key (every route but the health checks needs one)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from service.auth import Reader
from service.problems import problem_responses

router = APIRouter(tags=["documentation"])


@router.get("/openapi.json", include_in_schema=False, responses=problem_responses(401))
async def openapi_document(request: Request, principal: Reader) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, responses=problem_responses(401))
async def swagger_ui(principal: Reader) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="renewal API")
