"""HMAC-SHA256 signatures of webhook payloads, over ``f"{timestamp}.{body}"``.

The header reads ``Renewal-Signature: t=<unix seconds>,v1=<hex digest>``. Signing the
timestamp with the body lets a receiver refuse replays older than a few minutes; ``v1``
names the scheme so it can change without breaking receivers (several ``v1`` values may
appear while a secret is rotated). :func:`verify` is the receiver's side, also used in tests
and shown in docs/workflows.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Renewal-Signature"
EVENT_HEADER = "Renewal-Event"
DELIVERY_HEADER = "Renewal-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SECRET_PREFIX = "whsec_"


class SignatureError(ValueError):
    """A signature header is missing, malformed, too old or does not match."""


def new_secret() -> str:
    """A fresh 256-bit signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None,
                     previous: Sequence[str] = ()) -> str:
    """The value of the ``Renewal-Signature`` header for ``body`` sent now; ``previous``:
    rotated-out secrets still in their overlap, whose signatures follow the current one's."""
    when = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={when}", *(f"v1={signature(s, when, body)}"
                                    for s in (secret, *previous))])


def verify(
    secret: str, header: str | None, body: bytes, tolerance_seconds: int = 300,
    now: float | None = None,
) -> int:
    """Check a received payload; returns its timestamp or raises :class:`SignatureError`."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("timestamp is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("header needs t=<timestamp> and v1=<signature>")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError(f"timestamp is more than {tolerance_seconds} s away from now")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
    return timestamp
