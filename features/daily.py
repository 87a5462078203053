"""Usage -> one row per account and calendar day, with the domain's activity tier.

Activity is measured on the paying entity: user- or site-level rows are summed to the account
first (one pass over the big table), then every calendar day from the account's start to
``as_of`` gets a row, zero-usage days included, so that "active days in a window" is a plain
count and young accounts can be told apart from idle ones.
"""

from __future__ import annotations

import itertools
from datetime import date

import ibis
import ibis.expr.types as ir

from features.config import TIERS, FeatureConfig
from features.source import Source

DAILY_COLUMNS = (
    "account_id", "date", "key_actions", "logins", "active_users", "seats", "tier", "active",
)
# Key actions and logged-in seats are integers; the caps are products of floats such as
# 10 * 0.6 * 2, which may land a hair off the exact value. The tolerance keeps the domain's
# boundary semantics ("<=" belongs to the lower tier) exact for every integer count.
_TOLERANCE = 1e-9
_materialized = itertools.count()


def usage_per_account_day(source: Source, as_of: date) -> ir.Table:
    """Usage summed to (account_id, date), dated on or before ``as_of``."""
    usage = source.tables["usage"]
    usage = usage.filter(usage.date <= ibis.literal(as_of, "date"))
    if source.usage_grain == "user":
        active_users = usage.user_id.nunique(where=usage.logins > 0)
    else:
        active_users = usage.active_users.sum()
    return usage.group_by("account_id", "date").aggregate(
        key_actions=usage.key_actions.sum(),
        logins=usage.logins.sum(),
        active_users=active_users,
    )


def accounts_as_of(source: Source, as_of: date) -> ir.Table:
    """Accounts signed on or before ``as_of`` (later ones do not exist yet at ``as_of``)."""
    accounts = source.tables["accounts"]
    return accounts.filter(accounts.signed_at <= ibis.literal(as_of, "date"))


def tier_expression(
    key_actions: ir.IntegerValue, active_users: ir.IntegerValue, seats: ir.IntegerValue,
    config: FeatureConfig,
) -> ir.StringValue:
    """The domain's daily tier: zero / low / mid / high ("<=" belongs to the lower tier)."""
    # Literals typed as doubles: Spark would otherwise read 0.6 as a decimal.
    share = ibis.literal(config.active_share, "float64")
    low_cap = seats.cast("float64") * share * ibis.literal(config.low_multiplier, "float64")
    mid_cap = seats.cast("float64") * share * ibis.literal(config.mid_multiplier, "float64")
    login_share = ibis.literal(config.high_login_share, "float64")
    enough_logins = active_users >= seats.cast("float64") * login_share - _TOLERANCE
    return ibis.cases(
        (key_actions <= 0, "zero"),
        (key_actions <= low_cap + _TOLERANCE, "low"),
        (key_actions <= mid_cap + _TOLERANCE, "mid"),
        (enough_logins, "high"),
        else_="mid",
    )


def is_active(tier: ir.StringValue, config: FeatureConfig) -> ir.BooleanValue:
    """Whether a day's tier reaches the configured minimum tier of an active day."""
    return tier.isin(TIERS[TIERS.index(config.active_min_tier):])


def materialize(source: Source, table: ir.Table, name: str = "daily_activity") -> ir.Table:
    """Compute ``table`` once in the engine (a DuckDB temp table, a cached Spark frame).

    The vectors read the daily table from several feature families; without this, engines
    that do not share common subplans (Spark) would rebuild it for each.
    """
    if type(source.backend).__module__.startswith("ibis.backends.duckdb"):
        return source.backend.create_table(f"{name}_{next(_materialized)}", table, temp=True)
    return table.cache()


def daily_activity(source: Source, as_of: date, config: FeatureConfig) -> ir.Table:
    """One row per account and day from signed_at (or first usage, if earlier) to ``as_of``.

    Columns: account_id, date, key_actions, logins, active_users, seats, tier, active.
    """
    per_day = usage_per_account_day(source, as_of)
    accounts = accounts_as_of(source, as_of)
    first_usage = per_day.group_by("account_id").aggregate(first_usage=per_day.date.min())
    starts = accounts.left_join(first_usage, "account_id").select(
        "account_id",
        "seats",
        start=ibis.least(accounts.signed_at, first_usage.first_usage.fill_null(accounts.signed_at)),
    )
    as_of_literal = ibis.literal(as_of, "date")
    span = as_of_literal.delta(starts.start, unit="day")
    calendar = starts.select(
        "account_id",
        "seats",
        "start",
        day_offset=ibis.range(0, span + 1).unnest(),
    )
    calendar = calendar.select(
        "account_id",
        "seats",
        date=(calendar.start + calendar.day_offset.as_interval("D")).cast("date"),
    )
    joined = calendar.left_join(per_day, ["account_id", "date"])
    filled = joined.select(
        account_id=calendar.account_id,
        date=calendar.date,
        key_actions=per_day.key_actions.fill_null(0).cast("int64"),
        logins=per_day.logins.fill_null(0).cast("int64"),
        active_users=per_day.active_users.fill_null(0).cast("int64"),
        seats=calendar.seats.cast("int64"),
    )
    tier = tier_expression(filled.key_actions, filled.active_users, filled.seats, config)
    with_tier = filled.mutate(tier=tier)
    return with_tier.mutate(active=is_active(with_tier.tier, config)).select(*DAILY_COLUMNS)
