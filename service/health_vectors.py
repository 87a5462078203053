"""A CSM's health input applied to a stored feature vector, as the pipeline will apply it
(the on-the-spot re-score of a new input, :mod:`service.rescore`), and the names of the
inputs, the pipeline's own (``features/windows/manual_health.py``), for every service module
that reads them.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from features.windows.manual_health import INPUTS


class HealthValues(Protocol):
    """What an input says: the API's body and the stored audit row both have these."""

    exec_sponsor_active: bool | None
    core_process_live: bool | None
    csm_score: int | None


INPUT_FEATURES = INPUTS


def apply_input(
    vector: dict[str, Any],
    health: HealthValues,
    effective: date,
    as_of: date,
    stale_after_days: int,
) -> dict[str, Any]:
    """The feature vector with one new health input applied (pipeline semantics). A note
    alone is no judgement: the vector, and the inputs' age, stay as they were."""
    out = dict(vector)
    given = {name: getattr(health, name) for name in INPUT_FEATURES
             if getattr(health, name) is not None}
    if not given:
        return out
    out.update(given)
    age = (as_of - effective).days
    previous_age = out.get("health_input_age_days")
    if previous_age is None or age <= previous_age:
        out["health_input_age_days"] = age
        out["health_input_stale"] = age > stale_after_days
    return out
