"""``renewal score``: score every account as of a date with the champion; store the history."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    data: Annotated[str, typer.Option(
        "--data", help="Data directory (the contract's tables); with --engine spark any path "
        "Spark reads (s3a://, hdfs://).")],
    as_of: Annotated[str, typer.Option(
        "--as-of", metavar="YYYY-MM-DD",
        help="Score with data dated on or before this day (not after today).")],
    model: Annotated[str | None, typer.Option(
        "--model", help="MLflow model URI or directory [registry alias champion].")] = None,
    out: Annotated[str | None, typer.Option(
        "--out", help="Also write the scores to this Parquet file (atomically; a .parquet "
        "path, not a table of --data); required with --engine spark (a Parquet directory, "
        "replaced whole: neither --data, a parent of it nor one of its tables).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=20,
                                       help="Risk drivers and protective factors kept.")] = 3,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", min=1,
        help="Processes for the explanations [default: one process, a thread per core]; "
        "more pays only on machines with many idle cores.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="duckdb (embedded, stores the score history) or spark (batch, "
        "writes Parquet only).")] = "duckdb",
    spark_master: Annotated[str, typer.Option(
        "--spark-master", help="Spark master URL for --engine spark.")] = "local[*]",
) -> None:
    """Score every account as of a date with the champion model; store the score history.

    Features are computed as of --as-of (with the health inputs recorded through the API);
    probability, risk tier, heuristic probability and top drivers go to the score database
    (RENEWAL_DATABASE_URL) and, with --out, to a Parquet file.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from renewal.console import print_table, print_warning
    from renewal.settings import get_settings
    from service.config import get_service_settings
    from service.scoring import check_as_of, check_score_output, run_scoring

    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        raise typer.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD",
                                 param_hint="--as-of") from None
    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter(f"{engine!r}: choose duckdb or spark", param_hint="--engine")
    if engine == "spark" and out is None:
        raise typer.BadParameter("--engine spark writes Parquet: give --out", param_hint="--out")
    if engine == "duckdb":  # before the progress bar (run_scoring checks them too)
        check_as_of(day)
        if out is not None:
            check_score_output(Path(out), data)
    # Lines are not wrapped (a pipe is not 80 columns wide: "scored 1,245 accounts as" then
    # "of ..."), and warnings go to stderr, where a scheduler looks for them (found by audit).
    console = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("starting", total=1.0)

        def on_progress(step: str, fraction: float) -> None:
            progress.update(task, description=step, completed=fraction)

        if engine == "spark":
            from service.spark_scoring import score_on_spark

            settings = get_settings()
            summary = score_on_spark(
                data, day, out, model or f"models:/{settings.model_name}@{settings.model_alias}",
                spark_master=spark_master,
                config_path=settings.feature_config,
                top_k=top_k, progress=on_progress,
            )
            console.print(f"scored {summary.accounts:,} accounts as of {summary.as_of} on "
                          f"Spark ({summary.spark_master}) with {summary.model_name} "
                          f"v{summary.model_version}; written to {summary.out}")
            _say_lost(console, summary.lost_accounts, summary.as_of)
            for warning in summary.warnings:
                print_warning(errors, warning)
            return
        summary = run_scoring(Path(data), day, get_settings(), get_service_settings(),
                              model_uri=model, out=Path(out) if out else None, top_k=top_k,
                              n_jobs=jobs, progress=on_progress)
    table = Table(title=f"scored {summary.accounts:,} accounts as of {summary.as_of}")
    table.add_column("risk tier")
    table.add_column("accounts", justify="right")
    for tier in ("high", "medium", "low"):
        table.add_row(tier, f"{summary.risk_tiers.get(tier, 0):,}")
    print_table(console, table)
    _say_lost(console, summary.lost_accounts, summary.as_of)
    for warning in summary.warnings:
        print_warning(errors, warning)
    console.print(f"model {summary.model_name} v{summary.model_version}; "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))
    if summary.out is not None:
        console.print(f"scores written to {summary.out}")


def _say_lost(console: Console, lost: int, as_of: date) -> None:
    """Lost accounts are left out of the scores on purpose: say how many, never silently."""
    if lost:
        console.print(f"{lost:,} account(s) lost by {as_of} (last contract ended, not renewed): "
                      "not scored")
