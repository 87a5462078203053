"""Engines and sessions for the score store: SQLite by default, PostgreSQL by URL.

Built by factories, never at import time. SQLite gets WAL and a busy timeout so the scoring
job and the API can share the file, and :func:`transaction` takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so a read-modify-write cannot interleave with another writer's;
PostgreSQL gets pre-ping and a short connect timeout so a database outage becomes a fast 503
and recovery needs no restart. Statement parameters never reach logs or error messages
(``hide_parameters``): they hold notes, account ids and key hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from renewal.errors import ConfigError
from renewal.sqlite import sqlite_file

CONNECT_TIMEOUT_SECONDS = 3
#: libpq ``tcp_user_timeout``: data unacknowledged this long (a network partition) ends the
#: connection, so a request waiting on it fails with a 503 instead of hanging.
TCP_USER_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (psycopg2 is not installed)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet; None for one that does, for
    an in-memory database and for PostgreSQL.

    Commands that only read the store say so instead of creating an empty one: a misspelt
    ``RENEWAL_DATA_DIR`` would otherwise answer "no keys" from a new file in a new directory.
    """
    path = sqlite_file(normalise_url(url))  # a bad URL: make_engine reports it
    return None if path is None or path.exists() else path


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; creates the parent directory of a SQLite file."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it
        raise ConfigError(f"database URL is not valid: {type(exc).__name__}") from exc
    backend = parsed.get_backend_name()
    kwargs.setdefault("hide_parameters", True)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        }
        for name in parsed.query:  # the URL's own settings win
            connect_args.pop(name, None)
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (they are returned to callers)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: the write lock is taken (or
    waited for, up to the busy timeout) before the first read, so what a writer reads is
    still true when it writes. Python's sqlite3 would otherwise begin only at the first
    INSERT/UPDATE, leaving the reads before it outside the transaction (found with 50
    concurrent health inputs for one account: the account's score ended on an older input).
    """
    with factory() as session, session.begin():
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE"))
        yield session
