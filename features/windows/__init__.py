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
    # Daily rows (features.daily.DAILY_COLUMNS) of at least [lookback_start(first_as_of),
    # last_as_of]: features.daily.usage_days (days with usage only) or daily_activity (every
    # day). A day without a row is a zero-usage day.
    days: ir.Table
    # features.windows.history.account_history up to last_as_of: account_id, start (the
    # account's first day) and activation_date (account_starts: start only).
    history: ir.Table
    config: FeatureConfig
    first_as_of: date
    last_as_of: date


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


class PackedCounts:
    """Small bounded counts added up in one integer aggregate, each in its own bits.

    A spine row's look-back has one row per day, so a count of its days in a window is at
    most the window's length: given that bound, each count gets enough bits that adding
    ``1 << shift`` per counted row never carries into the next count. The engine then
    updates one aggregate per row instead of one per count (about twenty for the windows).
    """

    def __init__(self, maxima: dict[str, int]) -> None:
        self.shifts: dict[str, int] = {}
        self.widths: dict[str, int] = {}
        shift = 0
        for name, most in maxima.items():
            self.shifts[name], self.widths[name] = shift, most.bit_length()
            shift += most.bit_length()
        if shift > 62:
            raise ValueError(f"{shift} bits of counts do not fit a 64-bit sum")

    def one(self, name: str, condition: ir.BooleanValue) -> ir.IntegerValue:
        """A row's contribution to count ``name``: 1 in its bits where ``condition`` holds."""
        return condition.ifelse(ibis.literal(1 << self.shifts[name], "int64"), 0)

    def one_of(self, names: list[str], index: ir.IntegerValue,
               condition: ir.BooleanValue) -> ir.IntegerValue:
        """1 in count ``names[index]`` where ``condition`` holds and ``index`` is in range.

        ``names`` are consecutive counts of one width, so the shift is computed, not chosen
        among ``len(names)`` cases.
        """
        first, width = self.shifts[names[0]], self.widths[names[0]]
        shift = ibis.literal(first, "int64") + index * width
        in_range = condition & (index >= 0) & (index < len(names))
        # 1 << shift, as 2**62 >> (62 - shift): Spark reads a literal 1 as a 32-bit int (its
        # left shifts wrap at 32 bits) but 2**62 as a 64-bit one.
        return in_range.ifelse(ibis.literal(1 << 62, "int64") >> (62 - shift), 0)

    def unpack(self, total: ir.IntegerValue) -> dict[str, ir.IntegerValue]:
        """Every count from the summed ``total``."""
        return {name: ((total >> shift) & ((1 << self.widths[name]) - 1)).cast("int64")
                for name, shift in self.shifts.items()}


def count_if(table: ir.Table, condition: ir.BooleanValue) -> ir.IntegerValue:
    """Rows meeting ``condition``; 0 (never NULL) for a group without such rows."""
    return condition.ifelse(1, 0).sum().fill_null(0)
