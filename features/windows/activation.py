"""Activation: the first ISO week with enough active days, and whether it came in the window.

The activation date is the day on which the Nth active day of that week happens, counting only
days on or after signed_at. It depends only on days up to itself, so computing it once over the
whole daily table and revealing it only to spine rows with ``as_of >= activation date`` has no
look-ahead.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, days_between

# 1900-01-01 was a Monday: whole weeks since then are ISO (Monday-Sunday) weeks.
_MONDAY = date(1900, 1, 1)


def activation_dates(window: Window) -> ir.Table:
    """account_id -> activation_date (accounts that never activated have no row)."""
    accounts = window.source.tables["accounts"]
    daily = window.daily.filter(window.daily.active)
    days = daily.join(accounts, "account_id").select(
        daily.account_id, daily.date, accounts.signed_at
    )
    days = days.filter(days.date >= days.signed_at)
    days = days.mutate(week=days_between(days.date, ibis.literal(_MONDAY, "date")) // 7)
    ranked = days.mutate(
        nth_active_day=ibis.row_number().over(group_by=["account_id", "week"], order_by="date")
        + 1
    )
    nth = ranked.filter(ranked.nth_active_day == window.config.activation_week_active_days)
    return nth.group_by("account_id").aggregate(activation_date=nth.date.min())


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
    """activated, days_to_activation, activation_window_days, past_window_not_activated."""
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
            (days_between(rows.as_of, rows.signed_at) > rows.window_days) & ~activated
        ),
    )
