"""Sign in with an API key (opens a server-side session), sign out (ends it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from service.auth import MAX_KEY_LENGTH
from service.context import Ctx
from service.ui.routes import signed_in_router
from service.ui.security import (
    check_login_token,
    end_session,
    new_login_token,
    session_secret,
    set_login_cookie,
    start_session,
)
from service.ui.templating import render, ui_base

router = APIRouter(include_in_schema=False)
signed_in = signed_in_router()


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = new_login_token()
    response = render(request, "login.html", status_code=status, login_token=token, error=error)
    set_login_cookie(response, request, token)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    api_key: Annotated[str, Form(max_length=1000)] = "",
    login_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Verify the key with the API's own verifier, open a session for it and give the
    browser only the session's token: the key itself never leaves this request."""
    if not check_login_token(request, login_token):
        return _login_page(request, 403, "The sign-in form expired; please try again.")
    secret = api_key.strip()
    principal = (
        ctx.keys.verify(secret) if secret and len(secret) <= MAX_KEY_LENGTH else None
    )
    if principal is None:
        return _login_page(request, 401, "Unknown or revoked API key.")
    replaced = session_secret(request)
    if replaced is not None:  # signing in again ends the browser's previous session
        ctx.keys.sessions.close(replaced)
    token = ctx.keys.sessions.open(principal.key_id)
    response = RedirectResponse(f"{ui_base(request)}/risk-list", status_code=303)
    start_session(response, request, token)
    return response


@signed_in.post("/logout")
def logout(request: Request, ctx: Ctx) -> Response:
    """End the session on the server (a copy of the cookie dies too), then in the browser."""
    token = session_secret(request)
    if token is not None:
        ctx.keys.sessions.close(token)
    response = RedirectResponse(f"{ui_base(request)}/login", status_code=303)
    end_session(response, request)
    return response


router.include_router(signed_in)
