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
    as_of: Annotated[
        datetime,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Point in time T: only data <= T."),
    ],
    out: Annotated[str, typer.Option(
        "--out", help="Parquet file of per-account vectors: a local path (or file://).")],
    daily_out: Annotated[str | None, typer.Option(
        "--daily-out", help="Also write the daily tier table here: a local path (or file://).")
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
) -> None:
    """Compute every account's feature vector as of T and write it atomically."""
    from rich.console import Console

    from features.jobs import run_features

    console = Console(stderr=True, highlight=False)
    with console.status("starting") as status:
        vectors = run_features(
            data, as_of.date(), out, daily_out=daily_out, config_path=config,
            engine=engine.value, spark_master=spark_master,
            on_step=lambda message: status.update(message),
        )
    console.print(f"wrote {len(vectors)} accounts x {vectors.shape[1] - 2} features to {out}")
