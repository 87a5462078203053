"""``renewal features``: point-in-time feature vectors (and the daily table) of a data dir."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


def register(app: typer.Typer) -> None:
    app.command("features")(features)


def features(
    data: Annotated[str, typer.Option(
        "--data", help="Data directory (Parquet or CSV tables). With --engine spark any location "
        "Spark reads: a local path or a file://, hdfs:// or s3a:// URI; validated by Spark "
        "(core contract rules). With duckdb a local directory, validated in full.")],
    out: Annotated[str, typer.Option(
        "--out", help="Parquet file (.parquet) of per-account vectors: a local path (or "
        "file://), not a file of --data. Written only if the whole run succeeds.")],
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Point in time T: only data <= T. "
                     "Every account signed by then gets its vector."),
    ] = None,
    daily_out: Annotated[str | None, typer.Option(
        "--daily-out", help="Also write the daily tier table here: a .parquet file other than "
        "--out, a local path (or file://), not a file of --data.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file of feature thresholds.")
    ] = None,
    engine: Annotated[
        Engine, typer.Option("--engine", help="duckdb (embedded) or spark.")
    ] = Engine.duckdb,
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL for --engine spark "
                          "(an active session, e.g. under spark-submit, is used instead).")
    ] = "local[*]",
    spine: Annotated[str | None, typer.Option(
        "--spine", help="Instead of --as-of: a Parquet or CSV file of points in time "
        "(account_id, as_of), one vector per row in the file's order, each from data <= its own "
        "as_of, the file's other columns (your labels) kept: a training set. A local path (or "
        "file://).")] = None,
) -> None:
    """Compute every account's feature vector as of T, or at each point of a spine.

    The outputs are written atomically: a failed run leaves no file behind."""
    from rich.console import Console

    from features.jobs import run_features
    from features.registry import model_features
    from renewal.console import print_warning

    console = Console(stderr=True, highlight=False)
    with console.status("starting") as status:
        vectors = run_features(
            data, as_of.date() if as_of else None, out, daily_out=daily_out, config_path=config,
            engine=engine.value, spark_master=spark_master,
            on_step=lambda message: status.update(message), spine=spine,
            on_warning=lambda message: print_warning(console, message),
        )
    width = len(model_features(vectors.columns))  # not the spine's own columns
    if spine is None:
        console.print(f"wrote {len(vectors)} accounts x {width} features to {out}")
    else:
        console.print(f"wrote {len(vectors)} vectors ({vectors.account_id.nunique()} accounts, "
                      f"{vectors.as_of.nunique()} as-of dates) x {width} features to {out}")
