"""Stale manual inputs: a CSM's judgement older than ``stale_input_days`` should be re-surveyed.

Age is measured as the pipeline measures it: from the latest health input on or before the
score's as_of to that as_of (the stored ``health_input_age_days``), so the flag agrees with
the model's own ``health_input_stale`` feature. An account without any input is stale too
("never surveyed"): it has no judgement to trust.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def stale_status(features: dict[str, Any], as_of: date, stale_days: int) -> dict[str, Any]:
    """``{stale, age_days, last_input_on, never_surveyed}`` of one stored feature vector."""
    age = features.get("health_input_age_days")
    if age is None:
        return {"stale": True, "age_days": None, "last_input_on": None, "never_surveyed": True}
    age_days = int(round(float(age)))
    return {
        "stale": age_days > stale_days,
        "age_days": age_days,
        "last_input_on": (as_of - timedelta(days=age_days)).isoformat(),
        "never_surveyed": False,
    }


def stale_by_csm(
    rows: list[tuple[str, str | None, date, dict[str, Any]]], stale_days: int
) -> list[dict[str, Any]]:
    """Stale accounts per CSM, never-surveyed then oldest first.

    ``rows`` are (account_id, csm_id, as_of, stored features)."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for account_id, csm_id, as_of, features in rows:
        status = stale_status(features, as_of, stale_days)
        if status["stale"]:
            groups.setdefault(csm_id, []).append(
                {"account_id": account_id, "as_of": as_of.isoformat(), **status}
            )
    out = []
    for csm_id in sorted(groups, key=lambda c: (c is None, c or "")):
        accounts = sorted(
            groups[csm_id],
            key=lambda a: (not a["never_surveyed"], -(a["age_days"] or 0), a["account_id"]),
        )
        out.append({"csm_id": csm_id, "accounts": accounts, "count": len(accounts)})
    return out
