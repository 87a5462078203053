"""Who holds a credential: API keys and the ops page's sessions, checked against the database
with a short positive cache so the hot path skips it (``RENEWAL_KEY_CACHE_SECONDS``)."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import transaction
from service.db.models import utc_now
from service.db.ui_sessions import (
    SESSION_LIFETIME,
    close_session,
    find_session,
    hash_token,
    open_session,
)
from service.keys import Principal, find_principal, hash_key

#: Sign-outs remembered per worker (each for a session's lifetime, 8 h).
_MAX_CLOSED = 10_000


class _TrustCache(dict[str, tuple[Principal, float]]):
    """Credential digest → (principal, monotonic deadline): the short positive cache of keys
    and page sessions. Refusals are never cached, so a key or session created a moment ago
    works at once; a revoked one stops working within ``ttl`` seconds."""

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__()
        self.ttl = ttl_seconds

    def trusted(self, digest: str) -> Principal | None:
        hit = self.get(digest)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def trust(self, digest: str, principal: Principal | None, at_most_seconds: float) -> None:
        """Trust ``principal`` for the TTL (never beyond ``at_most_seconds``); None forgets."""
        seconds = min(self.ttl, at_most_seconds)
        if principal is None or seconds <= 0:
            self.pop(digest, None)
            return
        if len(self) > 10_000:
            self.clear()
        self[digest] = (principal, time.monotonic() + seconds)


class SessionVerifier:
    """Session token of the ops web page → principal, cached like keys (see :class:`_TrustCache`).

    An ended session or a revoked key stops working within the TTL on every worker; the
    worker that signs a session out forgets it at once, even while a check that read the
    session just before the sign-out is still under way (it remembers what it closed)."""

    def __init__(self, session_factory: sessionmaker[Session], ttl_seconds: float) -> None:
        self._factory = session_factory
        self._cache = _TrustCache(ttl_seconds)
        self._closed: dict[str, float] = {}  # digest → monotonic time it may be forgotten
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        return self._cache.trusted(hash_token(token))

    def verify(self, token: str) -> Principal | None:
        """Look the session up in the database (blocking; call from a worker thread)."""
        digest = hash_token(token)
        with self._factory() as session:
            active = find_session(session, token)
        with self._lock:  # a sign-out here meanwhile must not be undone by caching the read
            if active is None or digest in self._closed:
                self._cache.pop(digest, None)
                return None
            remaining = (active.expires_at - utc_now()).total_seconds()
            self._cache.trust(digest, active.principal, remaining)
        return active.principal

    def open(self, key_id: str) -> str:
        """Start a session of a verified key; returns the token for the cookie (blocking)."""
        with transaction(self._factory) as session:
            return open_session(session, key_id)

    def close(self, token: str) -> None:
        """End the session everywhere (its row is deleted) and here at once (blocking).
        Remembered as closed for a session's lifetime: a check that read the row before the
        delete cannot cache it again on this worker."""
        digest = hash_token(token)
        with transaction(self._factory) as session:
            close_session(session, token)
        now = time.monotonic()
        with self._lock:
            self._closed = {d: t for d, t in self._closed.items() if t > now}
            if len(self._closed) >= _MAX_CLOSED:  # a flood of sign-outs: oldest go first
                for old in sorted(self._closed, key=self._closed.__getitem__)[:_MAX_CLOSED // 2]:
                    del self._closed[old]
            self._closed[digest] = now + SESSION_LIFETIME.total_seconds()
            self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._cache.clear()


class KeyVerifier:
    """Key → principal, with a short positive cache so the hot path skips the database.

    A revoked key stops working within ``ttl_seconds``; unknown keys are never cached, so a
    key created a moment ago works at once. ``sessions`` checks the web page's sessions with
    the same database and TTL (the app wires this one verifier into the middleware and the
    request context).
    """

    def __init__(self, session_factory: sessionmaker[Session], ttl_seconds: float) -> None:
        self._factory = session_factory
        self._cache = _TrustCache(ttl_seconds)
        self.sessions = SessionVerifier(session_factory, ttl_seconds)

    def cached(self, secret: str) -> Principal | None:
        return self._cache.trusted(hash_key(secret))

    def verify(self, secret: str) -> Principal | None:
        """Look the key up in the database (blocking; call from a worker thread)."""
        with self._factory() as session:
            principal = find_principal(session, secret)
        self._cache.trust(hash_key(secret), principal, self._cache.ttl)
        return principal

    def forget_all(self) -> None:
        self._cache.clear()
        self.sessions.forget_all()
