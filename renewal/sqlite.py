"""Which file a SQLite URL names: the score store and the MLflow store both default to one."""

from __future__ import annotations

from pathlib import Path


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///...`` URL, as written; None for another database, an
    in-memory one, a SQLite URI filename (``file:...``, which SQLite itself interprets) and a
    URL that does not parse (whoever connects reports that)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)
