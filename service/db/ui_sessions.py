"""Sessions of the ops web page, stored server-side so that signing out really ends them.

The browser holds a random token (256 bits); the table holds only its SHA-256, so neither a
copy of the table nor a log of it signs anyone in. A session is good while it has not
expired and its API key is not revoked: the look-up joins the key, so ``renewal keys
revoke`` ends the key's sessions without touching this table.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.models import ApiKey, UiSession, utc_now
from service.keys import Principal

#: A signed-in page lasts a working day (the cookie's Max-Age is the same).
SESSION_LIFETIME = timedelta(hours=8)


class ActiveSession(NamedTuple):
    """Who a session signs in, and until when (a cache must not trust it any longer)."""

    principal: Principal
    expires_at: datetime


def hash_token(token: str) -> str:
    """Hex SHA-256 of a session token (a random 256-bit token needs no stretching)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session, key_id: str, now: datetime | None = None,
    lifetime: timedelta = SESSION_LIFETIME,
) -> str:
    """Store a new session of ``key_id``; returns its token (given to the browser only).

    Expired sessions are purged on the way: sign-in is rare, so it is a cheap moment to
    keep the table from growing without a background job."""
    now = now or utc_now()
    purge_expired(session, now)
    token = secrets.token_urlsafe(32)
    session.add(UiSession(
        token_hash=hash_token(token), key_id=key_id, created_at=now, expires_at=now + lifetime,
    ))
    session.flush()
    return token


def find_session(session: Session, token: str, now: datetime | None = None) -> ActiveSession | None:
    """The signed-in key of an unexpired session whose key is not revoked, else None."""
    row = session.execute(
        select(ApiKey, UiSession.expires_at)
        .join(UiSession, UiSession.key_id == ApiKey.id)
        .where(
            UiSession.token_hash == hash_token(token),
            UiSession.expires_at > (now or utc_now()),
            ApiKey.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    key, expires_at = row
    principal = Principal(key_id=key.id, role=key.role, csm_id=key.csm_id, name=key.name)  # type: ignore[arg-type]
    return ActiveSession(principal, expires_at)


def close_session(session: Session, token: str) -> bool:
    """Delete the session (sign-out); False when there was none (already ended)."""
    result = session.execute(delete(UiSession).where(UiSession.token_hash == hash_token(token)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete every expired session; returns how many."""
    result = session.execute(delete(UiSession).where(UiSession.expires_at <= (now or utc_now())))
    return int(result.rowcount)  # type: ignore[attr-defined]
