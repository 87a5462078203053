"""Activation: the first ISO week with enough active days, and whether it came in the window.

The activation date is the day on which the Nth active day of that week happens, counting only
days on or after signed_at. It depends only on days up to itself, so computing it once over the
history up to the last as-of (:func:`features.windows.history.account_history`) and revealing
it only to spine rows with ``as_of >= activation date`` has no look-ahead.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, days_between


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
    signed_at + window <= T"). With ``usage_history_starts`` set, all but the window are
    null for an account signed before that day.
    """
    accounts = window.source.tables["accounts"]
    spine = window.spine
    segment = accounts.segment if "segment" in accounts.columns else None
    accounts = accounts.select(
        "account_id", "signed_at", window_days=window_days(accounts.seats, segment, window.config)
    )
    history = window.history
    rows = spine.join(accounts, "account_id").join(history, "account_id")
    rows = rows.select(
        spine.account_id, spine.as_of, accounts.signed_at, accounts.window_days,
        history.activation_date,
    )
    known = rows.activation_date.notnull() & (rows.activation_date <= rows.as_of)
    days_to = known.ifelse(
        days_between(rows.activation_date, rows.signed_at), ibis.null("int64")
    )
    activated = (known & (days_to <= rows.window_days)).fill_null(False)
    past_window = (days_between(rows.as_of, rows.signed_at) >= rows.window_days) & ~activated
    starts = window.config.usage_history_starts
    if starts is not None:
        # Signed before the usage data begins: an activation may lie where the data cannot
        # show it, and the first week found after it would be a wrong date.
        observed = rows.signed_at >= ibis.literal(starts, "date")
        activated = observed.ifelse(activated, ibis.null("boolean"))
        days_to = observed.ifelse(days_to, ibis.null("int64"))
        past_window = observed.ifelse(past_window, ibis.null("boolean"))
    return rows.select(
        *KEYS,
        activated=activated,
        days_to_activation=days_to,
        activation_window_days=rows.window_days,
        past_window_not_activated=past_window,
    )
