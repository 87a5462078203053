"""Run the Alembic migrations of the score store programmatically (no alembic.ini).

Called by ``renewal db upgrade``, by ``renewal serve`` before it starts workers and by the
app's start-up. On PostgreSQL an advisory lock serialises concurrent upgraders.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Engine, text

from renewal.errors import RenewalError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_ADVISORY_LOCK_ID = 7_361_104_205  # any constant shared by every upgrader of this schema


def alembic_config() -> Config:
    """The Alembic configuration pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision``; returns the revision it is at afterwards."""
    config = alembic_config()
    _known_revision(config, revision)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except CommandError as exc:  # e.g. a relative step beyond the newest revision
            raise RenewalError(f"cannot upgrade to {revision!r}: {exc}") from exc
    return current_revision(engine)


def _known_revision(config: Config, revision: str) -> None:
    """Refuse a revision this code does not ship (Alembic's own error is a traceback)."""
    if revision.startswith(("+", "-")):
        return  # a relative step: Alembic checks it against the database's revision
    scripts = ScriptDirectory.from_config(config)
    try:
        scripts.get_revisions(revision)
    except (CommandError, ResolutionError) as exc:
        known = ", ".join(s.revision for s in scripts.walk_revisions())
        raise RenewalError(f"unknown revision {revision!r}: choose head or one of {known}") from exc


def downgrade(engine: Engine, revision: str) -> str | None:
    """Step the database back to ``revision`` (development only)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return current_revision(engine)
