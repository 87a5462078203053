"""``renewal keys``: create, list and revoke API keys (stored hashed; shown once)."""

from __future__ import annotations

from typing import Annotated

import typer

keys_app = typer.Typer(help="API keys of the scoring service.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _session_factory():
    from renewal.settings import get_settings
    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade

    engine = make_engine(get_settings().resolved_database_url)
    upgrade(engine)
    return make_session_factory(engine)


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="crm, csm or admin.")],
    csm_id: Annotated[str | None, typer.Option(
        "--csm-id", help="For csm keys: the CSM whose accounts the key may see.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for listings.")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from service.db.engine import transaction
    from service.keys import create_key

    with transaction(_session_factory()) as session:
        row, secret = create_key(session, role, name, csm_id)
        key_id, label = row.id, row.name
    typer.echo(f"created {role} key {key_id} ({label}); store it now, it is not shown again:")
    typer.echo(secret)


@keys_app.command("list")
def list_(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (id, name, role, CSM, created, revoked); never the keys themselves."""
    from rich.console import Console
    from rich.table import Table

    from renewal.console import print_table
    from renewal.settings import get_settings
    from service.db.engine import missing_sqlite_file
    from service.keys import list_keys

    missing = missing_sqlite_file(get_settings().resolved_database_url)
    if missing is not None:
        typer.echo(f"no keys: there is no score store at {missing} yet (RENEWAL_DATABASE_URL, "
                   "RENEWAL_DATA_DIR); `renewal keys create` makes one", err=True)
        return
    with _session_factory()() as session:
        rows = list_keys(session, include_revoked=all_keys)
    table = Table()
    for column in ("id", "name", "role", "csm_id", "created", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.id, row.name, row.role, row.csm_id or "",
                      row.created_at.isoformat(timespec="seconds"),
                      row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "")
    print_table(Console(highlight=False), table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")]) -> None:
    """Revoke a key; the service refuses it within RENEWAL_KEY_CACHE_SECONDS (default 5 s)."""
    from renewal.errors import RenewalError
    from renewal.settings import get_settings
    from service.db.engine import missing_sqlite_file, transaction
    from service.keys import revoke_key

    missing = missing_sqlite_file(get_settings().resolved_database_url)
    if missing is not None:
        raise RenewalError(f"no API key with id {key_id!r}: there is no score store at "
                           f"{missing} (RENEWAL_DATABASE_URL, RENEWAL_DATA_DIR)")
    with transaction(_session_factory()) as session:
        row = revoke_key(session, key_id)
        when = row.revoked_at
    typer.echo(f"revoked {key_id} at {when.isoformat(timespec='seconds')}")
