"""Health inputs recorded while a scoring run computed: applied to its scores before they are
stored.

``renewal score`` reads the stored inputs, then spends seconds to minutes on features and the
model. An input recorded meanwhile re-scores its account on the spot (:mod:`service.rescore`)
from the account's previous score; the run's score, built without the input, then became
the account's newest and hid the input until the next run (found by audit: a sponsor "no"
entered during a run was lost from the served score). So the run marks the inputs it read
(the largest id, read while no re-score is under way: every input up to the mark is
committed, every later one gets a larger id) and, storing its scores under the same lock,
takes the inputs recorded after the mark into the accounts they concern and scores them
again.

Those accounts' judgement is read again as the pipeline reads it, field by field
(``features/windows/manual_health.py``: each input from the latest day it is filled in, on
the data directory's export merged with the API's inputs), not by laying the new input over
the vector: a re-scored input takes effect on the previous run's as_of, and the export may
hold a later day for one field and not for another (found by review: a sponsor "no" was
dropped where the export's later row held only a score, and the next run flipped it back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from service.db.health_inputs import accounts_with_inputs_after, stored_inputs_as_table
from service.health_vectors import INPUT_FEATURES
from service.predict import ScoredVector

Rescore = Callable[[list[dict[str, Any]]], list[ScoredVector]]
#: The data directory's health inputs merged with the API's (``scoring.merged_health_inputs``).
Merge = Callable[[pd.DataFrame], pd.DataFrame | None]


@dataclass(frozen=True)
class InputsRead:
    """What a scoring run read of the stored inputs, and how it reads and scores again."""

    last_id: int
    stale_input_days: int
    rescore: Rescore
    merge: Merge


def apply_late_inputs(
    session: Session, rows: list[dict[str, Any]], read: InputsRead, as_of: date
) -> list[str]:
    """Update the run's score ``rows`` (as stored: features, probability, tier, drivers) of
    the accounts with inputs recorded after ``read.last_id``; returns those account ids.
    Call it under :func:`service.db.scores.lock_all_accounts`, in the store's transaction."""
    position = {row["account_id"]: i for i, row in enumerate(rows)}
    late = accounts_with_inputs_after(session, read.last_id, as_of)
    accounts = sorted(late & set(position))  # not scored by this run: lost, or signed later
    if not accounts:
        return []
    merged = read.merge(stored_inputs_as_table(session, as_of, accounts))
    judged = judgement(merged, accounts, as_of, read.stale_input_days)
    vectors = {position[a]: {**rows[position[a]]["features"], **judged[a]} for a in accounts}
    changed = list(vectors)
    for i, scored in zip(changed, read.rescore([vectors[i] for i in changed]), strict=True):
        rows[i].update(
            features=vectors[i],
            probability=scored.probability,
            heuristic_probability=scored.heuristic_probability,
            risk_tier=scored.risk_tier,
            drivers=scored.drivers,
        )
    return [rows[i]["account_id"] for i in changed]


def judgement(merged: pd.DataFrame | None, accounts: list[str], as_of: date,
              stale_input_days: int) -> dict[str, dict[str, Any]]:
    """Per account, the manual-health features as the pipeline computes them from the merged
    inputs (one row per account and day): each input from the latest day it is filled in,
    the age from the latest day with any input, stale beyond ``stale_input_days``."""
    out: dict[str, dict[str, Any]] = {}
    day = pd.Timestamp(as_of)
    for account in accounts:
        values: dict[str, Any] = {name: None for name in INPUT_FEATURES}
        values.update(health_input_age_days=None, health_input_stale=None)
        if merged is not None and len(merged):
            mine = merged[(merged["account_id"] == account) & (merged["date"] <= day)]
            for name in INPUT_FEATURES:
                filled = mine[mine[name].notna()]
                if len(filled):
                    value = filled.loc[filled["date"].idxmax(), name]
                    values[name] = bool(value) if name != "csm_score" else int(value)
            given = mine.dropna(subset=list(INPUT_FEATURES), how="all")
            if len(given):
                age = int((day - given["date"].max()).days)
                values.update(health_input_age_days=age,
                              health_input_stale=age > stale_input_days)
        out[account] = values
    return out
