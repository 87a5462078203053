"""Open a data directory as engine-native Ibis tables, cast to the contract's kinds.

The engine reads the files itself (DuckDB ``read_parquet``/``read_csv``, Spark ``spark.read``):
the usage table can hold billions of rows and must never pass through pandas. Casting once
here means every feature definition meets the same types on every engine.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.types as ir

from renewal.datadir import find_table
from renewal.errors import ConfigError, DataContractError, Problem
from renewal.tables import TABLES, Column

UsageGrain = Literal["user", "account"]
ENGINES = ("duckdb", "spark")

_IBIS_TYPES = {
    "str": "string", "date": "date", "int": "int64", "float": "float64", "bool": "boolean",
}
_TRUE_WORDS = ("true", "t", "1", "yes", "y")
_FALSE_WORDS = ("false", "f", "0", "no", "n")
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


def open_source(data_dir: Path, engine: str = "duckdb", spark: Any = None) -> Source:
    """Read every present table of ``data_dir`` with ``engine`` ("duckdb" or "spark").

    ``spark`` is an existing SparkSession (required for the Spark engine); DuckDB gets a fresh
    in-memory connection.
    """
    data_dir = Path(data_dir)
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "spark" and spark is None:
        raise ConfigError("the spark engine needs a SparkSession (spark=...)")
    if not data_dir.is_dir():
        raise DataContractError(
            [Problem("(data directory)", None, f"{data_dir} is not a directory")]
        )
    if engine == "duckdb":
        backend = ibis.duckdb.connect()
        # DuckDB draws a progress bar on long queries by default, into stdout: it would
        # corrupt the output of commands that print machine-readable results (--json).
        # Inside Jupyter DuckDB draws the bar with ipywidgets and, without them installed,
        # refuses to change the setting: nothing is drawn into stdout there anyway.
        with contextlib.suppress(duckdb.InvalidInputException):
            backend.raw_sql("SET enable_progress_bar = false")
    else:
        backend = ibis.pyspark.connect(spark)
    tables: dict[str, ir.Table] = {}
    for name in TABLES:
        path = find_table(data_dir, name)
        if path is None:
            continue
        if engine == "duckdb":
            raw = _read_duckdb(backend, path)
        else:
            raw = _read_spark(spark, backend, path)
        tables[name] = _cast_to_contract(raw, name, from_text=path.suffix == ".csv")
    missing = [n for n, t in TABLES.items() if t.required and n not in tables]
    if missing:
        raise DataContractError(
            [Problem(n, None, f"required table is missing from {data_dir}") for n in missing]
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


def _read_spark(spark: Any, backend: Any, path: Path) -> ir.Table:
    name = f"src_{path.stem}_{next(_view_counter)}"
    uri = str(path.resolve())
    if path.suffix == ".parquet":
        frame = spark.read.parquet(uri)
    else:
        frame = spark.read.option("header", True).option("inferSchema", False).csv(uri)
    frame.createOrReplaceTempView(name)
    return backend.table(name)


def _cast_to_contract(raw: ir.Table, name: str, from_text: bool) -> ir.Table:
    """Keep the contract's columns, each cast to its kind (unknown extra columns are ignored)."""
    spec = TABLES[name]
    return raw.select(
        **{c.name: _cast(raw[c.name], c, from_text) for c in spec.columns if c.name in raw.columns}
    )


def _cast(value: ir.Value, column: Column, from_text: bool) -> ir.Value:
    """One column to its contract kind; text from CSV is trimmed and "" means missing."""
    target = _IBIS_TYPES[column.kind]
    dtype = value.type()
    if dtype.is_string() and column.kind == "str" and not from_text:
        return value  # already typed by Parquet: no per-row work on the big table
    if dtype.is_string():
        text = value.strip()
        text = (text == "").ifelse(ibis.null("string"), text)
        if column.kind == "bool":
            lower = text.lower()
            return (
                ibis.cases(
                    (lower.isin(_TRUE_WORDS), True),
                    (lower.isin(_FALSE_WORDS), False),
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
