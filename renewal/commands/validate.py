"""``renewal validate``: check a data directory against the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    data: Annotated[Path, typer.Option("--data", help="Data directory to check.")],
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Also flag dates after this day."),
    ] = None,
) -> None:
    """Check every table against the data contract and print a readable report.

    Exits 0 only when the directory is valid, 2 when it is not; warnings (data accepted, but
    read the note) do not change the exit code.
    """
    from rich.console import Console

    from renewal.contract import validate_data_dir

    report = validate_data_dir(data, as_of.date() if as_of else None)
    console = Console(highlight=False, soft_wrap=True)
    warned = False
    for line in report.render().splitlines():
        warned = warned or "warning(s) (the data is accepted)" in line
        style = ("yellow" if warned else "green" if line.startswith("valid")
                 else "red" if "invalid" in line else None)
        console.print(line, style=style, markup=False)
    if not report.ok:
        raise typer.Exit(code=2)
