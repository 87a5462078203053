"""Authentication (who is calling) and authorisation (may they), in one place.

An ASGI middleware resolves ``Authorization: Bearer <key>`` before anything else runs, so an
anonymous request never reaches routing, validation or body parsing: every route except the
two health checks answers 401 without a valid key. Routes then declare the roles they allow
with :func:`require_roles`, and every account-level check goes through :func:`visible_account`
(another CSM's account is reported as not found, so its existence does not leak).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.cache import CachedScore, ScoreCache
from service.keys import Principal, Role
from service.problems import ProblemError, forbidden, not_found, problem_response
from service.verifiers import KeyVerifier, SessionVerifier

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
PRINCIPAL_SCOPE_KEY = "renewal.principal"
MAX_KEY_LENGTH = 200
#: The ops web page (service/ui) keeps a server-side session's random token (never the key)
#: in an HttpOnly cookie; that cookie is accepted ONLY under this prefix (the API itself
#: takes nothing but the header).
UI_PREFIX = "/ui"
UI_SESSION_COOKIE = "renewal_ui_session"
#: Reachable without a key: the sign-in page and the page's static files.
UI_PUBLIC_PATHS = frozenset({"/ui/login"})
UI_PUBLIC_PREFIX = "/ui/static/"


def bearer_secret(scope: Scope) -> str | None:
    """The key of an ``Authorization: Bearer`` header, or None when absent or malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            try:
                text = value.decode("latin-1")
            except UnicodeDecodeError:
                return None
            scheme, _, secret = text.partition(" ")
            secret = secret.strip()
            if scheme.lower() != "bearer" or not secret or len(secret) > MAX_KEY_LENGTH:
                return None
            return secret
    return None


def is_ui_path(path: str) -> bool:
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def session_token(scope: Scope) -> str | None:
    """The token of the web page's session cookie, or None when absent or malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            token = cookie_parser(value.decode("latin-1")).get(UI_SESSION_COOKIE, "").strip()
            if token and len(token) <= MAX_KEY_LENGTH:
                return token
    return None


def ui_sign_in(scope: Scope) -> Response:
    """Where an anonymous web-page request goes: the sign-in page (htmx: a full redirect)."""
    target = scope.get("root_path", "") + UI_PREFIX + "/login"
    if any(name == b"hx-request" for name, _ in scope.get("headers", ())):
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    response.delete_cookie(UI_SESSION_COOKIE, path=UI_PREFIX)
    return response


class AuthMiddleware:
    """401 before anything else for a missing, unknown or revoked key (except health checks).

    Under ``/ui`` (the ops web page) the caller is the key of the session named by the
    session cookie instead of the header's key, and an anonymous request is sent to the
    sign-in page instead of a 401. Neither credential works in the other's place: a session
    token is no key, a key is no session token."""

    def __init__(self, app: ASGIApp, verifier: KeyVerifier, retry_after_seconds: int = 5) -> None:
        self.app = app
        self.verifier = verifier
        self.retry_after = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in PUBLIC_PATHS
            or path in UI_PUBLIC_PATHS
            or path.startswith(UI_PUBLIC_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        ui = is_ui_path(path)
        credential = session_token(scope) if ui else bearer_secret(scope)
        verifier: KeyVerifier | SessionVerifier = self.verifier.sessions if ui else self.verifier
        principal = None
        if credential is not None:
            principal = verifier.cached(credential)
            if principal is None:
                try:
                    principal = await anyio.to_thread.run_sync(verifier.verify, credential)
                except SQLAlchemyError:
                    response = problem_response(
                        503,
                        "database-unavailable",
                        "the key store is not reachable; retry later",
                        headers={"Retry-After": str(self.retry_after)},
                    )
                    await response(scope, receive, send)
                    return
        if principal is None and ui:
            await ui_sign_in(scope)(scope, receive, send)
            return
        if principal is None:
            detail = (
                "missing API key: send 'Authorization: Bearer <key>'"
                if credential is None
                else "unknown or revoked API key"
            )
            response = problem_response(
                401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="renewal"'}
            )
            await response(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)


#: Documents the Bearer scheme in OpenAPI (``service.app`` marks every operation but the
#: health checks with it); no dependency reads the header again: AuthMiddleware did.
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "API key created with `renewal keys create`; roles crm, csm, admin.",
}


def principal_of(request: Request) -> Principal:
    """The caller set by :class:`AuthMiddleware` (401 if a route is reached without one)."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise ProblemError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="renewal"'},
        )
    return principal


async def get_principal(request: Request) -> Principal:
    """The caller, any role."""
    return principal_of(request)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency that lets only ``roles`` through (403 otherwise).

    Dependencies here are ``async`` on purpose: a sync one would cost a thread hop per
    request (measured: the largest single cost of the hot GET); and one node, not a chain
    (each dependency FastAPI solves costs as much as the route's own work on the hot GET)."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal.role not in allowed:
            raise forbidden(
                f"role {principal.role!r} may not use this operation "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    return dependency


AnyRole = Annotated[Principal, Depends(require_roles("crm", "csm", "admin"))]
Reader = AnyRole
CsmOrAdmin = Annotated[Principal, Depends(require_roles("csm", "admin"))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]


def visible_account(cache: ScoreCache, principal: Principal, account_id: str) -> CachedScore:
    """The account's cached score if it exists and the caller may see it; 404 otherwise."""
    entry = cache.get(account_id)
    if entry is None or not principal.may_see(entry.csm_id):
        raise not_found(f"no scored account {account_id!r} is visible to this key")
    return entry


def listable_accounts(
    cache: ScoreCache, principal: Principal, csm_id: str | None
) -> list[CachedScore]:
    """Scored accounts a workflow list may show, in risk order, of ``csm_id`` when given: a
    CSM key's own only, and asking for another CSM's is a 403."""
    if principal.role == "csm":
        if csm_id is not None and csm_id != principal.csm_id:
            raise forbidden("a CSM key lists only its own accounts")
        csm_id = principal.csm_id
    return [e for e in cache.risk_order
            if principal.may_see(e.csm_id) and (csm_id is None or e.csm_id == csm_id)]


def check_visible_ids(
    cache: ScoreCache, principal: Principal, account_ids: list[str]
) -> list[CachedScore]:
    """All requested accounts, or one 404 listing every id that is unknown or not visible."""
    entries: list[CachedScore] = []
    missing: list[str] = []
    for account_id in account_ids:
        entry = cache.get(account_id)
        if entry is None or not principal.may_see(entry.csm_id):
            missing.append(account_id)
        else:
            entries.append(entry)
    if missing:
        raise not_found(
            f"{len(missing)} account(s) are not scored or not visible to this key",
            missing_account_ids=missing[:100],
        )
    return entries


def shown_path(principal: Principal, path: str | Path) -> str:
    """A server path as ``principal`` may see it: whole for admin keys, only its last name for
    the others (the server's layout is for operators)."""
    return str(path) if principal.role == "admin" else Path(path).name


def principal_summary(principal: Principal) -> dict[str, Any]:
    """What a response may say about its caller (never the key itself)."""
    return {"key_id": principal.key_id, "role": principal.role, "csm_id": principal.csm_id}
