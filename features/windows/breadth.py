"""Breadth of adoption: seats and sites used in the last 30 days.

Distinct users over 30 days cannot be rebuilt from daily counts, so with user-grain usage this
reads the raw usage of the last 30 days once; with account-grain usage only daily counts exist,
and seat utilisation is the busiest day's logged-in seats (a lower bound of distinct users).
"""

from __future__ import annotations

from datetime import timedelta

import ibis
import ibis.expr.types as ir

from features.windows import KEYS, Window, shift_days


def _recent_usage(window: Window, days: int) -> ir.Table:
    """Raw usage rows in (as_of - days, as_of] of every spine row, pre-filtered by date."""
    usage = window.source.tables["usage"]
    spine = window.spine.mutate(after=shift_days(window.spine.as_of, -days))
    earliest = ibis.literal(window.first_as_of - timedelta(days=days), "date")
    usage = usage.filter(
        (usage.date > earliest) & (usage.date <= ibis.literal(window.last_as_of, "date"))
    )
    joined = usage.join(
        spine,
        [usage.account_id == spine.account_id, usage.date <= spine.as_of, usage.date > spine.after],
    )
    return joined.drop("after")


def distinct_active_users_30d(window: Window) -> ir.Table | None:
    """(account_id, as_of) -> distinct users with a login in the last 30 days (user grain)."""
    if window.source.usage_grain != "user":
        return None
    rows = _recent_usage(window, 30)
    rows = rows.filter(rows.logins > 0)
    return rows.group_by(KEYS).aggregate(distinct_active_users_30d=rows.user_id.nunique())


def site_features(window: Window) -> ir.Table | None:
    """Share of the account's sites seen so far that had a key action in the last 30 days."""
    if not window.source.has_sites:
        return None
    usage, spine = window.source.tables["usage"], window.spine
    usage = usage.filter(usage.site_id.notnull())
    first_seen = usage.group_by(["account_id", "site_id"]).aggregate(first_seen=usage.date.min())
    known = first_seen.join(
        spine, [first_seen.account_id == spine.account_id, first_seen.first_seen <= spine.as_of]
    )
    known = known.group_by(KEYS).aggregate(sites_seen=known.site_id.nunique())
    recent = _recent_usage(window, 30)
    recent = recent.filter((recent.key_actions > 0) & recent.site_id.notnull())
    active = recent.group_by(KEYS).aggregate(active_sites_30d=recent.site_id.nunique())
    out = known.left_join(active, list(KEYS)).select(
        known.account_id, known.as_of, known.sites_seen, active.active_sites_30d
    )
    active_sites = out.active_sites_30d.fill_null(0)
    return out.select(
        *KEYS,
        active_sites_30d=active_sites,
        active_site_share_30d=active_sites / out.sites_seen.nullif(0).cast("float64"),
    )
