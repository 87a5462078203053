"""Monthly activity rate: monthly-active paying accounts / paying accounts, per calendar month.

A month counts once it has ended on or before ``as_of``. An account is *paying* in a month when
a contract covers both the month's first and its last day (``start_date <= day <= end_date``):
a month in which the account signed or churned is not a fair test of a month's activity (it
cannot reach 12 active days in a week of contract), so such accounts are reported apart as
``partial_month_accounts`` and kept out of the rate; signing-month behaviour is what the
activation metric measures. Active days come from the pipeline's daily table, so the tiers
and the active-day rule are exactly the feature pipeline's.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.config import FeatureConfig
from features.metrics.frames import GroupBy, attach_group, month_label, period_keys, safe_ratio
from features.metrics.pipeline import required_active_days
from features.source import Source

PERIOD = "month"
ACTIVITY_COLUMNS = (
    "paying_accounts", "monthly_active_accounts", "monthly_activity_rate",
    "partial_month_accounts", "active_days_required",
)


def last_complete_month_end(as_of: date) -> date:
    """The last day of the latest calendar month that ended on or before ``as_of``."""
    if (as_of + timedelta(days=1)).month != as_of.month:
        return as_of
    return as_of.replace(day=1) - timedelta(days=1)


def active_days_per_account_month(
    source: Source, daily: ir.Table, last_month_end: date
) -> pd.DataFrame:
    """Active days per account and calendar month, computed in the engine, up to the month end
    (months without an active day may have no row)."""
    daily = daily.filter(daily.date <= ibis.literal(last_month_end, "date"))
    per_month = daily.group_by("account_id", month_start=daily.date.truncate("M")).aggregate(
        active_days=daily.count(where=daily.active)
    )
    frame = source.backend.execute(per_month)
    frame["account_id"] = frame["account_id"].astype("string")
    frame["month_start"] = pd.to_datetime(frame["month_start"]).astype("datetime64[ns]")
    frame["active_days"] = frame["active_days"].fillna(0).astype("int64")
    return frame


def paying_months(contracts: pd.DataFrame, last_month_end: date) -> pd.DataFrame:
    """One row per (account, month start) in which a contract covers at least one day, with
    ``whole_month`` True when the account's contracts together cover every day of the month.

    Together, not each: a term ending on the 15th followed by one from the 16th pays the whole
    month, but a term ending on the 10th and the next one starting on the 20th leaves a gap,
    and that month is partial (an account that lapsed during it is not a paying account).
    """
    if contracts.empty:
        return pd.DataFrame({"account_id": pd.Series(dtype="string"),
                             "month_start": pd.Series(dtype="datetime64[ns]"),
                             "whole_month": pd.Series(dtype=bool)})
    limit = pd.Timestamp(last_month_end)
    terms = contracts[contracts["start_date"] <= limit][["account_id", "start_date", "end_date"]]
    first_index = _month_index(terms["start_date"])
    last_index = _month_index(terms["end_date"].clip(upper=limit))
    rows = terms.loc[terms.index.repeat((last_index - first_index + 1).clip(lower=0))].copy()
    index = first_index.loc[rows.index] + rows.groupby(level=0).cumcount()
    rows["month_start"] = pd.to_datetime(
        pd.DataFrame({"year": index // 12, "month": index % 12 + 1, "day": 1})
    ).astype("datetime64[ns]")
    month_end = rows["month_start"] + pd.offsets.MonthEnd(0)
    # Each term's days within the month, then their union, term by term in order of start.
    rows["from_day"] = rows["start_date"].where(rows["start_date"] > rows["month_start"],
                                                rows["month_start"])
    rows["to_day"] = rows["end_date"].where(rows["end_date"] < month_end, month_end)
    rows = rows.sort_values(["account_id", "month_start", "from_day"], kind="stable")
    keys = ["account_id", "month_start"]
    reached = rows.groupby(keys, sort=False)["to_day"].cummax()
    reached_before = reached.groupby([rows["account_id"], rows["month_start"]],
                                     sort=False).shift(1)
    rows["gap_before"] = reached_before.notna() & (
        rows["from_day"] > reached_before + pd.Timedelta(days=1))
    per_month = rows.groupby(keys, sort=False).agg(
        first_day=("from_day", "min"), last_day=("to_day", "max"), gaps=("gap_before", "any")
    ).reset_index()
    per_month_end = per_month["month_start"] + pd.offsets.MonthEnd(0)
    per_month["whole_month"] = ((per_month["first_day"] == per_month["month_start"])
                                & (per_month["last_day"] == per_month_end)
                                & ~per_month["gaps"])
    return per_month[["account_id", "month_start", "whole_month"]]


def _month_index(dates: pd.Series) -> pd.Series:
    """Months since year 0, so that consecutive months are consecutive integers."""
    return dates.dt.year * 12 + dates.dt.month - 1


def activity_table(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    by: GroupBy | None,
    days: ir.Table,
) -> pd.DataFrame:
    """Per month (and group): paying accounts, monthly-active ones, the rate, partial months.

    ``days`` are the pipeline's days up to ``as_of`` (``pipeline.shared_days``).
    """
    keys = period_keys(PERIOD, by)
    last_month_end = last_complete_month_end(as_of)
    paying = paying_months(contracts, last_month_end)
    active = active_days_per_account_month(source, days, last_month_end)
    frame = paying.merge(active, on=["account_id", "month_start"], how="left")
    frame["active_days"] = frame["active_days"].fillna(0).astype("int64")
    frame["active_days_required"] = required_active_days(frame["month_start"], config)
    frame["monthly_active"] = frame["whole_month"] & (
        frame["active_days"] >= frame["active_days_required"]
    )
    frame[PERIOD] = month_label(frame["month_start"])
    frame = attach_group(frame, accounts, by)
    table = frame.groupby(keys, sort=True).agg(
        paying_accounts=("whole_month", "sum"),
        monthly_active_accounts=("monthly_active", "sum"),
        partial_month_accounts=("whole_month", lambda whole: int((~whole).sum())),
        active_days_required=("active_days_required", "first"),
    ).reset_index()
    table["monthly_activity_rate"] = safe_ratio(
        table["monthly_active_accounts"], table["paying_accounts"]
    )
    out = table[[*keys, *ACTIVITY_COLUMNS]].copy()
    for column in ("paying_accounts", "monthly_active_accounts", "partial_month_accounts"):
        out[column] = out[column].astype("int64")
    out["active_days_required"] = out["active_days_required"].astype("int64")
    for key in keys:
        out[key] = out[key].astype("string")
    return out.reset_index(drop=True)
