"""``renewal simulate``: write a realistic simulated data directory."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


class UsageGrain(StrEnum):
    account = "account"
    user = "user"


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tables into.")],
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Number of accounts.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Same seed, same files.")] = 0,
    start: Annotated[
        str, typer.Option("--start", metavar="YYYY-MM-DD", help="First simulated day.")
    ] = "2024-01-01",
    months: Annotated[int, typer.Option("--months", min=2, help="Months of data.")] = 24,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="File format of the tables.")
    ] = OutputFormat.parquet,
    grain: Annotated[
        UsageGrain,
        typer.Option("--grain", help="usage rows per account-site-day or per user-site-day."),
    ] = UsageGrain.account,
) -> None:
    """Simulate accounts, contracts, usage, tickets, surveys, CSM inputs and value.

    Also writes truth.parquet: each contract's true renewal probability.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from renewal.console import print_table
    from renewal.simulator import simulate as run_simulation

    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        message = f"{start!r} is not a date YYYY-MM-DD"
        raise typer.BadParameter(message, param_hint="--start") from None

    console = Console(highlight=False)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_simulation(out, accounts=accounts, seed=seed, start=first_day,
                                 months=months, fmt=fmt.value, grain=grain.value,
                                 progress=progress)

    table = Table(title=f"Simulated data in {summary.out_dir}", show_header=True)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    print_table(console, table)
    console.print(
        f"renewal rate {_share(summary.renewal_rate)} of "
        f"{int(summary.extra.get('decided_contracts', 0)):,} decided contracts, "
        f"NDR {_share(summary.extra.get('ndr'))}, "
        f"activation rate {_share(summary.activation_rate)}, "
        f"{summary.elapsed_seconds:.1f} s"
    )


def _share(value: float | None) -> str:
    """A rate as a percentage; "n/a" where there was nothing to divide (e.g. no contract
    decided yet in a short simulation), not "nan%"."""
    return "n/a" if value is None or value != value else f"{value:.1%}"
