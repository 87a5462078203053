"""Usage -> one row per account and calendar day, with the domain's activity tier.

Activity is measured on the paying entity: user- or site-level rows are summed to the account
first (one pass over the big table), then every calendar day from the account's start to
``as_of`` gets a row, zero-usage days included, so that "active days in a window" is a plain
count and young accounts can be told apart from idle ones.

``since`` bounds the table from below. The account's start (signing or first usage) is taken
from a separate, cheap per-account ``MIN(date)``, so bounded and unbounded tables agree row for
row on the days they share.

The feature vectors and cohort metrics do not build this calendar: they read
:func:`usage_days` (the same rows, days with usage only) and count zero-usage days from the
account's first day; this table is what ``renewal features --daily-out`` writes and people read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
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


def usage_in_range(source: Source, as_of: date, since: date | None = None) -> ir.Table:
    """Raw usage rows dated in ``[since, as_of]`` (no lower bound without ``since``).

    A plain date filter on the scan, so an engine can skip whole Parquet row groups.
    """
    usage = source.tables["usage"]
    keep = usage.date <= ibis.literal(as_of, "date")
    if since is not None:
        keep &= usage.date >= ibis.literal(since, "date")
    return usage.filter(keep)


def per_account_day(source: Source, usage: ir.Table) -> ir.Table:
    """``usage`` rows summed to (account_id, date): key_actions, logins, active_users.

    User grain: the contract's key (account_id, date, user_id) makes each row one user-day, so
    users with a login are counted rows; with site_id a user may have a row per site and the
    users are counted distinct. Account grain: the given active_users summed over sites.
    """
    if source.usage_grain == "user" and source.has_sites:
        active_users = usage.user_id.nunique(where=usage.logins > 0)
    elif source.usage_grain == "user":
        active_users = usage.count(where=usage.logins > 0)
    else:
        active_users = usage.active_users.sum()
    return usage.group_by("account_id", "date").aggregate(
        key_actions=usage.key_actions.sum(),
        logins=usage.logins.sum(),
        active_users=active_users,
    )


def usage_per_account_day(source: Source, as_of: date, since: date | None = None) -> ir.Table:
    """Usage summed to (account_id, date), dated in ``[since, as_of]``."""
    return per_account_day(source, usage_in_range(source, as_of, since))


def usage_bounds(source: Source, as_of: date) -> ir.Table:
    """Per account with usage dated on or before ``as_of``: ``first_usage`` (its first day) and
    ``first_key_action`` (first day with a row having key actions; null if none).

    One scan of two or three columns with one group per account: cheap next to a per-day
    aggregation of the whole history.
    """
    usage = usage_in_range(source, as_of)
    return usage.group_by("account_id").aggregate(
        first_usage=usage.date.min(),
        first_key_action=usage.date.min(where=usage.key_actions > 0),
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


def active_expression(
    key_actions: ir.IntegerValue, active_users: ir.IntegerValue, seats: ir.IntegerValue,
    config: FeatureConfig,
) -> ir.BooleanValue:
    """``is_active(tier_expression(...))`` without building the tier's text.

    The same caps and tolerance; active_users is read only when the minimum tier is high, so
    an engine need not count logged-in users at all for the other minimum tiers.
    """
    share = ibis.literal(config.active_share, "float64")
    low_cap = seats.cast("float64") * share * ibis.literal(config.low_multiplier, "float64")
    mid_cap = seats.cast("float64") * share * ibis.literal(config.mid_multiplier, "float64")
    active = key_actions > 0
    if config.active_min_tier in ("mid", "high"):
        active &= key_actions > low_cap + _TOLERANCE
    if config.active_min_tier == "high":
        login_share = ibis.literal(config.high_login_share, "float64")
        active &= key_actions > mid_cap + _TOLERANCE
        active &= active_users >= seats.cast("float64") * login_share - _TOLERANCE
    return active


def is_active(tier: ir.StringValue, config: FeatureConfig) -> ir.BooleanValue:
    """Whether a day's tier reaches the configured minimum tier of an active day."""
    return tier.isin(TIERS[TIERS.index(config.active_min_tier):])


def is_duckdb(source: Source) -> bool:
    """Whether ``source`` runs on DuckDB (some steps have a DuckDB-only fast path)."""
    return type(source.backend).__module__.startswith("ibis.backends.duckdb")


