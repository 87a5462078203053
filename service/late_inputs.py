"""Health inputs recorded while a scoring run computed: applied to its scores before they are
stored.

``renewal score`` reads the stored inputs, then spends seconds to minutes on features and the
model. An input recorded meanwhile re-scores its account on the spot (:mod:`service.rescore`)
from the account's previous score; the run's score, built without the input, then became
the account's newest and hid the input until the next run (found by audit: a sponsor "no"
entered during a run was lost from the served score). So the run marks the inputs it read
(the largest id, read while no re-score is under way: every input up to the mark is
committed, every later one gets a larger id) and, storing its scores under the same lock,
applies each input recorded after the mark to that account's fresh vector, as the re-score
would have, and scores the account again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from service.db.health_inputs import inputs_recorded_after
from service.health_vectors import apply_input
from service.predict import ScoredVector

Rescore = Callable[[list[dict[str, Any]]], list[ScoredVector]]


@dataclass(frozen=True)
class InputsRead:
    """What a scoring run read of the stored inputs, and how it scores a vector again."""

    last_id: int
    stale_input_days: int
    rescore: Rescore


def apply_late_inputs(
    session: Session, rows: list[dict[str, Any]], read: InputsRead, as_of: date
) -> list[str]:
    """Update the run's score ``rows`` (as stored: features, probability, tier, drivers) of
    the accounts with inputs recorded after ``read.last_id``; returns those account ids.
    Call it under :func:`service.db.scores.lock_all_accounts`, in the store's transaction."""
    position = {row["account_id"]: i for i, row in enumerate(rows)}
    vectors: dict[int, dict[str, Any]] = {}
    for health in inputs_recorded_after(session, read.last_id, as_of):
        i = position.get(health.account_id)
        if i is None:  # not scored by this run (lost, or signed after its as_of)
            continue
        vector = vectors.get(i, rows[i]["features"])
        if _older_than_in_vector(vector, (as_of - health.effective_date).days):
            continue
        vectors[i] = apply_input(vector, health, health.effective_date, as_of,
                                 read.stale_input_days)
    if not vectors:
        return []
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


def _older_than_in_vector(vector: dict[str, Any], age: int) -> bool:
    """The vector already holds a judgement of a later day (the data directory's export): the
    pipeline reads the latest day, so the next run would take that one again and flip the
    score back (found by review). An input re-scored on the spot takes effect on the previous
    run's as_of, which can be older than an export's row of this run."""
    held = vector.get("health_input_age_days")
    return held is not None and held == held and age > held  # held == held: not NaN

