"""The page's routes, one module per view; every signed-in route checks the CSRF token of
unsafe requests (:func:`signed_in_router`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.ui.security import require_csrf


def signed_in_router() -> APIRouter:
    """A router whose every route refuses a POST without the session's CSRF token (the
    session and its key were checked by the auth middleware before routing)."""
    return APIRouter(dependencies=[Depends(require_csrf)], include_in_schema=False)
