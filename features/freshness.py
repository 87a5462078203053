"""Whether the usage covers the time it is read for: its end and its start.

The end: the days after the last usage row count as days without usage (tier zero) for every
account, so vectors as of a T past the export's end show a fall in activity that did not
happen, and scores turn healthy accounts into risks.

The start: an export of the last year holds no usage of older accounts' first weeks, so they
look as if they never activated within their window (``past_window_not_activated``, a risk
driver) unless ``usage_history_starts`` says where the usage begins.

The commands warn and go on: a last day without any usage is possible (a holiday), accounts
may truly have signed long before anyone used the product, and the figures are still exact
for the data given.

With them come the data contract's warnings (:func:`features.validation.contract_warnings`:
more logged-in users than seats, a next term starting on a term's last day), said as counts.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import pandas as pd

from features.config import FeatureConfig
from features.source import Source
from features.validation import contract_warnings


def _day(value: object) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def usage_span(source: Source) -> tuple[date | None, date | None]:
    """The first and the last day with a usage row (None for an empty table): one cheap
    aggregate, one read of the date column for both."""
    usage = source.tables["usage"]
    row = usage.aggregate(first=usage.date.min(), last=usage.date.max()).to_pandas()
    return _day(row["first"].iloc[0]), _day(row["last"].iloc[0])


def usage_end(source: Source) -> date | None:
    """The last day with a usage row (None for an empty table)."""
    return usage_span(source)[1]


def stale_usage_warning(source: Source, as_of: date, end: date | None = None) -> str | None:
    """A sentence for people when the usage ends before ``as_of``, else None (``end``: the
    usage's last day when already known)."""
    return usage_ends_sentence(as_of, end or usage_end(source))


def usage_ends_sentence(as_of: date, end: date | None) -> str | None:
    """:func:`stale_usage_warning` with the usage's last day known (None: no usage at all,
    which is no warning here): the service keeps the day per data directory and says the
    sentence for each as_of asked."""
    if end is None or end >= as_of:
        return None
    days = (as_of - end).days
    return (
        f"usage ends {end.isoformat()}, {days} day(s) before as-of {as_of.isoformat()}: those "
        "days count as days without usage for every account, so recent activity looks lower "
        f"than it was; an as-of on or before {end.isoformat()} reads complete data"
    )


def usage_start_warning(
    source: Source, config: FeatureConfig, start: date | None = None
) -> str | None:
    """A sentence for people when accounts signed more than the shortest activation window
    before the usage's first day (``start`` when already known) and ``usage_history_starts``
    is not set, else None.

    Only a count is said (warnings are stored with a scoring run and shown to every role)."""
    if config.usage_history_starts is not None:
        return None
    start = start or usage_span(source)[0]
    if start is None:
        return None
    window = min(config.activation_window_days_small, config.activation_window_days_large,
                 *config.activation_window_by_segment.values())
    accounts = source.tables["accounts"]
    cutoff = ibis.literal(start - timedelta(days=window), "date")
    count = int(accounts.filter(accounts.signed_at < cutoff).count().to_pandas())
    if count == 0:
        return None
    return (
        f"usage begins {start.isoformat()}, more than {window} days after {count} account(s) "
        "signed: the data cannot show whether they activated, so they count as not activated "
        "within their window; if the usage export starts there, set usage_history_starts = "
        f"{start.isoformat()} in the feature config to mark their activation unknown"
    )


def contract_warning_sentences(source: Source) -> list[str]:
    """The data contract's warnings as sentences: the rule and a row count, never example
    keys (they name accounts, and these warnings are shown to every role); ``renewal validate``
    lists examples to whoever reads the data directory."""
    return [
        f"{w.table}.{w.column}: {w.rule} ({w.rows} row{'s' if w.rows != 1 else ''}; "
        "renewal validate lists examples)"
        for w in contract_warnings(source, examples=False)
    ]


def data_warnings(source: Source, as_of: date, config: FeatureConfig) -> list[str]:
    """What people should know about the data, as sentences (maybe none): how far the usage
    reaches (its end and its start, from one read of its dates), then the contract's
    warnings."""
    start, end = usage_span(source)
    found = [stale_usage_warning(source, as_of, end), usage_start_warning(source, config, start)]
    return [w for w in found if w is not None] + contract_warning_sentences(source)
