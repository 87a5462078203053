"""Open a data directory as engine-native Ibis tables, cast to the contract's kinds.

The engine reads the files itself (DuckDB ``read_parquet``/``read_csv``, Spark ``spark.read``):
the usage table can hold billions of rows and must never pass through pandas. Casting once
here means every feature definition meets the same types on every engine.

DuckDB reads local directories. Spark reads whatever its Hadoop FileSystem reads: a local
directory, or a URI (``file://``, ``hdfs://``, ``s3a://``, or a path of the cluster's default
filesystem), listed here through the JVM: this module is the one place that lists tables.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from renewal.datadir import FORMATS, find_table
from renewal.errors import ConfigError, DataContractError, Problem, RenewalError
from renewal.tables import TABLES, Column

UsageGrain = Literal["user", "account"]
ENGINES = ("duckdb", "spark")

_IBIS_TYPES = {
    "str": "string", "date": "date", "int": "int64", "float": "float64", "bool": "boolean",
}
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")
_view_counter = itertools.count()


@dataclass
class Source:
    """The tables of one data directory on one engine, plus what the usage table's grain is."""

    backend: Any
    tables: dict[str, ir.Table]
    usage_grain: UsageGrain
    has_sites: bool

    def has(self, name: str) -> bool:
        """Whether an (optional) table is present."""
        return name in self.tables


def is_uri(location: str | Path) -> bool:
    """Whether ``location`` names a filesystem by scheme (``s3a://``, ``file://``, ...)."""
    return "://" in str(location)


def open_source(data_dir: str | Path, engine: str = "duckdb", spark: Any = None) -> Source:
    """Read every present table of ``data_dir`` with ``engine`` ("duckdb" or "spark").

    ``spark`` is an existing SparkSession (required for the Spark engine); DuckDB gets a fresh
    in-memory connection. With Spark, ``data_dir`` may be any location Spark reads, kept as a
    string (``Path`` would turn ``s3a://b/x`` into ``s3a:/b/x``); DuckDB needs a local one.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "spark":
        if spark is None:
            raise ConfigError("the spark engine needs a SparkSession (spark=...)")
        return _open_spark(spark, str(data_dir))
    if is_uri(data_dir):
        raise ConfigError(
            f"the duckdb engine reads local directories only, not {data_dir}: "
            "use --engine spark for URIs"
        )
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataContractError(
            [Problem("(data directory)", None, f"{data_dir} is not a directory")]
        )
    backend = ibis.duckdb.connect()
    # DuckDB draws a progress bar on long queries by default, into stdout: it would
    # corrupt the output of commands that print machine-readable results (--json).
    # Inside Jupyter DuckDB draws the bar with ipywidgets and, without them installed,
    # refuses to change the setting: nothing is drawn into stdout there anyway.
    with contextlib.suppress(duckdb.InvalidInputException):
        backend.raw_sql("SET enable_progress_bar = false")
    # DuckDB 2.0 splits an aggregation grouped by a date column into date partitions; when
    # the scan also filters on that date (the features read date ranges), every partition
    # rescans the whole filtered range, reading the usage three times. Older versions do not
    # know the optimizer (nothing to disable).
    with contextlib.suppress(duckdb.Error):
        backend.raw_sql("SET disabled_optimizers = 'partitioned_execution'")
    tables: dict[str, ir.Table] = {}
    for name in TABLES:
        path = find_table(data_dir, name)
        if path is not None:
            raw = _read_duckdb(backend, path)
            tables[name] = cast_to_contract(raw, name, from_text=path.suffix == ".csv")
    return _checked_source(backend, tables, str(data_dir))


def _open_spark(spark: Any, location: str) -> Source:
    """A local directory is listed locally; anything else through Hadoop's FileSystem."""
    if not is_uri(location) and Path(location).is_dir():
        files = {name: str(path.resolve()) for name in TABLES
                 if (path := find_table(Path(location), name)) is not None}
    else:
        files = list_table_files(spark, location)
    backend = ibis.pyspark.connect(spark)
    tables: dict[str, ir.Table] = {}
    for name, uri in files.items():
        is_csv = uri.endswith(".csv")
        if is_csv:
            reader = spark.read.option("header", True).option("inferSchema", False)
            frame = reader.csv(uri)
        else:
            frame = spark.read.parquet(uri)
        view = f"src_{name}_{next(_view_counter)}"
        frame.createOrReplaceTempView(view)
        tables[name] = cast_to_contract(backend.table(view), name, from_text=is_csv, spark=True)
    return _checked_source(backend, tables, location)


def list_table_files(spark: Any, location: str) -> dict[str, str]:
    """The contract's table files under ``location`` (any Hadoop path), by table name."""
    fs, root = hadoop_path(spark, location)
    if not fs.exists(root) or not fs.getFileStatus(root).isDirectory():
        raise DataContractError(
            [Problem("(data directory)", None, f"{location} is not a directory")]
        )
    make_path = spark._jvm.org.apache.hadoop.fs.Path
    files: dict[str, str] = {}
    for name in TABLES:
        found = [f"{location.rstrip('/')}/{name}.{fmt}" for fmt in FORMATS
                 if fs.exists(make_path(root, f"{name}.{fmt}"))]
        if len(found) > 1:
            names = ", ".join(uri.rsplit("/", 1)[-1] for uri in found)
            raise DataContractError([Problem(name, None, f"two files for one table: {names}")])
        if found:
            files[name] = found[0]
    return files


