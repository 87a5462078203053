"""Point-in-time feature vectors: one row per (account_id, as_of), no look-ahead.

Training asks for tens of thousands of different as-of dates (one per contract), so every
family is a set-based range join of the spine against the inputs, run as one engine query;
pandas only sees the final per-row frame.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.config import FeatureConfig
from features.daily import materialized, usage_days
from features.registry import FEATURES, model_features
from features.source import Source
from features.windows import KEYS, Window, lookback_start
from features.windows.activation import activation_features
from features.windows.activity import activity_features
from features.windows.breadth import distinct_active_users_30d, site_features
from features.windows.contracts import account_context, contract_features
from features.windows.history import account_history
from features.windows.manual_health import manual_health_features
from features.windows.surveys import survey_features
from features.windows.tickets import ticket_features
from features.windows.value import value_features
from renewal.errors import SpineError

# Counts that are 0, not unknown, when a spine row has no matching rows in a present table.
_ZERO_WHEN_ABSENT = (
    "observed_days_30d", "active_days_30d", "tier_zero_days_30d", "tier_low_days_30d",
    "tier_mid_days_30d", "tier_high_days_30d", "weekly_active_weeks_12w", "observed_weeks_12w",
    "monthly_active_months_3m", "observed_months_3m", "activity_rate_3m", "logins_30d",
    "key_actions_30d", "active_sites_30d", "bugs_90d", "feature_requests_90d",
    "usage_questions_90d", "open_high_bugs", "overdue_high_bugs", "overdue_bugs",
    "cumulative_value", "observed_days_90d", "active_days_90d", "logged_in_seat_days_90d",
)


# Never-null counts keep an integer dtype; every other numeric feature is float64 (nullable).
_INTEGER_FEATURES = frozenset(_ZERO_WHEN_ABSENT) - {"activity_rate_3m", "cumulative_value"} | {
    "seats", "tenure_days", "activation_window_days",
}


def features_as_of(
    source: Source, as_of: date, config: FeatureConfig, *, daily: ir.Table | None = None
) -> pd.DataFrame:
    """Vectors of every account signed on or before ``as_of``."""
    accounts = source.tables["accounts"]
    ids = accounts.filter(accounts.signed_at <= ibis.literal(as_of, "date")).select("account_id")
    spine = ids.distinct().to_pandas()
    spine["as_of"] = pd.Timestamp(as_of)
    return feature_vectors(source, spine, config, daily=daily)


def feature_vectors(
    source: Source,
    spine: ir.Table | pd.DataFrame,
    config: FeatureConfig,
    *,
    daily: ir.Table | None = None,
) -> pd.DataFrame:
    """One row per spine row, sorted by (account_id, as_of), each from data dated <= its as_of.

    Three engine queries, whose temporary tables are dropped afterwards: the days with usage
    that the windows read (from ``lookback_start`` of the earliest as_of on); each account's
    first day and activation date (those days plus one pass over the older usage); then every
    family as one expression. ``daily`` may pass an already computed (e.g. cached)
    ``daily_activity`` of the whole history up to at least the latest as_of, computed with
    ``config``, to read instead of the usage.
    """
    rows = _normalise_spine(spine)
    if rows.empty:
        return pd.DataFrame({"account_id": pd.Series(dtype="string"),
                             "as_of": pd.Series(dtype="datetime64[ns]")})
    distinct = rows.drop_duplicates().reset_index(drop=True)
    first, last = distinct.as_of.min().date(), distinct.as_of.max().date()
    spine_table = ibis.memtable(
        pd.DataFrame({"account_id": distinct.account_id.astype(str),
                      "as_of": distinct.as_of.dt.date}),
        schema={"account_id": "string", "as_of": "date"},
    )
    _check_accounts_exist(source, spine_table)
    since = lookback_start(first)
    with ExitStack() as temporary:
        if daily is None:
            # The windows' days, kept: the history below reads them too, not their usage.
            days = temporary.enter_context(materialized(
                source, usage_days(source, last, config, since=since), "usage_days"
            ))
            history = account_history(source, last, config, days, since)
        else:
            days = daily.filter(daily.date >= ibis.literal(since, "date"))
            history = account_history(source, last, config, daily)
        history = temporary.enter_context(materialized(source, history, "history"))
        window = Window(source, spine_table, days, history, config, first, last)
        frame = source.backend.to_pandas(_vectors_expression(window))
    frame = _finish(frame, source, config)
    out = rows.merge(frame, on=list(KEYS), how="left", validate="many_to_one")
    return out.sort_values(list(KEYS), kind="stable").reset_index(drop=True)


def _normalise_spine(spine: ir.Table | pd.DataFrame) -> pd.DataFrame:
    if isinstance(spine, ir.Table):
        spine = spine.select(*KEYS).to_pandas()
    missing = [c for c in KEYS if c not in spine.columns]
    if missing:
        raise SpineError(f"spine is missing column(s) {', '.join(missing)}")
    as_of = pd.to_datetime(spine["as_of"])
    if as_of.dt.tz is not None:  # a zoned timestamp counts by its date as written there
        as_of = as_of.dt.tz_localize(None)
    rows = pd.DataFrame({
        "account_id": spine["account_id"].astype("string"),
        "as_of": as_of.dt.normalize().astype("datetime64[ns]"),
    })
    bad = rows.account_id.isna() | rows.as_of.isna()
    if bad.any():
        raise SpineError(f"spine has {int(bad.sum())} row(s) without account_id or as_of, "
                         f"e.g. {rows[bad].head(3).to_dict('records')}")
    return rows


def _check_accounts_exist(source: Source, spine: ir.Table) -> None:
    """Refuse rows for unknown accounts or accounts signed after their as_of (not dropped)."""
    accounts = source.tables["accounts"]
    joined = spine.left_join(accounts, "account_id").select(
        spine.account_id, spine.as_of, accounts.signed_at
    )
    bad = joined.filter(joined.signed_at.isnull() | (joined.signed_at > joined.as_of))
    found = bad.limit(3).to_pandas()
    if len(found):
        total = int(bad.count().to_pandas())
        examples = ", ".join(f"{r.account_id}@{pd.Timestamp(r.as_of):%Y-%m-%d}"
                             for r in found.itertuples())
        raise SpineError(
            f"spine: {total} row(s) ask for an account unknown or not yet signed at as_of "
            f"(accounts.signed_at), e.g. {examples}"
        )


def _vectors_expression(window: Window) -> ir.Table:
    """All families left-joined onto the account context, as one engine expression."""
    out = account_context(window)
    families = [
        contract_features(window),
        activity_features(window),
        activation_features(window),
        distinct_active_users_30d(window),
        site_features(window),
        manual_health_features(window),
        ticket_features(window),
        survey_features(window),
        value_features(window),
    ]
    for family in families:
        if family is None:
            continue
        extra = [c for c in family.columns if c not in KEYS and c not in out.columns]
        out = out.left_join(family, list(KEYS)).select(out, *[family[c] for c in extra])
    return out


def _finish(frame: pd.DataFrame, source: Source, config: FeatureConfig) -> pd.DataFrame:
    """Derived ratios, zero-fills, registry column order and stable dtypes."""
    frame = frame.copy()
    for column in _ZERO_WHEN_ABSENT:
        if column in frame.columns:
            frame[column] = frame[column].fillna(0)
    seats = frame["seats"].astype("float64")
    if source.usage_grain == "user":
        users = frame["distinct_active_users_30d"].fillna(0).astype("float64")
    else:
        users = frame["max_daily_active_users_30d"].fillna(0).astype("float64")
    frame["seat_utilization_30d"] = users / seats
    if "cumulative_value" in frame.columns:
        # Rounded to a millionth: the engines add the amounts in different orders, so their
        # sums differ in the last bits, and 79999.4 + 0.2 + 0.4 was 79999.99999999999 (not
        # past 80,000) on one and 80000.0 (past) on the other (found by audit).
        frame["cumulative_value"] = frame["cumulative_value"].astype("float64").round(6)
        frame["north_star_reached"] = frame["cumulative_value"] >= config.north_star_threshold
    columns = [*KEYS, *model_features(frame.columns)]
    frame = frame[columns]
    frame["account_id"] = frame["account_id"].astype("string")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
    for feature in FEATURES:
        if feature.name in frame.columns:
            frame[feature.name] = _typed(frame[feature.name], feature.name, feature.kind)
    return frame


def _typed(values: pd.Series, name: str, kind: str) -> pd.Series:
    """One dtype per feature whatever the data or engine: string, boolean, int64 or float64."""
    if kind == "category":
        return values.astype("string")
    if kind == "bool":
        return values.astype("boolean")
    if name in _INTEGER_FEATURES:
        return values.astype("int64")
    return values.astype("float64")
