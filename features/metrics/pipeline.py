"""The one place where the metrics borrow rules from the feature pipeline.

The cohort metrics must count an account as activated, or a month as active, exactly when the
per-account vectors do; so these rules are taken from the pipeline, not re-derived.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.config import FeatureConfig
from features.daily import accounts_as_of, daily_activity, materialized
from features.source import Source
from features.windows import Window
from features.windows.activation import activation_features
from features.windows.activity import working_day_thresholds


def required_active_days(month_starts: pd.Series, config: FeatureConfig) -> pd.Series:
    """Active days each month needs to be monthly active: the pipeline's threshold."""
    if config.monthly_rule == "days":
        return pd.Series(config.monthly_active_days, index=month_starts.index, dtype="int64")
    starts = pd.to_datetime(month_starts)
    if starts.empty:
        return pd.Series(dtype="int64", index=month_starts.index)
    first, last = starts.min().date(), starts.max().date()
    thresholds = working_day_thresholds(first, last, config)
    by_month = dict(zip(thresholds["month"], thresholds["required_active_days"], strict=True))
    numbers = starts.dt.year * 12 + starts.dt.month
    return numbers.map(by_month).astype("int64")


@contextmanager
def shared_daily(source: Source, as_of: date, config: FeatureConfig) -> Iterator[ir.Table]:
    """The pipeline's daily table up to ``as_of`` (whole history: monthly activity reads every
    month), computed once for several metrics and dropped afterwards (a long-running service
    must not pile up temporary tables)."""
    with materialized(source, daily_activity(source, as_of, config), name="metrics_daily") as daily:
        yield daily


def activation_per_account(
    source: Source, as_of: date, config: FeatureConfig, daily: ir.Table
) -> pd.DataFrame:
    """Per account signed on or before ``as_of``: ``activation_window_days``, ``activated``
    (within its window, from data dated <= ``as_of``) and ``days_to_activation``.

    Runs the vectors' own activation family on a spine of every account at ``as_of``;
    ``daily`` is :func:`shared_daily`.
    """
    accounts = accounts_as_of(source, as_of)
    spine = accounts.select("account_id", as_of=ibis.literal(as_of, "date"))
    window = Window(
        source=source, spine=spine, daily=daily, config=config, first_as_of=as_of,
        last_as_of=as_of,
    )
    activation = activation_features(window).select(
        "account_id", "activated", "days_to_activation", "activation_window_days"
    )
    frame = source.backend.execute(activation)
    frame["account_id"] = frame["account_id"].astype("string")
    frame["activated"] = frame["activated"].astype("boolean").fillna(False).astype(bool)
    frame["days_to_activation"] = frame["days_to_activation"].astype("Int64")
    frame["activation_window_days"] = frame["activation_window_days"].astype("int64")
    return frame