def hadoop_path(spark: Any, uri: str) -> tuple[Any, Any]:
    """Hadoop's FileSystem and Path for ``uri`` (local, HDFS, S3A: whatever the cluster reads).

    Needs a classic session: Spark Connect has no JVM gateway to list or rename files with.
    """
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        raise RenewalError(
            "this Spark session has no JVM gateway (Spark Connect); run with a classic session"
        )
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), path


def _checked_source(backend: Any, tables: dict[str, ir.Table], location: str) -> Source:
    """The source, once the required tables and the usage grain's columns are there."""
    missing = [n for n, t in TABLES.items() if t.required and n not in tables]
    if missing:
        raise DataContractError(
            [Problem(n, None, f"required table is missing from {location}") for n in missing]
        )
    usage_columns = set(tables["usage"].columns)
    grain: UsageGrain = "user" if "user_id" in usage_columns else "account"
    if grain == "account" and "active_users" not in usage_columns:
        raise DataContractError(
            [Problem("usage", "active_users", "required when user_id is absent (account grain)")]
        )
    return Source(backend, tables, grain, "site_id" in usage_columns)


def _read_duckdb(backend: Any, path: Path) -> ir.Table:
    name = f"src_{path.stem}_{next(_view_counter)}"
    if path.suffix == ".parquet":
        return backend.read_parquet(path, table_name=name)
    # Every column as text: the contract decides the type, not DuckDB's sniffer (ids like 007).
    return backend.read_csv(path, table_name=name, all_varchar=True, header=True)


#: Whitespace around a number, date or boolean written as text, as a regex for Spark: Ibis
#: compiles ``strip()`` there to ``TRIM(' \t\n\r\v\f' FROM x)``, and Spark SQL reads
#: ``\v`` and ``\f`` as the letters v and f ("false" became "alse", "feature_request"
#: "eature_request": found by audit). Java's regex reads these escapes as the characters.
_SPARK_TRIM = r"^[ \t\n\r\x0b\x0c]+|[ \t\n\r\x0b\x0c]+$"


def cast_to_contract(raw: ir.Table, name: str, from_text: bool, spark: bool = False) -> ir.Table:
    """Keep the contract's columns, each cast to its kind (unknown extra columns are ignored).
    ``spark``: the table is read by Spark (its SQL needs another trim)."""
    spec = TABLES[name]
    return raw.select(**{c.name: _cast(raw[c.name], c, from_text, spark)
                         for c in spec.columns if c.name in raw.columns})


