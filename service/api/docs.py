"""GET /openapi.json behind a key (every route but the health checks needs one).

No Swagger page: FastAPI's loads its script from a CDN (unpinned, without an integrity
check) onto the service's own origin, which the ops web page shares, and a browser opening
it sends no API key, so it answered 401 anyway. Load ``/openapi.json`` (with the key) into
any OpenAPI viewer instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.auth import Reader
from service.problems import problem_responses

router = APIRouter(tags=["documentation"])


@router.get("/openapi.json", include_in_schema=False, responses=problem_responses(401))
async def openapi_document(request: Request, principal: Reader) -> JSONResponse:
    return JSONResponse(request.app.openapi())
