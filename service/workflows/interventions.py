"""Save attempts and the save rate measured against expectation.

An intervention records who (the API key's id), when (server time: no back-dating), the
playbook, a private note (stored, never logged, never sent in webhooks) and the account's
renewal probability at that moment. Its outcome is the ``renewed`` flag of the contract in
force on the assignment day (see :mod:`service.workflows.outcomes`); until that is known the
intervention is "pending" and counts in no rate.

Per group (CSM or playbook): accounts assigned (each account once: its first intervention
in the group), actual renewals among decided ones, expected renewals = Σ p at assignment,
uplift = actual − expected. If the probabilities are calibrated and the attempts change
nothing, actual − expected has mean 0 and variance Σ p(1 − p) (independent Bernoulli
outcomes), so the interval is uplift ± z·sqrt(Σ p(1 − p)) (normal approximation; with few
accounts it is rough and says so through its width). An interval above 0 means the team
saved more accounts than the model expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any, Literal

import pandas as pd

from service.workflows.outcomes import contract_at

GroupBy = Literal["csm", "playbook", "all"]


@dataclass(frozen=True)
class AssignedAttempt:
    """What the save-rate report needs of one intervention."""

    account_id: str
    csm_id: str | None
    playbook: str
    assigned_on: date
    probability: float


def outcome_of(contracts: pd.DataFrame, account_id: str, assigned_on: date) -> bool | None:
    """True/False once the contract in force on the assignment day is decided, else None."""
    contract = contract_at(contracts, account_id, assigned_on)
    if contract is None or pd.isna(contract["renewed"]):
        return None
    return bool(contract["renewed"])


def save_rate(
    attempts: list[AssignedAttempt], contracts: pd.DataFrame, by: GroupBy,
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """One row per group: assigned, decided, pending, actual, expected, uplift and its CI."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    groups: dict[str, dict[str, AssignedAttempt]] = {}
    for attempt in sorted(attempts, key=lambda a: (a.assigned_on, a.account_id)):
        key = {"csm": attempt.csm_id or "(none)", "playbook": attempt.playbook, "all": "all"}[by]
        groups.setdefault(key, {}).setdefault(attempt.account_id, attempt)
    rows = []
    for key in sorted(groups):
        first = list(groups[key].values())
        outcomes = [outcome_of(contracts, a.account_id, a.assigned_on) for a in first]
        decided = [(a, o) for a, o in zip(first, outcomes, strict=True) if o is not None]
        actual = sum(1 for _a, o in decided if o)
        expected = sum(a.probability for a, _o in decided)
        variance = sum(a.probability * (1 - a.probability) for a, _o in decided)
        half = z * math.sqrt(variance)
        uplift = actual - expected
        n = len(decided)
        rows.append({
            "group": key,
            "accounts_assigned": len(first),
            "decided": n,
            "pending": len(first) - n,
            "actual_renewals": actual,
            "expected_renewals": round(expected, 3),
            "uplift": round(uplift, 3),
            "uplift_interval": [round(uplift - half, 3), round(uplift + half, 3)] if n else None,
            "save_rate": round(actual / n, 4) if n else None,
            "expected_save_rate": round(expected / n, 4) if n else None,
            "confidence": confidence,
        })
    return rows
