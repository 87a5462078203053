"""Jinja2 templates of the web page, with the number formats every view shares."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from service.auth import PRINCIPAL_SCOPE_KEY
from service.keys import Principal
from service.ui.security import CSRF_FIELD, csrf_token, session_secret

TEMPLATES_DIR = Path(__file__).parent / "templates"
MINUS = "\u2212"


def percent(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def chance(probability: float | None) -> str:
    """A renewal probability in whole percent, rounded down, so that it agrees with the risk
    tier shown beside it: with high risk below 50 %, 0.4996 reads "49%" (rounded, "50%"
    next to a "High" badge). The small tolerance keeps 0.57 (56.99999… in floats) at 57."""
    if probability is None or (isinstance(probability, float) and math.isnan(probability)):
        return "n/a"
    return f"{math.floor(100 * probability + 1e-9)}%"


def points(change: float | None, scale: float = 100.0, digits: int | None = None) -> str:
    """A probability change in percentage points, signed: "+4 pts", "−14 pts". ``digits``
    fixes the decimals (default: one below 10 points, none above), e.g. to match the
    value written on a chart's bar beside it."""
    if change is None:
        return "n/a"
    fixed = digits is not None
    if digits is None:
        digits = 1 if abs(change * scale) < 10 else 0
    value = round(change * scale, digits)
    if value == 0:
        return "0 pts"
    if fixed:
        text = f"{abs(value):.{digits}f} pts"
    else:
        text = f"{abs(value):g} pt{'s' if abs(value) != 1 else ''}"
    return ("+" if value > 0 else MINUS) + text


def money(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.0f}"


def trend(change: float | None) -> str:
    """CSS class of a probability change as shown (a change that rounds to 0 is neither)."""
    if change is None or round(change * 100, 1) == 0:
        return ""
    return "up" if change > 0 else "down"


def days(value: int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value} day{'' if value == 1 else 's'}"


def yes_no(value: Any) -> str:
    if value is None:
        return "unknown"
    return "yes" if value else "no"


@cache
def templates() -> Jinja2Templates:
    """The page's template set, built on first use (nothing at import time)."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters.update(percent=percent, chance=chance, points=points, money=money, yes_no=yes_no,
                       trend=trend, days=days,
                       q=lambda value: quote(str(value), safe=""))
    env.globals.update(urlencode=urlencode)
    return templates


def ui_base(request: Request) -> str:
    """The page's own path prefix (``/ui`` behind any root path): links are built on it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def page_context(request: Request, **values: Any) -> dict[str, Any]:
    """What every page needs: who is signed in and the CSRF token of the session."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    secret = session_secret(request)
    return {
        "principal": principal if isinstance(principal, Principal) else None,
        "csrf_token": csrf_token(secret) if secret else "",
        "csrf_field": CSRF_FIELD,
        "htmx": request.headers.get("hx-request") == "true",
        "ui": ui_base(request),
        **values,
    }


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
    return templates().TemplateResponse(
        request, name, page_context(request, **values), status_code=status_code
    )
