"""The ``renewal features`` job: validate the data directory, compute, write atomically.

Writing happens only after everything is computed, each file through a temporary file and a
rename, so a failed run never leaves a half-written vector file behind.

On DuckDB the data directory is validated by ``renewal.contract`` (pandas, every rule). On Spark
the data may be far bigger than the driver, so the contract's core rules are checked by Spark
itself (``features.source.contract_problems``) and the data may live at any URI Spark reads.
The outputs (one row per account, and the daily table) are written to local files either way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from features.config import load_feature_config
from features.daily import daily_activity, materialized
from features.freshness import stale_usage_warning
from features.source import (
    ENGINES,
    Source,
    contract_problems,
    is_uri,
    open_source,
    start_spark,
)
from features.spine import read_spine, spine_vectors
from features.vectors import features_as_of
from renewal.datadir import atomic_path
from renewal.errors import ConfigError, DataContractError, SpineError

Step = Callable[[str], None]


def run_features(
    data_dir: str | Path,
    as_of: date | None,
    out: str | Path,
    daily_out: str | Path | None = None,
    config_path: Path | None = None,
    engine: str = "duckdb",
    spark_master: str = "local[*]",
    on_step: Step | None = None,
    spine: str | Path | None = None,
    on_warning: Step | None = None,
) -> pd.DataFrame:
    """Compute the vectors of every account signed on or before ``as_of`` and write them.

    Or, with ``spine`` instead of ``as_of``, one vector per row of that file (``account_id``,
    ``as_of``), each from the data dated on or before its own as_of, the file's other columns
    kept (:func:`spine_vectors`): a training set for a model of one's own, without look-ahead.
    The daily table then runs to the latest as_of.

    ``data_dir`` is a local directory, or with the spark engine any location Spark reads
    (``s3a://``, ``hdfs://``, ``file://``: kept as text). ``out`` and ``daily_out`` are local
    files (``file://`` URIs accepted). With the spark engine an active session (notebook,
    ``spark-submit``) is used and left running; otherwise one is started and stopped.
    ``on_warning`` hears what people should know but does not stop the run (the usage ending
    before the as-of date: :mod:`features.freshness`).
    """
    step = on_step or (lambda _message: None)
    if (as_of is None) == (spine is None):
        raise ConfigError("give --as-of (every account) or --spine (its rows): exactly one")
    points = None
    if spine is not None:
        points = read_spine(_local_path(spine, "--spine", "the driver reads it; copy it here"))
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "duckdb" and is_uri(data_dir):
        raise ConfigError(
            f"--engine duckdb reads local directories only, not {data_dir}: use --engine spark"
        )
    out_path = local_output(out, "--out")
    daily_path = local_output(daily_out, "--daily-out") if daily_out is not None else None
    config = load_feature_config(config_path)
    if engine == "duckdb":
        step("validating the data directory")
        _validate(Path(data_dir))
    spark, owns_session = (
        start_spark(spark_master, "renewal-features") if engine == "spark" else (None, False)
    )
    try:
        step(f"reading {data_dir} with {engine}")
        source = open_source(data_dir, engine=engine, spark=spark)
        if engine == "spark":
            step("checking the data contract on Spark")
            problems = contract_problems(source)
            if problems:
                raise DataContractError(problems)
        last = as_of if points is None else points.as_of.max().date()
        warning = stale_usage_warning(source, last)
        if warning is not None and on_warning is not None:
            on_warning(warning)

        def vectors_of(daily: ir.Table | None) -> pd.DataFrame:
            step("computing point-in-time feature vectors")
            if points is None:
                return features_as_of(source, last, config, daily=daily)
            try:
                return spine_vectors(source, points, config, daily=daily)
            except SpineError as exc:  # an account unknown or not signed by its as_of
                raise SpineError(f"--spine {spine}: {str(exc).removeprefix('spine: ')}") from exc

        if daily_path is None:
            # The vectors build only the days their windows read.
            vectors = vectors_of(None)
        else:
            # The whole-history daily table is written anyway: the vectors reuse it.
            with materialized(source, daily_activity(source, last, config)) as daily:
                step(f"writing the daily table to {daily_path}")
                write_daily(source, daily, daily_path)
                vectors = vectors_of(daily)
        step(f"writing {len(vectors)} vectors to {out_path}")
        with atomic_path(out_path) as tmp:
            vectors.to_parquet(tmp, index=False)
        return vectors
    finally:
        if owns_session:
            spark.stop()


def local_output(location: str | Path, option: str) -> Path:
    """An output location as a local path; a ``file://`` URI is one, other schemes are refused.

    The outputs are one row per account (or per account-day) and are written by the driver,
    atomically, with a rename: a remote store would need Spark's writer (not built yet).
    """
    return _local_path(location, option, "the outputs are written by the driver; copy them "
                       "to the object store afterwards")


def _local_path(location: str | Path, option: str, why: str) -> Path:
    text = str(location)
    if not is_uri(text):
        return Path(text)
    parsed = urlparse(text)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    raise ConfigError(f"{option} must be a local path (or file://), not {text}: {why}")


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
    from features.validation import check_data_dir

    check_data_dir(data_dir)
