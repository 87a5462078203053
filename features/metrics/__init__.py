"""Cohort metrics for CS operations: activation, monthly activity, logo renewal and NDR.

Each metric is a small table keyed by a calendar month (signing, activity or renewal month),
optionally split by a group (segment, CSM or signing cohort), with its counts next to its rate
so that a rate is never read without its denominator. As of ``as_of``, only data dated on or
before that day is used. Exact definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from datetime import date
from typing import Any, Literal

import pandas as pd

from features.config import FeatureConfig
from features.metrics.activation import activation_table
from features.metrics.activity import activity_table
from features.metrics.frames import GROUP_BYS, GroupBy, accounts_frame, contracts_frame
from features.metrics.pipeline import shared_days
from features.metrics.renewals import ended_contracts, ndr_table, renewal_table
from features.source import Source
from renewal.errors import RenewalError

Metric = Literal["activation", "activity", "renewal", "ndr"]
METRICS: tuple[Metric, ...] = ("activation", "activity", "renewal", "ndr")

__all__ = [
    "GROUP_BYS", "METRICS", "GroupBy", "Metric", "all_metrics", "cohort_metrics", "to_records",
]


def cohort_metrics(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    metric: Metric,
    by: GroupBy | None = None,
) -> pd.DataFrame:
    """One metric's table as of ``as_of``: period column, the ``by`` column if asked, counts,
    rate. Rates are null (never NaN or inf) where the denominator is zero."""
    return _compute(source, as_of, config, (metric,), by)[metric]


def all_metrics(
    source: Source, as_of: date, config: FeatureConfig, by: GroupBy | None = None
) -> dict[str, pd.DataFrame]:
    """Every metric's table, sharing one read of the accounts and contracts."""
    return _compute(source, as_of, config, METRICS, by)


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows of plain Python values: dates as ISO strings, missing as None (no NaN),
    floats at full precision."""
    return [
        {column: _plain(value) for column, value in zip(frame.columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, date | pd.Timestamp):
        return value.isoformat()[:10] if isinstance(value, pd.Timestamp) else value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _compute(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    metrics: tuple[str, ...],
    by: GroupBy | None,
) -> dict[str, pd.DataFrame]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise RenewalError(f"unknown metric {unknown[0]!r}; choose one of {', '.join(METRICS)}")
    if by is not None and by not in GROUP_BYS:
        raise RenewalError(f"unknown grouping {by!r}; choose one of {', '.join(GROUP_BYS)}")
    accounts = accounts_frame(source, as_of, by)
    contracts = contracts_frame(source, accounts) if set(metrics) - {"activation"} else None
    out: dict[str, pd.DataFrame] = {}
    with ExitStack() as stack:
        days = None
        if {"activation", "activity"} & set(metrics):
            days = stack.enter_context(shared_days(source, as_of, config))
        for metric in metrics:
            if metric == "activation":
                out[metric] = activation_table(source, as_of, config, accounts, by, days)
            elif metric == "activity":
                out[metric] = activity_table(source, as_of, config, accounts, contracts, by,
                                             days)
            else:
                ended = ended_contracts(contracts, accounts, as_of, by)
                table = renewal_table if metric == "renewal" else ndr_table
                out[metric] = table(ended, by)
    return out
