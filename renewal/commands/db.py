"""``renewal db``: migrate the score database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import typer

db_app = typer.Typer(help="The score database (RENEWAL_DATABASE_URL).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Option("head", "--revision", help="Target Alembic revision."),
) -> None:
    """Apply the migrations (the service also does this at start-up)."""
    from renewal.settings import get_settings
    from service.db.engine import make_engine
    from service.db.migrate import upgrade

    engine = make_engine(get_settings().resolved_database_url)
    try:
        typer.echo(f"database at revision {upgrade(engine, revision)}")
    finally:
        engine.dispose()


@db_app.command("current")
def current_command() -> None:
    """Print the revision the database is at, and the newest one this code ships."""
    from renewal.settings import get_settings
    from service.db.engine import make_engine, missing_sqlite_file
    from service.db.migrate import current_revision, head_revision

    url = get_settings().resolved_database_url
    missing = missing_sqlite_file(url)
    if missing is not None:
        typer.echo(f"current: (no database at {missing}); head: {head_revision()}")
        return
    engine = make_engine(url)
    try:
        typer.echo(f"current: {current_revision(engine) or '(none)'}; head: {head_revision()}")
    finally:
        engine.dispose()