def _cast(value: ir.Value, column: Column, from_text: bool, spark: bool = False) -> ir.Value:
    """One column to its contract kind; "" from CSV means missing. Text is taken as written
    (ids and codes with whitespace around them are refused by the contract, free text is
    kept); a number, date or boolean written as text may have whitespace around it."""
    target = _IBIS_TYPES[column.kind]
    dtype = value.type()
    if dtype.is_string() and column.kind == "str" and not from_text:
        return value  # already typed by Parquet: no per-row work on the big table
    if dtype.is_string():
        if column.kind == "str":
            text = value
        else:
            text = value.re_replace(_SPARK_TRIM, "") if spark else value.strip()
        text = (text == "").ifelse(ibis.null("string"), text)
        if column.kind == "bool":
            lower = text.lower()
            return (
                ibis.cases(
                    (lower.isin(TRUE_WORDS), True),
                    (lower.isin(FALSE_WORDS), False),
                    else_=ibis.null("boolean"),
                )
            )
        if column.kind == "date":
            return text.substr(0, 10).cast("date")
        return text.cast(target)
    if column.kind == "date":
        if dtype.is_integer():  # Parquet nanosecond timestamps read as longs (Spark legacy mode)
            return (value // 1_000_000_000).as_timestamp("s").date()
        return value.cast("date") if not dtype.is_date() else value
    if column.kind == "str":
        return value.cast("string")
    if column.kind == "int" and dtype.is_floating():
        return value.round().cast("int64")
    return value.cast(target)


# -- the contract's core rules, checked by the engine -------------------------------------------

EXAMPLES = 3


def contract_problems(source: Source) -> list[Problem]:
    """The contract's core rules checked by the engine itself, worded as ``renewal.contract``.

    For data too big for pandas (``renewal.contract`` reads every table into memory): required
    columns, nulls, ranges and enums, duplicate keys, unknown accounts, contract end dates; a
    few aggregations per table, so the usage table is scanned about three times and only counts
    and a few example keys reach the driver. Values the cast would fail on or round are
    counted per column beforehand (``features.raw_values``, on DuckDB); otherwise a table
    that cannot be cast is one problem, named by the engine's error.
    """
    problems: list[Problem] = []
    accounts = source.tables.get("accounts")
    for name, table in source.tables.items():
        try:
            problems.extend(_table_problems(name, table, accounts))
        except RenewalError:
            raise
        except Exception as exc:  # the engine's cast of a bad value: name the table, no trace
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            problems.append(Problem(name, None, f"cannot be read or cast: {first}"))
    return problems


def _table_problems(name: str, table: ir.Table, accounts: ir.Table | None) -> list[Problem]:
    spec = TABLES[name]
    present = [c for c in spec.columns if c.name in table.columns]
    problems = [Problem(name, c.name, "required column is missing")
                for c in spec.columns if c.required and c.name not in table.columns]
    rules = {f"r{i}": rule for i, rule in enumerate(_column_rules(present, table))}
    if name == "contracts" and {"start_date", "end_date"} <= set(table.columns):
        rules["ends"] = ("end_date", "end_date must be after start_date",
                         (table.end_date <= table.start_date).fill_null(False))
    counts = table.aggregate(
        rows=table.count(),
        **{label: cond.ifelse(1, 0).sum() for label, (_c, _r, cond) in rules.items()},
    ).to_pandas().iloc[0]
    if int(counts["rows"]) == 0:
        # An optional table with a header and no rows is present and empty (as renewal.contract):
        # nothing else in it can break a rule.
        return [*problems, Problem(name, None, "table is empty")] if spec.required else problems
    key = [k for k in spec.key if k in table.columns] or [table.columns[0]]
    for label, (column, rule, cond) in rules.items():
        rows = int(counts[label] or 0)
        if rows:
            examples = example_keys(table.filter(cond).select(key).distinct())
            problems.append(Problem(name, column, rule, rows, examples))
    problems.extend(_duplicate_keys(name, table))
    if accounts is not None and name != "accounts" and "account_id" in table.columns:
        unknown = table.filter(table.account_id.notnull()).anti_join(
            accounts.select("account_id"), "account_id")
        rows = int(unknown.count().to_pandas())
        if rows:
            examples = example_keys(unknown.select("account_id").distinct())
            problems.append(Problem(name, "account_id", "references an unknown account",
                                    rows, examples))
    return problems


def _column_rules(columns: list[Column], table: ir.Table) -> list[tuple[str, str, ir.BooleanValue]]:
    """(column, rule wording of renewal.contract, condition of a breaking row) per rule."""
    rules = []
    for column in columns:
        value = table[column.name]
        if not column.nullable:
            rules.append((column.name, "nulls in a required column", value.isnull()))
        if column.enum:
            rules.append((column.name, f"values must be one of {', '.join(column.enum)}",
                          value.notnull() & ~value.isin(list(column.enum))))
        if column.min is not None:
            below = value <= column.min if column.min_exclusive else value < column.min
            sign = ">" if column.min_exclusive else ">="
            rules.append((column.name, f"values must be {sign} {column.min:g}",
                          below.fill_null(False)))
        if column.max is not None:
            rules.append((column.name, f"values must be <= {column.max:g}",
                          (value > column.max).fill_null(False)))
    return rules


def _duplicate_keys(name: str, table: ir.Table) -> list[Problem]:
    """Rows whose key occurs more than once (every such row counts, as pandera's "all")."""
    key = [k for k in TABLES[name].key if k in table.columns]
    if not key:
        return []
    groups = table.group_by(key).aggregate(n=table.count())
    duplicated = groups.filter(groups.n > 1)
    rows = duplicated.n.sum().to_pandas()
    if not rows or rows != rows:  # None or NaN: no duplicates
        return []
    examples = example_keys(duplicated.select(key))
    return [Problem(name, ", ".join(key), f"duplicate key ({', '.join(key)})", int(rows),
                    examples)]


def example_keys(keys: ir.Table) -> tuple[str, ...]:
    """Up to three example keys, rendered as renewal.contract does ("a/2024-01-31")."""
    frame = keys.order_by(list(keys.columns)).limit(EXAMPLES).to_pandas()
    return tuple("/".join(_render(v) for v in row) for row in frame.itertuples(index=False))


def _render(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "null" if pd.isna(value) else str(value)


class SparkUnavailableError(RenewalError):
    """PySpark (the ``spark`` extra) or Java is missing, or the session cannot start."""


def start_spark(
    master: str, app_name: str = "renewal", config: dict[str, str] | None = None
) -> tuple[Any, bool]:
    """A Spark session for a job, and whether the job owns it (and so must stop it).

    An already active session (a notebook, ``spark-submit``, a test) is used as it is. A new
    one gets UTC dates, ``config`` on top, and, for a local master, few shuffle partitions and
    this interpreter as the Python workers (``python3`` on PATH may lack the project).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "the spark engine needs pyspark: install the 'spark' extra (pip install renewal[spark])"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    try:
        return builder.getOrCreate(), True
    except Exception as exc:  # no Java, bad master URL: say so instead of a JVM traceback
        raise SparkUnavailableError(
            f"cannot start Spark on {master!r}: {str(exc).splitlines()[0][:300]}"
        ) from exc
