"""Dialect-aware bulk upsert (INSERT ... ON CONFLICT DO UPDATE) for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

#: Rows per statement: SQLite allows 32,766 bound parameters per statement.
CHUNK_ROWS = 1000


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Iterable[str],
    newer_on: str | None = None,
) -> int:
    """Insert ``rows``; rows whose conflict key exists replace the stored values. Returns count.

    ``newer_on``: a column; a stored row is only replaced by one whose value there is the
    same or later (a backfill of an older date must not overwrite a newer snapshot)."""
    if not rows:
        return 0
    keys = list(conflict_columns)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    updated = {name: statement.excluded[name] for name in rows[0] if name not in keys + ["id"]}
    where = None if newer_on is None else table.c[newer_on] <= statement.excluded[newer_on]
    statement = statement.on_conflict_do_update(index_elements=keys, set_=updated, where=where)
    # One compiled statement, executed over chunks of parameter sets ("insertmanyvalues"):
    # far cheaper than compiling a multi-row VALUES clause per chunk.
    for start in range(0, len(rows), CHUNK_ROWS):
        session.execute(statement, list(rows[start : start + CHUNK_ROWS]))
    return len(rows)
