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
from features.daily import accounts_as_of, materialized
from features.source import Source
from features.windows import Window
from features.windows.activation import activation_features
from features.windows.activity import working_day_thresholds
from features.windows.history import account_history, active_days


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
def shared_days(source: Source, as_of: date, config: FeatureConfig) -> Iterator[ir.Table]:
    """Every day with usage up to ``as_of`` and whether it is active (a day without a row is
    never active), computed once for the activation and activity metrics (monthly activity
    reads every month) and dropped afterwards: a long-running service must not pile up
    temporary tables."""
    with materialized(source, active_days(source, as_of, config), name="metrics_days") as days:
        yield days


def activation_per_account(
    source: Source, as_of: date, config: FeatureConfig, days: ir.Table
) -> pd.DataFrame:
    """Per account signed on or before ``as_of``: ``activation_window_days``, ``activated``
    (within its window, from data dated <= ``as_of``; null when unknown) and
    ``days_to_activation``.

    Runs the vectors' own activation family on a spine of every account at ``as_of``;
    ``days`` is :func:`shared_days`.
    """
    accounts = accounts_as_of(source, as_of)
    spine = accounts.select("account_id", as_of=ibis.literal(as_of, "date"))
    window = Window(
        source=source, spine=spine, days=days,
        history=account_history(source, as_of, config, days), config=config,
        first_as_of=as_of, last_as_of=as_of,
    )
    activation = activation_features(window).select(
        "account_id", "activated", "days_to_activation", "activation_window_days"
    )
    frame = source.backend.execute(activation)
    frame["account_id"] = frame["account_id"].astype("string")
    # Null: signed before ``usage_history_starts`` (activation unknown).
    frame["activated"] = frame["activated"].astype("boolean")
    frame["days_to_activation"] = frame["days_to_activation"].astype("Int64")
    frame["activation_window_days"] = frame["activation_window_days"].astype("int64")
    return frame
