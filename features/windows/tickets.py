"""Support tickets as of as_of: volume by type, open and overdue bugs, resolution speed.

A ticket is open at T when it was opened on or before T and not resolved on or before T; it is
overdue when it has been open longer than its severity's deadline (days, configurable).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, count_if, days_between

TYPES = {"bug": "bugs_90d", "feature_request": "feature_requests_90d",
         "usage_question": "usage_questions_90d"}


def ticket_features(window: Window) -> ir.Table | None:
    """Counts in (T-90, T], open/overdue high bugs, overdue bugs, mean resolution days."""
    if not window.source.has("tickets"):
        return None
    tickets, spine = window.source.tables["tickets"], window.spine
    rows = tickets.join(
        spine, [tickets.account_id == spine.account_id, tickets.opened_at <= spine.as_of]
    ).select(spine.account_id, spine.as_of, tickets.type, tickets.severity, tickets.opened_at,
             tickets.resolved_at)
    age = days_between(rows.as_of, rows.opened_at)
    is_open = rows.resolved_at.isnull() | (rows.resolved_at > rows.as_of)
    bug = rows.type == "bug"
    deadlines = window.config.bug_deadline_days_by_severity
    deadline = ibis.cases(
        *[(rows.severity == severity, days) for severity, days in deadlines.items()],
        else_=ibis.null("int64"),
    )
    overdue = bug & is_open & (age > deadline).fill_null(False)
    high = bug & (rows.severity == "high").fill_null(False)
    resolved_recently = (
        rows.resolved_at.notnull()
        & (rows.resolved_at <= rows.as_of)
        & (days_between(rows.as_of, rows.resolved_at) < 180)
    )
    resolution_days = days_between(rows.resolved_at, rows.opened_at).cast("float64")
    counts = {
        name: count_if(rows, (rows.type == kind) & (age < 90)) for kind, name in TYPES.items()
    }
    return rows.group_by(KEYS).aggregate(
        **counts,
        open_high_bugs=count_if(rows, high & is_open),
        overdue_high_bugs=count_if(rows, high & overdue),
        overdue_bugs=count_if(rows, overdue),
        mean_resolution_days_180d=resolution_days.mean(where=resolved_recently),
    )
