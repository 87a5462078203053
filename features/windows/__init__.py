"""Point-in-time feature families, one module each, all written once in Ibis.

Every family takes a :class:`Window` (the spine of ``(account_id, as_of)`` rows plus the
inputs) and returns a table keyed by ``(account_id, as_of)`` whose values use only data dated
on or before that row's ``as_of``; :mod:`features.vectors` joins the families together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir

from features.config import FeatureConfig
from features.source import Source

KEYS = ("account_id", "as_of")
# Longest look-back of a daily-table window: 3 calendar months ending on or before as_of
# reach back at most 123 days; 12 ISO weeks 89 days; trends 60 days.
DAILY_LOOKBACK_DAYS = 125
# The 90-day window (T-90, T] and the 12 ISO weeks ending on the last Sunday on or before T
# both start 89 days before T at the earliest.
_DAY_WINDOWS_DAYS = 90


@dataclass(frozen=True)
class Window:
    """What every feature family needs: inputs, the spine and the bounds of its as-of dates."""

    source: Source
    spine: ir.Table  # distinct (account_id, as_of); as_of is a date
    daily: ir.Table  # features.daily.daily_activity up to last_as_of
    config: FeatureConfig
    first_as_of: date
    last_as_of: date
    # First day of ``daily`` (None: the whole history, from each account's start).
    daily_since: date | None = None
    # features.daily.usage_bounds up to last_as_of, when already computed.
    usage_bounds: ir.Table | None = None


def lookback_start(as_of: date) -> date:
    """The earliest day any daily-table window of a vector as of ``as_of`` reads.

    The first day of the 3 calendar months ending on or before ``as_of``, or 89 days before
    ``as_of`` (90-day window, 12 ISO weeks), whichever is earlier. A daily table starting here
    gives every window exactly the rows the whole history would.
    """
    last_full = as_of.year * 12 + as_of.month - 1  # months since year 0, zero-based
    if (as_of + timedelta(days=1)).day != 1:
        last_full -= 1
    year, month = divmod(last_full - 2, 12)
    first_month_day = date(year, month + 1, 1)
    return min(first_month_day, as_of - timedelta(days=_DAY_WINDOWS_DAYS - 1))


def days_between(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    """Whole days from ``earlier`` to ``later`` (positive when ``later`` is after)."""
    return later.delta(earlier, unit="day")


def shift_days(day: ir.DateValue, days: int) -> ir.DateValue:
    """``day`` moved by ``days`` (negative: back), as a DATE on every engine.

    DuckDB turns date +/- interval into a timestamp, and a join on it would compare every
    row's date as a timestamp; Ibis drops a cast from "date" to "date", hence the detour.
    """
    return (day + ibis.interval(days=days)).cast("timestamp").date()


def count_if(table: ir.Table, condition: ir.BooleanValue) -> ir.IntegerValue:
    """Rows meeting ``condition``; 0 (never NULL) for a group without such rows."""
    return condition.ifelse(1, 0).sum().fill_null(0)