def materialize(source: Source, table: ir.Table, name: str = "daily_activity") -> ir.Table:
    """Compute ``table`` once in the engine (a DuckDB temp table, a cached Spark frame).

    For tables read by more than one query or family (the vectors' days and each account's
    history, the metrics' days): engines that do not share common subplans (Spark) would
    otherwise rebuild them for each reader. Pair with
    :func:`release` (or use :func:`materialized`): a long-running process must not pile up
    temporary tables.
    """
    if is_duckdb(source):
        return source.backend.create_table(f"{name}_{next(_materialized)}", table, temp=True)
    return table.cache()


def release(source: Source, table: ir.Table) -> None:
    """Free a table made by :func:`materialize` (drop the temp table, unpersist the cache)."""
    if hasattr(table, "release"):  # a cached Spark frame
        table.release()
    elif is_duckdb(source):
        source.backend.drop_table(table.op().name, force=True)


@contextmanager
def materialized(source: Source, table: ir.Table, name: str = "daily_activity") -> Iterator[
    ir.Table
]:
    """:func:`materialize` for the duration of a ``with`` block, released afterwards."""
    done = materialize(source, table, name)
    try:
        yield done
    finally:
        release(source, done)


def usage_days(
    source: Source, as_of: date, config: FeatureConfig, since: date | None = None
) -> ir.Table:
    """The rows of :func:`daily_activity` of the days with usage, dated in ``[since, as_of]``.

    The days without a usage row are exactly the daily table's zero-usage days (tier zero,
    never active, zero volumes), so window counts need not read them: a window's zero days
    are its observed days minus the others. Columns as :data:`DAILY_COLUMNS`.
    """
    per_day = usage_per_account_day(source, as_of, since)
    accounts = accounts_as_of(source, as_of)
    days = per_day.join(accounts, "account_id").select(
        per_day.account_id,
        per_day.date,
        key_actions=per_day.key_actions.fill_null(0).cast("int64"),
        logins=per_day.logins.fill_null(0).cast("int64"),
        active_users=per_day.active_users.fill_null(0).cast("int64"),
        seats=accounts.seats.cast("int64"),
    )
    return with_tiers(days, config).select(*DAILY_COLUMNS)


def daily_activity(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    *,
    since: date | None = None,
    bounds: ir.Table | None = None,
) -> ir.Table:
    """One row per account and day from signed_at (or first usage, if earlier) to ``as_of``.

    With ``since``, only the days on or after ``since`` (the same rows as the unbounded table
    has for those days). ``bounds`` may pass an already computed :func:`usage_bounds`.
    Columns: account_id, date, key_actions, logins, active_users, seats, tier, active.
    """
    per_day = usage_per_account_day(source, as_of, since)
    accounts = accounts_as_of(source, as_of)
    if since is None and bounds is None:
        # The whole history is aggregated anyway: its first day is the account's first usage.
        bounds = per_day.group_by("account_id").aggregate(first_usage=per_day.date.min())
    elif bounds is None:
        bounds = usage_bounds(source, as_of)
    starts = accounts.left_join(bounds, "account_id").select(
        "account_id",
        "seats",
        start=ibis.least(accounts.signed_at, bounds.first_usage.fill_null(accounts.signed_at)),
    )
    if since is not None:
        starts = starts.mutate(start=ibis.greatest(starts.start, ibis.literal(since, "date")))
    as_of_literal = ibis.literal(as_of, "date")
    span = as_of_literal.delta(starts.start, unit="day")
    calendar = starts.select(
        "account_id",
        "seats",
        "start",
        day_offset=ibis.range(0, span + 1).unnest(),
    )
    # Engines type date + interval differently (DuckDB: a timestamp): cast back to a DATE
    # explicitly (Ibis drops a cast from "date" to "date"), so joins compare dates.
    day = (calendar.start + calendar.day_offset.as_interval("D")).cast("timestamp").date()
    calendar = calendar.select("account_id", "seats", date=day)
    joined = calendar.left_join(per_day, ["account_id", "date"])
    filled = joined.select(
        account_id=calendar.account_id,
        date=calendar.date,
        key_actions=per_day.key_actions.fill_null(0).cast("int64"),
        logins=per_day.logins.fill_null(0).cast("int64"),
        active_users=per_day.active_users.fill_null(0).cast("int64"),
        seats=calendar.seats.cast("int64"),
    )
    return with_tiers(filled, config).select(*DAILY_COLUMNS)


def with_tiers(days: ir.Table, config: FeatureConfig) -> ir.Table:
    """Add ``tier`` and ``active`` to rows with key_actions, active_users and seats."""
    tier = tier_expression(days.key_actions, days.active_users, days.seats, config)
    with_tier = days.mutate(tier=tier)
    return with_tier.mutate(active=is_active(with_tier.tier, config))
