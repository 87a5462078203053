"""The accounts snapshot: owner (for object-level auth) and stakes (for the risk list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Account
from service.db.upsert import upsert


def upsert_accounts(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Write the latest attributes of each account (one row per account)."""
    return upsert(session, Account.__table__, rows, ("account_id",))


def get_account(session: Session, account_id: str) -> Account | None:
    """One account's snapshot, or None."""
    return session.get(Account, account_id)


def all_accounts(session: Session) -> list[Account]:
    """Every account's snapshot (the cache loads them once per refresh)."""
    return list(session.scalars(select(Account)))


def accounts_by_id(session: Session, account_ids: Sequence[str]) -> dict[str, Account]:
    """Snapshots of the given accounts that exist."""
    found: dict[str, Account] = {}
    for start in range(0, len(account_ids), 900):
        chunk = list(account_ids[start : start + 900])
        found.update(
            {
                a.account_id: a
                for a in session.scalars(select(Account).where(Account.account_id.in_(chunk)))
            }
        )
    return found
