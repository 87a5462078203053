"""The ``renewal features`` job: check the outputs, validate the data directory, compute,
write (``features.outputs``: every output renamed into place only once the whole run
succeeded, so a failed run leaves no output behind).

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

import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from features.config import load_feature_config
from features.daily import daily_activity, materialized
from features.freshness import data_warnings
from features.outputs import check_outputs, local_output, local_path, staged_outputs
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
        points = read_spine(local_path(spine, "--spine", "the driver reads it; copy it here"))
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "duckdb" and is_uri(data_dir):
        raise ConfigError(
            f"--engine duckdb reads local directories only, not {data_dir}: use --engine spark"
        )
    out_path = local_output(out, "--out")
    daily_path = local_output(daily_out, "--daily-out") if daily_out is not None else None
    outputs = {"--out": out_path} | ({"--daily-out": daily_path} if daily_path else {})
    check_outputs(outputs, data_dir, {"--spine": spine, "--config": config_path})
    config = load_feature_config(config_path)
    # A local directory gets the whole contract whatever the engine: Spark alone checks its
    # core rules only, and read a zoned date a day early, rounded 2.5 logins, took "yes" for
    # true and an evergreen 9999-12-31 term as is (found by audit).
    checked_locally = engine == "duckdb" or is_local_directory(data_dir)
    if checked_locally:
        step("validating the data directory")
        _validate(Path(data_dir))
    spark, owns_session = (
        start_spark(spark_master, "renewal-features") if engine == "spark" else (None, False)
    )
    try:
        step(f"reading {data_dir} with {engine}")
        source = open_source(data_dir, engine=engine, spark=spark)
        if not checked_locally:  # a URI: the core rules, by Spark itself
            step("checking the data contract on Spark")
            problems = contract_problems(source)
            if problems:
                raise DataContractError(problems)
        if as_of is not None:
            _check_someone_signed(source, as_of)
        last = as_of if points is None else points.as_of.max().date()
        for warning in data_warnings(source, last, config):
            if on_warning is not None:
                on_warning(warning)

        def vectors_of(daily: ir.Table | None) -> pd.DataFrame:
            step("computing point-in-time feature vectors")
            if points is None:
                return features_as_of(source, last, config, daily=daily)
            try:
                return spine_vectors(source, points, config, daily=daily)
            except SpineError as exc:  # an account unknown or not signed by its as_of
                raise SpineError(f"--spine {spine}: {str(exc).removeprefix('spine: ')}") from exc

        with staged_outputs() as staged:
            if daily_path is None:
                # The vectors build only the days their windows read.
                vectors = vectors_of(None)
            else:
                # The whole-history daily table is written anyway: the vectors reuse it. It
                # goes to a temporary file now and is renamed only with the vectors, at the end.
                with materialized(source, daily_activity(source, last, config)) as daily:
                    step(f"writing the daily table to {daily_path}")
                    staged.write("--daily-out", daily_path,
                                 lambda tmp: write_daily(source, daily, tmp))
                    vectors = vectors_of(daily)
            step(f"writing {len(vectors)} vectors to {out_path}")
            staged.write("--out", out_path, lambda tmp: vectors.to_parquet(tmp, index=False))
        return vectors
    finally:
        if owns_session:
            spark.stop()


def write_daily(source: Source, daily: ir.Table, path: Path) -> None:
    """Write the daily table, sorted by account and date, into one Parquet file, streaming.

    ``path`` is written as it is (the caller stages it: :class:`features.outputs.StagedOutputs`).
    """
    ordered = daily.order_by(["account_id", "date"])
    if type(source.backend).__module__.startswith("ibis.backends.duckdb"):
        source.backend.to_parquet(ordered, path)  # DuckDB's COPY: no Python in the loop
        return
    writer = None
    try:
        for batch in ordered.to_pyarrow_batches():
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema)
            writer.write_batch(batch)
        if writer is None:
            pq.write_table(ordered.schema().to_pyarrow().empty_table(), path)
    finally:
        if writer is not None:
            writer.close()


def _check_someone_signed(source: Source, as_of: date) -> None:
    """Refuse an as-of before every signing: the run would write an empty, featureless file."""
    earliest = source.tables["accounts"].signed_at.min().execute()
    if earliest is not None and not pd.isna(earliest) and pd.Timestamp(earliest).date() <= as_of:
        return
    since = ("accounts has no signed_at" if earliest is None or pd.isna(earliest)
             else f"the earliest accounts.signed_at is {pd.Timestamp(earliest).date()}")
    raise ConfigError(f"no account is signed on or before --as-of {as_of} ({since}): "
                      "no vector to write")


def is_local_directory(data_dir: str | Path) -> bool:
    """A directory of this machine (not a URI Spark reads, ``file://`` included)."""
    return not is_uri(str(data_dir)) and Path(data_dir).is_dir()


def _validate(data_dir: Path) -> None:
    """Refuse a directory that breaks the data contract, before any computation."""
    if importlib.util.find_spec("renewal.contract") is None:
        return
    from features.validation import check_data_dir

    check_data_dir(data_dir)
