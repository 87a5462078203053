"""Activity over calendar windows ending at as_of: 30/90-day windows, ISO weeks, calendar months.

Young accounts: the daily table starts at the account's first day, so ``observed_*`` columns
count how much of each window the account could have been active in; ratios are taken over
observed days, and trends are NULL (unknown) unless both 30-day windows were fully observed.

Volumes are also given per opened seat: a 5-seat and a 200-seat account doing the same number
of key actions are in very different health, and the domain measures activity against seats.
The 90-day window matches the domain's "activity in the 3 months before expiry".
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from math import ceil

import ibis
import ibis.expr.types as ir

from features.config import TIERS, FeatureConfig
from features.windows import (
    DAILY_LOOKBACK_DAYS,
    KEYS,
    Window,
    count_if,
    days_between,
    shift_days,
)


def daily_in_lookback(window: Window) -> ir.Table:
    """Daily rows joined to every spine row whose look-back covers them, with the day offset."""
    daily = window.daily
    spine = window.spine.mutate(after=shift_days(window.spine.as_of, -DAILY_LOOKBACK_DAYS))
    joined = daily.join(
        spine,
        [
            daily.account_id == spine.account_id,
            daily.date <= spine.as_of,
            daily.date > spine.after,
        ],
    )
    return joined.select(
        account_id=daily.account_id,
        as_of=spine.as_of,
        date=daily.date,
        key_actions=daily.key_actions,
        logins=daily.logins,
        active_users=daily.active_users,
        seats=daily.seats,
        tier=daily.tier,
        active=daily.active,
        offset=days_between(spine.as_of, daily.date),
    )


def last_30_days_metrics(rows: ir.Table) -> dict[str, ir.Value]:
    """Tier counts in (T-30, T], sums for the trend windows (T-30, T] vs (T-60, T-30]."""
    recent = rows.offset < 30
    prior = (rows.offset >= 30) & (rows.offset < 60)
    tier_counts = {f"tier_{t}_days_30d": count_if(rows, recent & (rows.tier == t)) for t in TIERS}
    seats = rows.seats.max().cast("float64")  # constant per account
    sums = {}
    for column in ("logins", "key_actions", "active_users"):
        sums[f"{column}_30d"] = rows[column].sum(where=recent).fill_null(0)
        sums[f"{column}_prior_30d"] = rows[column].sum(where=prior).fill_null(0)
    return dict(
        observed_days_30d=count_if(rows, recent),
        observed_days_60d=count_if(rows, rows.offset < 60),
        active_days_30d=count_if(rows, recent & rows.active),
        max_daily_active_users_30d=rows.active_users.max(where=recent).fill_null(0),
        key_actions_per_seat_30d=sums["key_actions_30d"].cast("float64") / seats,
        logins_per_seat_30d=sums["logins_30d"].cast("float64") / seats,
        **tier_counts,
        **sums,
    )


def last_90_days_metrics(rows: ir.Table) -> dict[str, ir.Value]:
    """Activity in (T-90, T]: active days, volumes per seat, logged-in seat-days and their share.

    Three months smooth out the day-to-day noise of a 30-day window; per-seat and per-seat-day
    ratios make accounts of different sizes comparable. Young accounts: shares are over the
    observed days; per-seat volumes are sums over what was observed (see observed_days_90d).
    """
    recent = rows.offset < 90
    seats = rows.seats.max().cast("float64")  # constant per account
    observed = count_if(rows, recent)
    active = count_if(rows, recent & rows.active)
    key_actions = rows.key_actions.sum(where=recent).fill_null(0)
    logins = rows.logins.sum(where=recent).fill_null(0)
    seat_days = rows.active_users.sum(where=recent).fill_null(0)
    return dict(
        observed_days_90d=observed,
        active_days_90d=active,
        active_day_share_90d=active / observed.nullif(0).cast("float64"),
        key_actions_per_seat_90d=key_actions.cast("float64") / seats,
        logins_per_seat_90d=logins.cast("float64") / seats,
        logged_in_seat_days_90d=seat_days,
        logged_in_seat_day_share_90d=seat_days.cast("float64")
        / (seats * observed.nullif(0).cast("float64")),
        key_actions_per_logged_in_seat_day_90d=key_actions.cast("float64")
        / seat_days.nullif(0).cast("float64"),
    )


def last_30_days(rows: ir.Table) -> ir.Table:
    """The 30-day window aggregates of every spine row."""
    return rows.group_by(KEYS).aggregate(**last_30_days_metrics(rows))


def recent_activity(rows: ir.Table) -> ir.Table:
    """The 30- and 90-day window aggregates of every spine row, in one pass over its rows."""
    return rows.group_by(KEYS).aggregate(**last_30_days_metrics(rows),
                                         **last_90_days_metrics(rows))


def trends(last30: ir.Table) -> ir.Table:
    """Relative change, last 30 days vs the 30 before; NULL if the prior window is unknown."""
    fully_observed = last30.observed_days_60d >= 60
    changes = {}
    for column in ("logins", "key_actions", "active_users"):
        now, before = last30[f"{column}_30d"], last30[f"{column}_prior_30d"]
        change = (now - before) / before.nullif(0).cast("float64")
        changes[f"{column}_change_30d"] = fully_observed.ifelse(change, ibis.null("float64"))
    return last30.mutate(**changes)


def peak_week(rows: ir.Table) -> ir.Table:
    """Busiest 7-day block of the last 4 vs of the 4 before (blocks end at T, not ISO weeks)."""
    recent = rows.filter(rows.offset < 56)
    blocks = recent.group_by([*KEYS, (recent.offset // 7).name("block")]).aggregate(
        key_actions=recent.key_actions.sum(), days=recent.count()
    )
    per_row = blocks.group_by(KEYS).aggregate(
        peak_recent=blocks.key_actions.max(where=blocks.block < 4),
        peak_prior=blocks.key_actions.max(where=blocks.block >= 4),
        observed_days_56d=blocks.days.sum(),
    )
    change = (per_row.peak_recent.fill_null(0) - per_row.peak_prior) / per_row.peak_prior.nullif(
        0
    ).cast("float64")
    return per_row.select(
        *KEYS,
        peak_week_key_actions_change=(per_row.observed_days_56d >= 56).ifelse(
            change, ibis.null("float64")
        ),
    )


def weekly_active(rows: ir.Table, config: FeatureConfig) -> ir.Table:
    """Of the 12 ISO weeks (Mon-Sun) ending on or before T, how many had enough active days."""
    # Days from the last Sunday on or before T: 0 when T is a Sunday (its week is complete).
    to_last_sunday = (rows.as_of.day_of_week.index().cast("int64") + 1) % 7
    shifted = rows.mutate(days_back=rows.offset - to_last_sunday)
    in_window = shifted.filter((shifted.days_back >= 0) & (shifted.days_back < 84))
    in_window = in_window.mutate(week_back=in_window.days_back // 7)
    weeks = in_window.group_by([*KEYS, "week_back"]).aggregate(
        active_days=count_if(in_window, in_window.active)
    )
    return weeks.group_by(KEYS).aggregate(
        weekly_active_weeks_12w=count_if(weeks, weeks.active_days >= config.weekly_active_days),
        observed_weeks_12w=weeks.count(),
    )


def month_number(day: ir.DateValue) -> ir.IntegerValue:
    """Months since year 0, so consecutive calendar months differ by one."""
    return day.year().cast("int64") * 12 + day.month().cast("int64")


def monthly_active(rows: ir.Table, window: Window) -> ir.Table:
    """Of the 3 calendar months ending on or before T, how many were monthly active."""
    config = window.config
    as_of_is_month_end = (rows.as_of + ibis.interval(days=1)).day() == 1
    last_full_month = month_number(rows.as_of) - as_of_is_month_end.ifelse(0, 1)
    months_back = last_full_month - month_number(rows.date)
    in_window = rows.filter((months_back >= 0) & (months_back <= 2))
    in_window = in_window.mutate(month=month_number(in_window.date))
    months = in_window.group_by([*KEYS, "month"]).aggregate(
        active_days=count_if(in_window, in_window.active)
    )
    if config.monthly_rule == "days":
        required = ibis.literal(config.monthly_active_days, "int64")
    else:
        thresholds = ibis.memtable(
            working_day_thresholds(window.first_as_of, window.last_as_of, config),
            schema={"month": "int64", "required_active_days": "int64"},
        )
        months = months.join(thresholds, "month")
        required = months.required_active_days
    return months.group_by(KEYS).aggregate(
        monthly_active_months_3m=count_if(months, months.active_days >= required),
        observed_months_3m=months.count(),
    )


def working_days(year: int, month: int, holidays: frozenset[date]) -> int:
    """Monday-Friday days of a calendar month, minus configured holidays."""
    day = date(year, month, 1)
    count = 0
    while day.month == month:
        if day.weekday() < 5 and day not in holidays:
            count += 1
        day = date.fromordinal(day.toordinal() + 1)
    return count


def working_day_thresholds(
    first_as_of: date, last_as_of: date, config: FeatureConfig
) -> dict[str, list[int]]:
    """Active days a month needs under the working-days rule: ceil(working days x share).

    "At least working_days x 3/5" on an integer count is exactly this ceiling; Fraction keeps
    e.g. 20 x 0.6 from becoming 12.000000000000002.
    """
    holidays = frozenset(config.holidays)
    share = Fraction(str(config.working_days_share))
    first = first_as_of.year * 12 + first_as_of.month - 4
    last = last_as_of.year * 12 + last_as_of.month
    months, required = [], []
    for number in range(first, last + 1):
        year, month = divmod(number - 1, 12)
        months.append(number)
        required.append(ceil(working_days(year, month + 1, holidays) * share))
    return {"month": months, "required_active_days": required}


def activity_features(window: Window) -> ir.Table:
    """All daily-table window features of every spine row, from one join of the look-back."""
    rows = daily_in_lookback(window)
    last30 = trends(recent_activity(rows))
    weekly = weekly_active(rows, window.config)
    monthly = monthly_active(rows, window)
    peaks = peak_week(rows)
    out = last30.left_join(weekly, list(KEYS)).select(last30, weekly.weekly_active_weeks_12w,
                                                      weekly.observed_weeks_12w)
    out = out.left_join(monthly, list(KEYS)).select(
        out, monthly.monthly_active_months_3m, monthly.observed_months_3m
    )
    out = out.left_join(peaks, list(KEYS)).select(out, peaks.peak_week_key_actions_change)
    return out.mutate(
        weekly_active_weeks_12w=out.weekly_active_weeks_12w.fill_null(0),
        observed_weeks_12w=out.observed_weeks_12w.fill_null(0),
        monthly_active_months_3m=out.monthly_active_months_3m.fill_null(0),
        observed_months_3m=out.observed_months_3m.fill_null(0),
        activity_rate_3m=out.monthly_active_months_3m.fill_null(0).cast("float64") / 3,
        active_day_share_30d=out.active_days_30d / out.observed_days_30d.nullif(0).cast("float64"),
    )
