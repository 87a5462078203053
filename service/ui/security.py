"""The web page's session cookie, CSRF tokens and security headers.

- Session: server-side. Signing in with an API key (verified by the API's own
  :class:`~service.auth.KeyVerifier`) stores a session (``ui_sessions``: the SHA-256 of a
  random 256-bit token, the key's id, an expiry 8 hours on); the browser gets only the token,
  in an HttpOnly, SameSite=Strict cookie scoped to ``/ui`` (Secure over https). The cookie
  is therefore not the key: it opens nothing on the API (which takes keys only, in the
  header), and signing out deletes the session, so a copy of the cookie dies with it.
  :class:`service.auth.AuthMiddleware` resolves the token on every ``/ui`` request (session
  not expired, key not revoked) with the same short cache as keys, so a revoked key signs
  the page out as fast as it stops working on the API, and roles and account visibility
  are the API's.
- CSRF: every POST carries a token (hidden form field, or the ``X-CSRF-Token`` header htmx
  sends), an HMAC of a fixed label keyed by the session token: only a page served in that
  session knows it, and it reveals nothing of the token. The sign-in form, which has no
  session yet, uses a double-submit cookie (random value in a SameSite=Strict cookie and in
  the form).
- Headers: a Content-Security-Policy that allows nothing but this origin (no inline script
  or style: the page's JavaScript and CSS are static files), no framing, no MIME sniffing,
  no referrer to other sites; HSTS over https.
- "Over https" includes a TLS-terminating proxy that says so (``X-Forwarded-Proto: https``
  or ``Forwarded: proto=https``): uvicorn rewrites the scheme only for proxies on 127.0.0.1,
  and a session cookie set without ``Secure`` behind any other proxy would be sent in clear
  text over a plain-http request. Claiming https can only make the caller's own cookie
  stricter, so the header needs no list of trusted proxies here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import UI_PREFIX, UI_SESSION_COOKIE, session_token
from service.db.ui_sessions import SESSION_LIFETIME
from service.problems import ProblemError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "renewal_ui_login"
#: The cookie lasts as long as the session it names (the server enforces the session's own
#: expiry; its key is checked on every request).
SESSION_MAX_AGE_SECONDS = int(SESSION_LIFETIME.total_seconds())
_CSRF_LABEL = b"renewal-ui-csrf-v1"
#: Sent on responses to https requests: browsers then never use plain http for this host.
HSTS = "max-age=31536000"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: HMAC-SHA256 keyed by the session token (never the token
    itself, which the page's script must not be able to learn)."""
    return hmac.new(session_token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def session_secret(request: Request) -> str | None:
    """The session token of the request's cookie (the middleware checked it on /ui)."""
    return session_token(request.scope)


async def require_csrf(request: Request) -> None:
    """Dependency of every signed-in route: a POST without the session's token is a 403."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    secret = session_secret(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if secret is None or not sent or not hmac.compare_digest(sent, csrf_token(secret)):
        raise ProblemError(403, "csrf", "missing or wrong CSRF token: reload the page")


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def check_login_token(request: Request, sent: str | None) -> bool:
    """Double-submit check of the sign-in form (its cookie is SameSite=Strict)."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(expected and sent and hmac.compare_digest(expected, sent))


def _forwarded_https(headers: Headers) -> bool:
    """A proxy says the browser's connection is https (the first, client-side hop)."""
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if proto == "https":
        return True
    first_hop = headers.get("forwarded", "").split(",")[0]
    for pair in first_hop.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.strip().lower() == "proto" and value.strip().strip('"').lower() == "https":
            return True
    return False


def is_https(scope: Scope) -> bool:
    """Whether the browser reached the page over https (directly or through a TLS proxy)."""
    return scope.get("scheme") == "https" or _forwarded_https(Headers(scope=scope))


def _secure(request: Request) -> bool:
    return is_https(request.scope)


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, path=f"{UI_PREFIX}/login",
        httponly=True, samesite="strict", secure=_secure(request),
    )


def start_session(response: Response, request: Request, token: str) -> None:
    """Give the browser the new session's token in a cookie readable by no script, sent by
    no other site, and only to the web page's own paths."""
    response.set_cookie(
        UI_SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_SECONDS, path=UI_PREFIX,
        httponly=True, samesite="strict", secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=f"{UI_PREFIX}/login")


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        UI_SESSION_COOKIE, path=UI_PREFIX, httponly=True, samesite="strict",
        secure=_secure(request),
    )


class SecurityHeadersMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every response of the web page (static files too);
    pages that show account data are never stored by a shared cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith(f"{UI_PREFIX}/static/")
        https = is_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers["cache-control"] = "no-store"
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
