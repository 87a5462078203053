"""Point-in-time feature families, one module each, all written once in Ibis.

Every family takes a :class:`Window` (the spine of ``(account_id, as_of)`` rows plus the
inputs) and returns a table keyed by ``(account_id, as_of)`` whose values use only data dated
on or before that row's ``as_of``; :mod:`features.vectors` joins the families together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis.expr.types as ir

from features.config import FeatureConfig
from features.source import Source

KEYS = ("account_id", "as_of")
# Longest look-back of a daily-table window: 3 calendar months ending on or before as_of
# reach back at most 123 days; 12 ISO weeks 89 days; trends 60 days.
DAILY_LOOKBACK_DAYS = 125


@dataclass(frozen=True)
class Window:
    """What every feature family needs: inputs, the spine and the bounds of its as-of dates."""

    source: Source
    spine: ir.Table  # distinct (account_id, as_of); as_of is a date
    daily: ir.Table  # features.daily.daily_activity up to last_as_of
    config: FeatureConfig
    first_as_of: date
    last_as_of: date


def days_between(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    """Whole days from ``earlier`` to ``later`` (positive when ``later`` is after)."""
    return later.delta(earlier, unit="day")


def count_if(table: ir.Table, condition: ir.BooleanValue) -> ir.IntegerValue:
    """Rows meeting ``condition``; 0 (never NULL) for a group without such rows."""
    return condition.ifelse(1, 0).sum().fill_null(0)
