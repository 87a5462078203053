"""The ``renewal features`` job: validate the data directory, compute, write atomically.

Writing happens only after everything is computed, each file through a temporary file and a
rename, so a failed run never leaves a half-written vector file behind.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from features.config import load_feature_config
from features.daily import daily_activity, materialized
from features.source import ENGINES, Source, open_source
from features.vectors import features_as_of
from renewal.datadir import atomic_path
from renewal.errors import ConfigError, DataContractError, RenewalError

Step = Callable[[str], None]


def run_features(
    data_dir: Path,
    as_of: date,
    out: Path,
    daily_out: Path | None = None,
    config_path: Path | None = None,
    engine: str = "duckdb",
    spark_master: str = "local[*]",
    on_step: Step | None = None,
) -> pd.DataFrame:
    """Compute the vectors of every account signed on or before ``as_of`` and write them."""
    step = on_step or (lambda _message: None)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    config = load_feature_config(config_path)
    step("validating the data directory")
    _validate(Path(data_dir))
    spark = _start_spark(spark_master) if engine == "spark" else None
    try:
        step(f"reading {data_dir} with {engine}")
        source = open_source(Path(data_dir), engine=engine, spark=spark)
        if daily_out is None:
            # The vectors build only the days their windows read.
            step("computing point-in-time feature vectors")
            vectors = features_as_of(source, as_of, config)
        else:
            # The whole-history daily table is written anyway: the vectors reuse it.
            with materialized(source, daily_activity(source, as_of, config)) as daily:
                step(f"writing the daily table to {daily_out}")
                write_daily(source, daily, Path(daily_out))
                step("computing point-in-time feature vectors")
                vectors = features_as_of(source, as_of, config, daily=daily)
        step(f"writing {len(vectors)} vectors to {out}")
        with atomic_path(Path(out)) as tmp:
            vectors.to_parquet(tmp, index=False)
        return vectors
    finally:
        if spark is not None:
            spark.stop()


def write_daily(source: Source, daily: ir.Table, target: Path) -> None:
    """Write the daily table, sorted by account and date, into one Parquet file, streaming."""
    ordered = daily.order_by(["account_id", "date"])
    with atomic_path(target) as tmp:
        if type(source.backend).__module__.startswith("ibis.backends.duckdb"):
            source.backend.to_parquet(ordered, tmp)  # DuckDB's COPY: no Python in the loop
            return
        writer = None
        try:
            for batch in ordered.to_pyarrow_batches():
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
            if writer is None:
                pq.write_table(ordered.schema().to_pyarrow().empty_table(), tmp)
        finally:
            if writer is not None:
                writer.close()


def _validate(data_dir: Path) -> None:
    """Refuse a directory that breaks the data contract, before any computation."""
    if importlib.util.find_spec("renewal.contract") is None:
        return
    from renewal.contract import validate_data_dir

    report = validate_data_dir(data_dir, as_of=None)
    if not report.ok:
        raise DataContractError(report.problems)


def _start_spark(master: str) -> Any:
    """A Spark session for the job: UTC dates, few shuffle partitions for a local master."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RenewalError(
            "the spark engine needs pyspark: install the 'spark' extra (pip install renewal[spark])"
        ) from exc
    builder = (
        SparkSession.builder.master(master)
        .appName("renewal-features")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    return builder.getOrCreate()
