"""Whether the usage reaches the as-of date: an export older than T makes every account look idle.

The days after the last usage row count as days without usage (tier zero) for every account,
so vectors as of a T past the export's end show a fall in activity that did not happen, and
scores turn healthy accounts into risks. The commands warn and go on: a last day without any
usage is possible (a holiday), and the figures are still exact for the data given.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from features.source import Source


def usage_end(source: Source) -> date | None:
    """The last day with a usage row (None for an empty table): one cheap aggregate."""
    usage = source.tables["usage"]
    end = usage.date.max().to_pandas()
    return None if end is None or pd.isna(end) else pd.Timestamp(end).date()


def stale_usage_warning(source: Source, as_of: date) -> str | None:
    """A sentence for people when the usage ends before ``as_of``, else None."""
    end = usage_end(source)
    if end is None or end >= as_of:
        return None
    days = (as_of - end).days
    return (
        f"usage ends {end.isoformat()}, {days} day(s) before as-of {as_of.isoformat()}: those "
        "days count as days without usage for every account, so recent activity looks lower "
        f"than it was; an as-of on or before {end.isoformat()} reads complete data"
    )
