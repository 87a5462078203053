"""``renewal score``: score every account as of a date with the champion; store the history."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    data: Annotated[Path, typer.Option("--data", help="Data directory (the contract's tables).")],
    as_of: Annotated[str, typer.Option("--as-of", metavar="YYYY-MM-DD",
                                       help="Score with data dated on or before this day.")],
    model: Annotated[str | None, typer.Option(
        "--model", help="MLflow model URI or directory [registry alias champion].")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the scores to this Parquet file (atomically).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=20,
                                       help="Risk drivers and protective factors kept.")] = 3,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", min=1,
        help="Processes for the explanations [1: LightGBM threads use every core].")] = None,
) -> None:
    """Score every account as of a date with the champion model; store the score history.

    Features are computed as of --as-of (with the health inputs recorded through the API);
    probability, risk tier, heuristic probability and top drivers go to the score database
    (RENEWAL_DATABASE_URL) and, with --out, to a Parquet file.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from renewal.settings import get_settings
    from service.config import get_service_settings
    from service.scoring import run_scoring

    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD",
                                 param_hint="--as-of") from None
    console = Console(highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("starting", total=1.0)

        def on_progress(step: str, fraction: float) -> None:
            progress.update(task, description=step, completed=fraction)

        summary = run_scoring(data, day, get_settings(), get_service_settings(),
                              model_uri=model, out=out, top_k=top_k, n_jobs=jobs,
                              progress=on_progress)
    table = Table(title=f"scored {summary.accounts:,} accounts as of {summary.as_of}")
    table.add_column("risk tier")
    table.add_column("accounts", justify="right")
    for tier in ("high", "medium", "low"):
        table.add_row(tier, f"{summary.risk_tiers.get(tier, 0):,}")
    console.print(table)
    console.print(f"model {summary.model_name} v{summary.model_version}; "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    if summary.out is not None:
        console.print(f"scores written to {summary.out}")
