"""What each account's whole usage history says, in one pass: its first day and its activation.

A vector as of T reads only a few months of daily rows, but its account may have signed (and
activated) years before. So the whole history is read once, per account and ISO week: the
week's first day with usage, and its active days on or after signing as a bit mask (Monday =
bit 0). The first week with enough active days and its mask give the activation date exactly,
without ranking every active day; the result is one small row per account.
"""

from __future__ import annotations

import itertools
from datetime import date

import ibis
import ibis.expr.types as ir

from features.config import FeatureConfig
from features.daily import (
    accounts_as_of,
    active_expression,
    is_duckdb,
    per_account_day,
    usage_bounds,
    usage_in_range,
)
from features.source import Source
from features.windows import days_between

# 1900-01-01 was a Monday: whole weeks since then are ISO (Monday-Sunday) weeks.
MONDAY = date(1900, 1, 1)
WEEKDAYS = range(7)
# A week's active weekdays as bits (Monday = bit 0); ``week * _CODE + mask`` orders weeks
# first, so its minimum over the qualifying weeks is the first of them, mask included.
_CODE = 128
_ALL_DAYS = 0b1111111


def account_history(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    days: ir.Table | None = None,
    since: date | None = None,
) -> ir.Table:
    """Per account signed on or before ``as_of``, from data dated on or before ``as_of``:

    - ``start``: its first day, ``signed_at`` or its first usage if earlier (the first day of
      :func:`features.daily.daily_activity`);
    - ``activation_date``: the Nth active day (N = ``activation_week_active_days``) of the
      first ISO week having N active days on or after ``signed_at``; null if none.

    ``days`` may pass daily rows already computed with ``config`` (at least account_id, date
    and active: :func:`active_days`, ``usage_days`` or ``daily_activity``) from ``since`` on
    (``since`` None: the whole history), so that only the usage dated before ``since`` is
    aggregated here.
    """
    accounts = accounts_as_of(source, as_of).select("account_id", "signed_at")
    if days is None:
        weeks = _usage_weeks(source, as_of, config, accounts)
    else:
        days = days.filter(days.date <= ibis.literal(as_of, "date"))
        days = days.join(accounts, "account_id").select(
            days.account_id, days.date, days.active, accounts.signed_at
        )
        weeks = _weeks(days)
        if since is not None:
            older = _usage_weeks(source, as_of, config, accounts, before=since)
            both = weeks.union(older)
            # The week holding ``since`` has days on both sides: its halves' bits are disjoint
            # (different days), so their sum is the week's mask.
            weeks = both.group_by("account_id", "week").aggregate(
                first_day=both.first_day.min(), mask=both.mask.sum()
            )
    needed = config.activation_week_active_days
    active_weekdays = sum((weeks.mask >> weekday) & 1 for weekday in WEEKDAYS)
    per_account = weeks.group_by("account_id").aggregate(
        first_usage=weeks.first_day.min(),
        code=(weeks.week * _CODE + weeks.mask).min(where=active_weekdays >= needed),
    )
    out = accounts.left_join(per_account, "account_id").select(
        accounts.account_id, accounts.signed_at, per_account.first_usage, per_account.code
    )
    weekday = nth_active_weekday(out.code % _CODE, needed)
    activation_day = out.code // _CODE * 7 + weekday
    return out.select(
        out.account_id,
        start=ibis.least(out.signed_at, out.first_usage.fill_null(out.signed_at)),
        activation_date=_day_from_monday(activation_day),
    )


