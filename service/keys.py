"""API keys: generation, hashing and storage. Only a key's SHA-256 is ever stored.

Keys are 256-bit random secrets, so a plain SHA-256 is enough (no password stretching
needed); lookup is by hash and the final comparison is constant-time. The public ``id``
(``key_...``) names a key in audits and listings; the secret is printed once at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from renewal.errors import RenewalError
from service.db.models import ApiKey, utc_now

Role = Literal["crm", "csm", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
KEY_PREFIX = "rnw_"


class ApiKeyError(RenewalError):
    """A key cannot be created, found or revoked as asked."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's public id, role and (for CSMs) the CSM they act as."""

    key_id: str
    role: Role
    csm_id: str | None
    name: str

    def may_see(self, account_csm_id: str | None) -> bool:
        """Object-level rule: CSMs see only their own accounts; crm and admin see all."""
        if self.role == "csm":
            return account_csm_id is not None and hmac.compare_digest(
                account_csm_id.encode(), (self.csm_id or "").encode()
            )
        return True


def hash_key(secret: str) -> str:
    """Hex SHA-256 of a key as sent by a client."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh high-entropy key (43 url-safe characters after the prefix)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_key(
    session: Session, role: str, name: str | None = None, csm_id: str | None = None
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its secret (shown once, never stored)."""
    if role not in ROLES:
        raise ApiKeyError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    csm_id = csm_id.strip() if csm_id is not None else None
    if role == "csm" and not csm_id:
        raise ApiKeyError("a csm key needs --csm-id (not blank): it may only see that CSM's "
                          "accounts")
    if role != "csm" and csm_id:
        raise ApiKeyError(f"--csm-id applies only to csm keys, not {role}")
    secret = new_secret()
    key_id = "key_" + secrets.token_hex(6)
    row = ApiKey(
        id=key_id,
        name=name or f"{role}-{key_id[4:]}",
        role=role,
        csm_id=csm_id,
        key_hash=hash_key(secret),
        created_at=utc_now(),
    )
    session.add(row)
    session.flush()
    return row, secret


def find_principal(session: Session, secret: str) -> Principal | None:
    """The principal of an active key, or None for an unknown or revoked one."""
    digest = hash_key(secret)
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(key_id=row.id, role=row.role, csm_id=row.csm_id, name=row.name)  # type: ignore[arg-type]


def list_keys(session: Session, include_revoked: bool = False) -> list[ApiKey]:
    """Keys by creation time (hashes stay in the database; callers print id, name, role)."""
    stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt))


def revoke_key(session: Session, key_id: str, when: datetime | None = None) -> ApiKey:
    """Revoke a key by its public id; revoking twice keeps the first time."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyError(f"no API key with id {key_id!r} (see `renewal keys list`)")
    if row.revoked_at is None:
        row.revoked_at = when or utc_now()
    return row
