"""Activity over calendar windows ending at as_of: 30/90-day windows, ISO weeks, calendar months.

Young accounts: a window counts only the days from the account's first day on, so the
``observed_*`` columns say how much of each window the account could have been active in;
ratios are taken over observed days, and trends are NULL (unknown) unless both 30-day windows
were fully observed.

Volumes are also given per opened seat: a 5-seat and a 200-seat account doing the same number
of key actions are in very different health, and the domain measures activity against seats.
The 90-day window matches the domain's "activity in the 3 months before expiry".

Every window of a spine row is counted in one aggregation over the days in its look-back.
Only days with usage need a row: a day without one has no key action (tier zero, never
active, nothing to add), so zero days and observed days, weeks and months are counted from
the account's first day with arithmetic instead of from a calendar of empty rows.
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
    PackedCounts,
    Window,
    days_between,
    shift_days,
)

WEEKS = 12
MONTHS = 3
PEAK_BLOCKS = 8  # 7-day blocks counted back from as_of: the last 4 vs the 4 before
_VOLUMES = ("logins", "key_actions", "active_users")


def month_number(day: ir.DateValue) -> ir.IntegerValue:
    """Months since year 0, so consecutive calendar months differ by one."""
    return day.year().cast("int64") * 12 + day.month().cast("int64")


def _spine_calendar(spine: ir.Table) -> ir.Table:
    """The spine with, per as_of, where its look-back, its ISO weeks and its months begin."""
    as_of = spine.as_of
    as_of_is_month_end = (as_of + ibis.interval(days=1)).day() == 1
    return spine.mutate(
        after=shift_days(as_of, -DAILY_LOOKBACK_DAYS),
        # Days back to the last Sunday on or before as_of: 0 on a Sunday (its week is complete).
        to_last_sunday=(as_of.day_of_week.index().cast("int64") + 1) % 7,
        # The last calendar month ending on or before as_of.
        last_full_month=month_number(as_of) - as_of_is_month_end.ifelse(0, 1),
    )


def lookback_rows(window: Window) -> ir.Table:
    """Daily rows joined to every spine row whose look-back covers them.

    ``offset``: days back from as_of (0 = as_of); ``week_back``: ISO weeks back from the last
    complete one (-1: the unfinished week of as_of); ``month_back``: calendar months back from
    the last complete one.
    """
    days = window.days
    spine = _spine_calendar(window.spine)
    joined = days.join(
        spine,
        [days.account_id == spine.account_id, days.date <= spine.as_of, days.date > spine.after],
    )
    offset = days_between(spine.as_of, days.date)
    days_back = offset - spine.to_last_sunday
    return joined.select(
        account_id=days.account_id,
        as_of=spine.as_of,
        key_actions=days.key_actions,
        logins=days.logins,
        active_users=days.active_users,
        tier=days.tier,
        active=days.active,
        offset=offset,
        week_back=(days_back >= 0).ifelse(days_back // 7, -1),
        month_back=spine.last_full_month - month_number(days.date),
    )


_DAY_COUNTS = PackedCounts({
    "usage_days_30d": 30, "active_days_30d": 30,
    **{f"tier_{t}_days_30d": 30 for t in TIERS[1:]},
    "active_days_90d": 90,
})
# Active days of each of the 12 ISO weeks (at most 7) and of the 3 months (at most 31).
_WEEKS = [f"active_days_week_{week}" for week in range(WEEKS)]
_MONTHS = [f"active_days_month_{month}" for month in range(MONTHS)]
_CALENDAR_COUNTS = PackedCounts({**dict.fromkeys(_WEEKS, 7), **dict.fromkeys(_MONTHS, 31)})


def _day_counts(rows: ir.Table) -> ir.IntegerValue:
    """Days of (T-30, T] with a row, active, per non-zero tier; active days of (T-90, T].

    Zero days are the observed days minus the others: days without a row are zero days.
    """
    recent = rows.offset < 30
    counted = _DAY_COUNTS.one("usage_days_30d", recent)
    counted += _DAY_COUNTS.one("active_days_30d", recent & rows.active)
    for tier in TIERS[1:]:
        counted += _DAY_COUNTS.one(f"tier_{tier}_days_30d", recent & (rows.tier == tier))
    counted += _DAY_COUNTS.one("active_days_90d", (rows.offset < 90) & rows.active)
    return counted.sum()


def _window_totals(rows: ir.Table) -> dict[str, ir.Value]:
    """Every window's counts and sums over a spine row's look-back rows, for one aggregation."""
    recent = rows.offset < 30
    prior = (rows.offset >= 30) & (rows.offset < 60)
    last_90 = rows.offset < 90
    calendar = (_CALENDAR_COUNTS.one_of(_WEEKS, rows.week_back, rows.active)
                + _CALENDAR_COUNTS.one_of(_MONTHS, rows.month_back, rows.active))
    totals = dict(
        day_counts=_day_counts(rows),
        calendar_counts=calendar.sum(),
        max_daily_active_users_30d=rows.active_users.max(where=recent),
    )
    for column in _VOLUMES:
        totals[f"{column}_30d"] = rows[column].sum(where=recent)
        totals[f"{column}_prior_30d"] = rows[column].sum(where=prior)
        totals[f"{column}_90d"] = rows[column].sum(where=last_90)
    block = rows.offset // 7
    for number in range(PEAK_BLOCKS):
        totals[f"key_actions_block_{number}"] = rows.key_actions.sum(where=block == number)
    return totals


def _observed(window: Window) -> ir.Table:
    """Per spine row: seats, days from the account's first day, observed days/weeks/months.

    A window's day, week or month is observed when it has a day on or after the account's
    first day (``start``, at most as_of). With ``D = as_of - start``: days of the last N are
    ``min(D + 1, N)``; the w-th week back ends ``to_last_sunday + 7w`` days before as_of; the
    k-th month back is observed when the start's month is not later.
    """
    accounts, history = window.source.tables["accounts"], window.history
    spine = _spine_calendar(window.spine)
    rows = spine.join(accounts, "account_id").join(history, "account_id")
    rows = rows.select(
        spine.account_id, spine.as_of, spine.to_last_sunday, spine.last_full_month,
        seats=accounts.seats.cast("float64"),
        days_observed=days_between(spine.as_of, history.start) + 1,
        start_month=month_number(history.start),
    )
    span = rows.days_observed - rows.to_last_sunday  # days from the start to the last Sunday
    return rows.mutate(
        observed_days_30d=ibis.least(rows.days_observed, 30),
        observed_days_56d=ibis.least(rows.days_observed, 7 * PEAK_BLOCKS),
        observed_days_60d=ibis.least(rows.days_observed, 60),
        observed_days_90d=ibis.least(rows.days_observed, 90),
        observed_weeks_12w=(span > 0).ifelse(ibis.least((span - 1) // 7 + 1, WEEKS), 0),
        observed_months_3m=ibis.greatest(
            ibis.least(rows.last_full_month - rows.start_month + 1, MONTHS), 0
        ),
    )


def tier_counts_30d(window: Window) -> ir.Table:
    """tier_{zero,low,mid,high}_days_30d of every spine row, and nothing else.

    The vectors' own day counts and zero-day rule, over a join of only the last 30 days.
    """
    days, spine, history = window.days, window.spine, window.history
    rows = days.join(spine, [days.account_id == spine.account_id, days.date <= spine.as_of,
                             days.date > shift_days(spine.as_of, -30)])
    rows = rows.select(days.account_id, spine.as_of, days.tier, days.active,
                       offset=days_between(spine.as_of, days.date))
    counts = rows.group_by(KEYS).aggregate(day_counts=_day_counts(rows))
    first = spine.join(history, "account_id").select(
        spine.account_id, spine.as_of,
        observed_days_30d=ibis.least(days_between(spine.as_of, history.start) + 1, 30),
    )
    out = first.left_join(counts, list(KEYS))
    unpacked = _DAY_COUNTS.unpack(out.day_counts.fill_null(0))
    nonzero = {f"tier_{t}_days_30d": unpacked[f"tier_{t}_days_30d"] for t in TIERS[1:]}
    return out.select(
        first.account_id, first.as_of,
        tier_zero_days_30d=first.observed_days_30d - sum(nonzero.values()),
        **nonzero,
    )


def activity_features(window: Window) -> ir.Table:
    """All daily-table window features of every spine row, from one aggregation."""
    rows = lookback_rows(window)
    totals = rows.group_by(KEYS).aggregate(**_window_totals(rows))
    observed = _observed(window)
    if window.config.monthly_rule == "working_days":
        thresholds = ibis.memtable(
            monthly_thresholds(window.first_as_of, window.last_as_of, window.config),
            schema={"last_full_month": "int64",
                    **{f"required_{month}": "int64" for month in range(MONTHS)}},
        )
        observed = observed.join(thresholds, "last_full_month")
    out = observed.left_join(totals, list(KEYS))
    # A spine row without look-back rows has no usage there: zero counts and sums.
    filled = {name: out[name].fill_null(0) for name in totals.columns
              if name not in KEYS and name != "max_daily_active_users_30d"}
    out = out.select(
        observed,
        **{name: value for name, value in filled.items() if not name.endswith("_counts")},
        **_DAY_COUNTS.unpack(filled["day_counts"]),
        **_CALENDAR_COUNTS.unpack(filled["calendar_counts"]),
        max_daily_active_users_30d=out.max_daily_active_users_30d,
    )
    return out.select(
        *KEYS,
        **_last_30_days(out),
        **_last_90_days(out),
        **_trends(out),
        peak_week_key_actions_change=_peak_week_change(out),
        **_weekly_active(out, window.config),
        **_monthly_active(out, window.config),
    )


def _last_30_days(out: ir.Table) -> dict[str, ir.Value]:
    observed = out.observed_days_30d
    nonzero = [out[f"tier_{t}_days_30d"] for t in TIERS[1:]]
    # Days without a row count with 0 logged-in users (contract: active_users >= 0).
    busiest = out.max_daily_active_users_30d
    busiest = (out.usage_days_30d < observed).ifelse(ibis.greatest(busiest.fill_null(0), 0),
                                                     busiest)
    return dict(
        observed_days_30d=observed,
        active_days_30d=out.active_days_30d,
        active_day_share_30d=out.active_days_30d / observed.nullif(0).cast("float64"),
        tier_zero_days_30d=observed - sum(nonzero),
        **{f"tier_{t}_days_30d": out[f"tier_{t}_days_30d"] for t in TIERS[1:]},
        max_daily_active_users_30d=busiest,
        logins_30d=out.logins_30d,
        key_actions_30d=out.key_actions_30d,
        key_actions_per_seat_30d=out.key_actions_30d.cast("float64") / out.seats,
        logins_per_seat_30d=out.logins_30d.cast("float64") / out.seats,
    )


def _last_90_days(out: ir.Table) -> dict[str, ir.Value]:
    """Activity in (T-90, T]: active days, volumes per seat, logged-in seat-days and their share.

    Three months smooth out the day-to-day noise of a 30-day window; per-seat and per-seat-day
    ratios make accounts of different sizes comparable. Young accounts: shares are over the
    observed days; per-seat volumes are sums over what was observed (see observed_days_90d).
    """
    observed = out.observed_days_90d.nullif(0).cast("float64")
    key_actions, seat_days = out.key_actions_90d, out.active_users_90d
    return dict(
        observed_days_90d=out.observed_days_90d,
        active_days_90d=out.active_days_90d,
        active_day_share_90d=out.active_days_90d / observed,
        key_actions_per_seat_90d=key_actions.cast("float64") / out.seats,
        logins_per_seat_90d=out.logins_90d.cast("float64") / out.seats,
        logged_in_seat_days_90d=seat_days,
        logged_in_seat_day_share_90d=seat_days.cast("float64") / (out.seats * observed),
        key_actions_per_logged_in_seat_day_90d=key_actions.cast("float64")
        / seat_days.nullif(0).cast("float64"),
    )


def _trends(out: ir.Table) -> dict[str, ir.Value]:
    """Relative change, last 30 days vs the 30 before; NULL if the prior window is unknown."""
    fully_observed = out.observed_days_60d >= 60
    changes = {}
    for column in _VOLUMES:
        now, before = out[f"{column}_30d"], out[f"{column}_prior_30d"]
        change = (now - before) / before.nullif(0).cast("float64")
        changes[f"{column}_change_30d"] = fully_observed.ifelse(change, ibis.null("float64"))
    return changes


def _peak_week_change(out: ir.Table) -> ir.Value:
    """Busiest 7-day block of the last 4 vs of the 4 before (blocks end at T, not ISO weeks)."""
    blocks = [out[f"key_actions_block_{number}"] for number in range(PEAK_BLOCKS)]
    half = PEAK_BLOCKS // 2
    recent, prior = ibis.greatest(*blocks[:half]), ibis.greatest(*blocks[half:])
    change = (recent - prior) / prior.nullif(0).cast("float64")
    return (out.observed_days_56d >= 7 * PEAK_BLOCKS).ifelse(change, ibis.null("float64"))


def _weekly_active(out: ir.Table, config: FeatureConfig) -> dict[str, ir.Value]:
    """Of the 12 ISO weeks (Mon-Sun) ending on or before T, how many had enough active days."""
    active = [(out[f"active_days_week_{week}"] >= config.weekly_active_days).ifelse(1, 0)
              for week in range(WEEKS)]
    return dict(weekly_active_weeks_12w=sum(active).cast("int64"),
                observed_weeks_12w=out.observed_weeks_12w)


def _monthly_active(out: ir.Table, config: FeatureConfig) -> dict[str, ir.Value]:
    """Of the 3 calendar months ending on or before T, how many were monthly active."""
    active = []
    for month in range(MONTHS):
        if config.monthly_rule == "days":
            required = ibis.literal(config.monthly_active_days, "int64")
        else:
            required = out[f"required_{month}"]
        # Only an observed month can be active (a month may require 0 days: all holidays).
        enough = (month < out.observed_months_3m) & (out[f"active_days_month_{month}"] >= required)
        active.append(enough.ifelse(1, 0))
    months = sum(active).cast("int64")
    return dict(monthly_active_months_3m=months, observed_months_3m=out.observed_months_3m,
                activity_rate_3m=months.cast("float64") / 3)


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


def monthly_thresholds(
    first_as_of: date, last_as_of: date, config: FeatureConfig
) -> dict[str, list[int]]:
    """Per possible last complete month of the as-of dates: what it and the two months before
    it require under the working-days rule (``required_0`` is the last month)."""
    thresholds = working_day_thresholds(first_as_of, last_as_of, config)
    by_month = dict(zip(thresholds["month"], thresholds["required_active_days"], strict=True))
    last_months = thresholds["month"][MONTHS - 1:]
    table: dict[str, list[int]] = {"last_full_month": last_months}
    for month in range(MONTHS):
        table[f"required_{month}"] = [by_month[number - month] for number in last_months]
    return table