def _weeks(days: ir.Table) -> ir.Table:
    """account_id, week, first_day, mask from daily rows (account_id, date, active, signed_at):
    an active day on or after signing sets its weekday's bit (Monday = bit 0) in its week."""
    day = days_between(days.date, ibis.literal(MONDAY, "date"))
    counted = days.active & (days.date >= days.signed_at)
    days = days.select("account_id", "date", counted=counted, week=day // 7, weekday=day % 7)
    return days.group_by("account_id", "week").aggregate(
        first_day=days.date.min(),
        # One row per day, so the sum of distinct bits is their bitwise or.
        mask=days.counted.ifelse(ibis.literal(1, "int64") << days.weekday, 0).sum(),
    )


def _usage_weeks(
    source: Source,
    as_of: date,
    config: FeatureConfig,
    accounts: ir.Table,
    before: date | None = None,
) -> ir.Table:
    """:func:`_weeks` of the usage dated on or before ``as_of`` (and before ``before``).

    When any key action makes a day active (minimum tier ``low``, the default) and the engine
    is DuckDB, the weeks come straight from the usage rows: a row with key actions sets its
    weekday's bit, and the bits of the days before signing are cleared per week afterwards.
    That skips aggregating every account-day of the history first (~0.5 s of a 50 M-row
    history). The contract's key actions are never negative (``renewal.tables``), so a day's
    sum is above zero exactly when one of its rows is. Other tiers need the day's sums, and
    Spark (whose Ibis compiler has no ``bit_or``) takes the per-day route: both give the same
    weeks (``tests/features/test_history.py``).
    """
    if config.active_min_tier != "low" or not is_duckdb(source):
        return _weeks(active_days(source, as_of, config, before=before))
    usage = _usage_before(source, as_of, before)
    day = days_between(usage.date, ibis.literal(MONDAY, "date"))
    bit = (usage.key_actions.fill_null(0) > 0).ifelse(ibis.literal(1, "int64") << (day % 7), 0)
    rows = usage.select("account_id", "date", week=day // 7, bit=bit)
    raw = rows.group_by("account_id", "week").aggregate(
        first_day=rows.date.min(), mask=rows.bit.bit_or()
    )
    joined = raw.join(accounts, "account_id")
    signed = days_between(joined.signed_at, ibis.literal(MONDAY, "date"))
    signed_week, signed_weekday = signed // 7, signed % 7
    all_days = ibis.literal(_ALL_DAYS, "int64")
    # Weeks before the signing week count no day; the signing week its days from signed_at on.
    keep = (joined.week > signed_week).ifelse(
        all_days,
        (joined.week == signed_week).ifelse((all_days << signed_weekday) & all_days, 0),
    )
    return joined.select("account_id", "week", "first_day", mask=joined.mask & keep)


def _usage_before(source: Source, as_of: date, before: date | None) -> ir.Table:
    """Usage rows dated on or before ``as_of`` and, with ``before``, before it (the history
    older than the look-back days the caller already has)."""
    usage = usage_in_range(source, as_of)
    if before is not None:
        usage = usage.filter(usage.date < ibis.literal(before, "date"))
    return usage


def active_days(
    source: Source, as_of: date, config: FeatureConfig, before: date | None = None
) -> ir.Table:
    """account_id, date, active, signed_at: every day with usage dated on or before ``as_of``
    (and before ``before``) of the accounts signed by then, whether it is an active day, and
    the account's signing day (activation counts the days from it).

    The daily table's rule (:func:`features.daily.active_expression`), without its tier text
    and, below the high tier, without counting logged-in users.
    """
    usage = _usage_before(source, as_of, before)
    per_day = per_account_day(source, usage)
    accounts = accounts_as_of(source, as_of)
    days = per_day.join(accounts, "account_id")
    return days.select(
        per_day.account_id,
        per_day.date,
        active=active_expression(
            per_day.key_actions.fill_null(0),
            per_day.active_users.fill_null(0),
            accounts.seats.cast("int64"),
            config,
        ),
        signed_at=accounts.signed_at,
    )


def account_starts(source: Source, as_of: date) -> ir.Table:
    """Only ``start`` of :func:`account_history`, from one cheap scan (no activation)."""
    accounts = accounts_as_of(source, as_of)
    bounds = usage_bounds(source, as_of)
    out = accounts.left_join(bounds, "account_id")
    return out.select(
        accounts.account_id,
        start=ibis.least(accounts.signed_at, bounds.first_usage.fill_null(accounts.signed_at)),
    )


def nth_active_weekday(mask: ir.IntegerValue, n: int) -> ir.IntegerValue:
    """The weekday (Monday = 0) of the nth set bit of a week's mask with at least n bits.

    The nth bit's weekday is the number of weekdays up to which fewer than n bits are set:
    plain arithmetic, so it runs inside any engine (no lookup table to ship).
    """
    bits = [(mask >> weekday) & 1 for weekday in WEEKDAYS]
    set_so_far = list(itertools.accumulate(bits))
    return sum((count < n).ifelse(1, 0) for count in set_so_far).cast("int64")


def _day_from_monday(days: ir.IntegerValue) -> ir.DateValue:
    """The date ``days`` after 1900-01-01, as a DATE on every engine (null stays null)."""
    start = ibis.literal(MONDAY, "date")
    return (start + days.as_interval("D")).cast("timestamp").date()
