"""Activation: the first ISO week with enough active days, and whether it came in the window.

The activation date is the day on which the Nth active day of that week happens, counting only
days on or after signed_at. It depends only on days up to itself, so computing it once over the
history up to the last as-of and revealing it only to spine rows with ``as_of >= activation
date`` has no look-ahead.

A vector as of T reads only a few months of the daily table, but an account's activation may
lie years back; aggregating all of its history per day would cost most of the pipeline's time.
Only the days around the account's first key action are read first (no day before it can be
active); the few accounts not activated there are then looked up in their whole history.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from features.config import FeatureConfig
from features.daily import accounts_as_of, per_account_day, usage_bounds, usage_in_range, with_tiers
from features.source import Source
from features.windows import KEYS, Window, days_between, shift_days

# 1900-01-01 was a Monday: whole weeks since then are ISO (Monday-Sunday) weeks.
_MONDAY = date(1900, 1, 1)
# Days after the first key action read in the first step: the longest activation window plus
# the rest of its ISO week, so the common case (activated in or near the window) is settled.
_WEEK_TAIL_DAYS = 6


def first_activation(active_days: ir.Table, config: FeatureConfig) -> ir.Table:
    """account_id -> activation_date from rows (account_id, date) of active days >= signed_at."""
    days = active_days.mutate(
        week=days_between(active_days.date, ibis.literal(_MONDAY, "date")) // 7
    )
    ranked = days.mutate(
        nth_active_day=ibis.row_number().over(group_by=["account_id", "week"], order_by="date")
        + 1
    )
    nth = ranked.filter(ranked.nth_active_day == config.activation_week_active_days)
    return nth.group_by("account_id").aggregate(activation_date=nth.date.min())


def _active_days_from_daily(window: Window) -> ir.Table:
    accounts = window.source.tables["accounts"]
    daily = window.daily.filter(window.daily.active)
    days = daily.join(accounts, "account_id").select(
        daily.account_id, daily.date, accounts.signed_at
    )
    return days.filter(days.date >= days.signed_at).select("account_id", "date")


def _active_days_from_usage(source: Source, usage: ir.Table, accounts: ir.Table,
                            config: FeatureConfig) -> ir.Table:
    """Active days on or after signed_at of the (already restricted) raw ``usage`` rows."""
    per_day = per_account_day(source, usage)
    days = per_day.join(accounts, "account_id").select(
        per_day.account_id, per_day.date, per_day.key_actions, per_day.active_users,
        accounts.signed_at, seats=accounts.seats.cast("int64"),
    )
    days = with_tiers(days.filter(days.date >= days.signed_at), config)
    return days.filter(days.active).select("account_id", "date")


def early_horizon_days(config: FeatureConfig) -> int:
    """Days read after the first key action in the first step."""
    windows = [config.activation_window_days_small, config.activation_window_days_large,
               *config.activation_window_by_segment.values()]
    return max(windows) + _WEEK_TAIL_DAYS


def activation_dates_from_usage(
    source: Source, as_of: date, config: FeatureConfig, bounds: ir.Table | None = None
) -> ir.Table:
    """account_id -> activation_date from usage dated <= ``as_of``, in two steps.

    1. Days from each account's first key action to ``horizon`` days later. Every earlier
       week had no active day, every week inside is complete, so a week reaching N active
       days there is the first one overall, with the same Nth day.
    2. Accounts with key actions but no activation in step 1: their whole history.
    """
    bounds = usage_bounds(source, as_of) if bounds is None else bounds
    accounts = accounts_as_of(source, as_of).select("account_id", "signed_at", "seats")
    firsts = bounds.filter(bounds.first_key_action.notnull())
    firsts = firsts.select(
        "account_id",
        "first_key_action",
        early_until=shift_days(firsts.first_key_action, early_horizon_days(config)),
    )
    usage = usage_in_range(source, as_of)
    early_usage = usage.semi_join(
        firsts,
        [
            usage.account_id == firsts.account_id,
            usage.date >= firsts.first_key_action,
            usage.date <= firsts.early_until,
        ],
    )
    early = first_activation(_active_days_from_usage(source, early_usage, accounts, config),
                             config)
    undecided = firsts.anti_join(early, "account_id").select("account_id")
    late_usage = usage.semi_join(undecided, "account_id")
    late = first_activation(_active_days_from_usage(source, late_usage, accounts, config),
                            config)
    return early.union(late)


def activation_dates(window: Window) -> ir.Table:
    """account_id -> activation_date (accounts that never activated have no row)."""
    if window.daily_since is None:  # the daily table holds every account's whole history
        return first_activation(_active_days_from_daily(window), window.config)
    return activation_dates_from_usage(
        window.source, window.last_as_of, window.config, window.usage_bounds
    )


def window_days(seats: ir.IntegerValue, segment: ir.StringValue | None, config) -> ir.Value:
    """The activation window: segment override, else small/large by seats."""
    by_seats = (seats <= config.activation_seat_threshold).ifelse(
        config.activation_window_days_small, config.activation_window_days_large
    )
    if segment is None or not config.activation_window_by_segment:
        return by_seats.cast("int64")
    branches = [
        (segment == name, days) for name, days in config.activation_window_by_segment.items()
    ]
    return ibis.cases(*branches, else_=by_seats).cast("int64")


def activation_features(window: Window) -> ir.Table:
    """activated, days_to_activation, activation_window_days, past_window_not_activated.

    As of T the data of day T counts, so an account signed on day 0 with a 30-day window
    that has not activated by the end of day 30 can no longer activate inside it: it is past
    its window from ``T - signed_at >= window`` on (the cohort metrics' "window closed when
    signed_at + window <= T").
    """
    accounts = window.source.tables["accounts"]
    spine = window.spine
    segment = accounts.segment if "segment" in accounts.columns else None
    accounts = accounts.select(
        "account_id", "signed_at", window_days=window_days(accounts.seats, segment, window.config)
    )
    dates = activation_dates(window)
    rows = spine.join(accounts, "account_id").left_join(dates, "account_id")
    rows = rows.select(
        spine.account_id, spine.as_of, accounts.signed_at, accounts.window_days,
        dates.activation_date,
    )
    known = rows.activation_date.notnull() & (rows.activation_date <= rows.as_of)
    days_to = known.ifelse(
        days_between(rows.activation_date, rows.signed_at), ibis.null("int64")
    )
    activated = (known & (days_to <= rows.window_days)).fill_null(False)
    return rows.select(
        *KEYS,
        activated=activated,
        days_to_activation=days_to,
        activation_window_days=rows.window_days,
        past_window_not_activated=(
            (days_between(rows.as_of, rows.signed_at) >= rows.window_days) & ~activated
        ),
    )
