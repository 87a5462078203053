"""The accounts snapshot: owner (for object-level auth) and stakes (for the risk list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.chunks import chunks
from service.db.models import Account
from service.db.upsert import upsert


def upsert_accounts(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Write the latest attributes of each account (one row per account): a row of an older
    as_of than the stored one is left out. A backfill of an older date put the accounts'
    ARR, activation and lost state back to that date under their newer scores, and served
    accounts lost since then again (found by audit)."""
    return upsert(session, Account.__table__, rows, ("account_id",), newer_on="as_of")


def get_account(session: Session, account_id: str) -> Account | None:
    """One account's snapshot, or None."""
    return session.get(Account, account_id)


def all_accounts(session: Session) -> list[Account]:
    """Every account's snapshot (the cache loads them once per refresh)."""
    return list(session.scalars(select(Account)))


def accounts_by_id(session: Session, account_ids: Sequence[str]) -> dict[str, Account]:
    """Snapshots of the given accounts that exist."""
    found: dict[str, Account] = {}
    for chunk in chunks(account_ids):
        stmt = select(Account).where(Account.account_id.in_(list(chunk)))
        found.update({a.account_id: a for a in session.scalars(stmt)})
    return found
