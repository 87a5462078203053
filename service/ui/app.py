"""The page as a sub-application mounted at ``/ui``: its routes, static files, HTML error
pages and security headers, apart from the JSON API's (problem+json, OpenAPI)."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from renewal.errors import ModelUnavailableError, RenewalError
from service.problems import ProblemError, UnexpectedErrorMiddleware, where_raised
from service.ui.routes import account, cohorts, risk_list, session
from service.ui.security import SecurityHeadersMiddleware
from service.ui.templating import render

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("service.ui")
_TARGET = re.compile(r"[a-z][a-z0-9-]{0,40}")


#: Error headings in a CS user's words (HTTP's own phrases, "Unprocessable Entity", are not).
TITLES = {
    400: "Something in the request is not right",
    403: "Not allowed with this key",
    404: "Not found",
    409: "Changed meanwhile",
    413: "Too much at once",
    422: "Please check what you entered",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Not available right now",
}


def error_title(status: int) -> str:
    """The heading of an error page or message."""
    return TITLES.get(status) or HTTPStatus(status).phrase


def error_page(request: Request, status: int, detail: str) -> Response:
    """The error as a page, or for an htmx request as a message in the status line of the
    part of the page that asked (every htmx target ``#x`` holds a ``#x-status``)."""
    if request.headers.get("hx-request") != "true":
        return render(request, "error.html", status_code=status, status=status,
                      title=error_title(status), detail=detail)
    response = render(request, "partials/error.html", status_code=status, status=status,
                      title=error_title(status), detail=detail)
    target = request.headers.get("hx-target", "")
    if _TARGET.fullmatch(target):
        response.headers["HX-Retarget"] = f"#{target}-status"
        response.headers["HX-Reswap"] = "innerHTML"
        # The message itself, whatever the form selects from a page (the risk list's
        # hx-select="#risk-results" threw it away), and no push of the refused URL
        # (found by audit: the bad filter stayed in the address bar, the list unchanged).
        response.headers["HX-Reselect"] = ".alert"
        response.headers["HX-Push-Url"] = "false"
    return response


def install_error_pages(ui: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        response = error_page(request, exc.status, exc.detail)
        response.headers.update({k: v for k, v in exc.headers.items()
                                 if k.lower() == "retry-after"})
        return response

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = "there is no such page"
        return error_page(request, exc.status_code, detail)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return error_page(request, 422, f"invalid input: {fields}")

    async def on_domain(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ModelUnavailableError):
            return error_page(request, 503, "no model is loaded yet; try again in a minute")
        return error_page(request, 503, "the data behind this page cannot be read right now")

    async def on_database(request: Request, exc: Exception) -> Response:
        log.error("database unavailable: %s", type(exc).__name__)
        return error_page(request, 503, "the score database is not reachable; retry later")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on the web page at\n%s", type(exc).__name__, where_raised(exc))
        return error_page(request, 500, "an unexpected error occurred")

    ui.add_exception_handler(ProblemError, on_problem)
    ui.add_exception_handler(StarletteHTTPException, on_http)
    ui.add_exception_handler(RequestValidationError, on_validation)
    ui.add_exception_handler(RenewalError, on_domain)
    ui.add_exception_handler(SQLAlchemyError, on_database)
    ui.add_exception_handler(Exception, on_unexpected)
    # Answered here, not re-raised to the server, which would log the message (customer data).
    ui.add_middleware(UnexpectedErrorMiddleware, handler=on_unexpected)


def create_ui_app(parent: FastAPI) -> FastAPI:
    """The page's sub-application; it shares ``parent.state`` (the service context and the
    workflows), so its routes reach the same cache, model and database as the API."""
    ui = FastAPI(title="renewal ops page", docs_url=None, redoc_url=None, openapi_url=None)
    ui.state = parent.state
    ui.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (session, risk_list, account, cohorts):
        ui.include_router(module.router)
    install_error_pages(ui)
    ui.add_middleware(SecurityHeadersMiddleware)
    return ui
