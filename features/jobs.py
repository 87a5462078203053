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
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

import ibis.expr.types as ir
import pandas as pd
import pyarrow.parquet as pq

from features.config import FeatureConfig, load_feature_config
from features.daily import daily_activity, materialized
from features.freshness import stale_usage_warning
from features.registry import FEATURES
from features.source import (
    ENGINES,
    Source,
    contract_problems,
    is_uri,
    open_source,
    start_spark,
)
from features.vectors import feature_vectors, features_as_of
from features.windows import KEYS
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
    points = read_spine(spine) if spine is not None else None
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
            return spine_vectors(source, points, config, daily=daily)

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


def read_spine(location: str | Path) -> pd.DataFrame:
    """The points in time of ``--spine``: a local Parquet or CSV file with ``account_id`` and
    ``as_of`` (an ISO date), every row checked before any computation.

    Returned in the file's order with its other columns (labels, ids) as read. Rows are never
    dropped: an unreadable file, a row with more fields than the header, a row without an
    account or a date, or no rows at all is an error naming the file, counts and examples.
    """
    path = _local_path(location, "--spine", "the driver reads it; copy it here first")
    if not path.is_file():
        raise SpineError(f"--spine {path}: no such file")
    frame = _read_points(path)
    missing = [column for column in KEYS if column not in frame.columns]
    if missing:
        raise SpineError(f"--spine {path}: missing column(s) {', '.join(missing)} "
                         f"(has {', '.join(map(str, frame.columns)) or 'none'})")
    clash = sorted(set(frame.columns) & {feature.name for feature in FEATURES})
    if clash:
        raise SpineError(f"--spine {path}: column(s) {', '.join(clash)} are feature names; "
                         "rename them (the output has both)")
    if frame.empty:
        raise SpineError(f"--spine {path}: no rows")
    accounts = frame["account_id"].astype("string").str.strip().replace("", pd.NA)
    dates = _spine_dates(frame["as_of"])
    bad = accounts.isna() | dates.isna()
    if bad.any():
        examples = frame.loc[bad, list(KEYS)].head(3).to_dict("records")
        raise SpineError(f"--spine {path}: {int(bad.sum())} of {len(frame)} row(s) without an "
                         f"account_id or a date as_of (YYYY-MM-DD), e.g. {examples}")
    return frame.assign(account_id=accounts, as_of=dates)


def _read_points(path: Path) -> pd.DataFrame:
    """The spine file as a frame; only empty CSV cells are missing ("NA" is an account id)."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix != ".csv":
            raise SpineError(f"--spine {path}: expected a .parquet or .csv file")
        with warnings.catch_warnings():
            # A row longer than the header would otherwise shift into an index, or lose fields.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, dtype={"account_id": "string", "as_of": "string"},
                               index_col=False, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, pd.errors.ParserWarning) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpineError(f"--spine {path}: cannot be read: {reason}") from exc


def _spine_dates(values: pd.Series) -> pd.Series:
    """Each as_of as a naive date-time at midnight; NaT where it is not an ISO date.

    A date-time counts by its date as written (a zoned one is not moved to UTC first); text
    must start with YYYY-MM-DD, since "01/02/2024" is a month or a day depending on a guess.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is not None:
            values = values.dt.tz_localize(None)
        return values.dt.normalize().astype("datetime64[ns]")
    text = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")


def spine_vectors(
    source: Source, points: pd.DataFrame, config: FeatureConfig, daily: ir.Table | None = None
) -> pd.DataFrame:
    """One vector per row of ``points`` (:func:`read_spine`), in its order, its other columns
    kept between the keys and the features: labels travel with their vectors."""
    keys = points[list(KEYS)].drop_duplicates()
    vectors = feature_vectors(source, keys, config, daily=daily)
    return points.merge(vectors, on=list(KEYS), how="left", validate="many_to_one",
                        suffixes=(None, None))


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
