"""``renewal metrics``: cohort metrics for CS operations, as tables for people or JSON."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import pandas as pd


class MetricName(StrEnum):
    activation = "activation"
    activity = "activity"
    renewal = "renewal"
    ndr = "ndr"


class GroupName(StrEnum):
    segment = "segment"
    csm_id = "csm_id"
    cohort = "cohort"


TITLES = {
    "activation": "Activation within window, per signing month",
    "activity": "Monthly activity rate (monthly-active paying accounts / paying accounts)",
    "renewal": "Logo renewal rate, per renewal month",
    "ndr": "Net dollar retention, per renewal month",
}


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)


def metrics(
    data: Annotated[Path, typer.Option("--data", help="Data directory (docs/data-contract.md).")],
    as_of: Annotated[
        datetime,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Use data dated up to this day."),
    ],
    by: Annotated[
        GroupName | None, typer.Option("--by", help="Split every table by this account attribute.")
    ] = None,
    metric: Annotated[
        MetricName | None, typer.Option("--metric", help="One metric only (default: all four).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document {metric: list of rows} instead.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Feature thresholds (TOML); default RENEWAL_FEATURE_CONFIG."),
    ] = None,
) -> None:
    """Activation, monthly activity, logo renewal and NDR as of a day, with their counts.

    Definitions: docs/metrics.md.
    """
    import json
    from contextlib import nullcontext

    from rich.console import Console

    from features.config import load_feature_config
    from features.freshness import data_warnings
    from features.metrics import METRICS, all_metrics, cohort_metrics, to_records
    from features.source import open_source
    from features.validation import check_data_dir
    from renewal.console import print_table, print_warning
    from renewal.settings import get_settings

    day = as_of.date()
    feature_config = load_feature_config(config or get_settings().feature_config)
    # Like features, train and score: refuse a directory that breaks the contract before any
    # computation (exit 2, listing the problems), rather than count broken rows silently.
    # Data dated after --as-of is allowed: metrics use only what is dated up to that day.
    check_data_dir(data)
    group = by.value if by else None
    progress = Console(stderr=True)
    spinner = progress.status("Computing cohort metrics…") if progress.is_terminal else None
    with spinner or nullcontext():
        source = open_source(data)
        _quiet_engine(source)
        warnings = data_warnings(source, day, feature_config)
        if metric is None:
            tables = all_metrics(source, day, feature_config, by=group)
        else:
            tables = {metric.value: cohort_metrics(source, day, feature_config, metric.value,
                                                   by=group)}
    for warning in warnings:  # on stderr: the JSON on stdout stays one document
        print_warning(progress, warning)
    if as_json:
        document = {name: to_records(tables[name]) for name in METRICS if name in tables}
        typer.echo(json.dumps(document, allow_nan=False))
        return
    console = Console(highlight=False)
    console.print(f"Cohort metrics of {data} as of {day.isoformat()}", style="bold")
    for name, table in tables.items():
        print_table(console, _rich_table(name, table))


def _quiet_engine(source) -> None:
    """DuckDB draws its own progress bar on stdout for queries over ~2 s: it would corrupt the
    JSON document and interleave with the tables."""
    connection = getattr(source.backend, "con", None)
    if connection is not None and source.backend.name == "duckdb":
        connection.execute("SET enable_progress_bar = false")


def _rich_table(name: str, frame: pd.DataFrame):
    """A rich table: rates as percentages, money with separators, missing values as '-'."""
    from rich.table import Table

    table = Table(title=TITLES[name], title_justify="left")
    for column in frame.columns:
        numeric = column not in ("month", "signing_month", "renewal_month", "segment", "csm_id",
                                 "cohort")
        table.add_column(column.replace("_", " "), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(column, value) for column, value in zip(frame.columns, row,
                                                                        strict=True)))
    if frame.empty:
        table.caption = "no rows: nothing in the data falls in this metric's months yet"
    return table


def _cell(column: str, value: object) -> str:
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "-"
    if column.endswith("_rate") or column == "ndr":
        return f"{float(value):.1%}"
    if column.endswith("_arr"):
        return f"{float(value):,.0f}"
    return str(value)
