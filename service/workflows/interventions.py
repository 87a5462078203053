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

from service.workflows.outcomes import term_being_renewed

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
    """True/False once the term the attempt is about (:func:`term_being_renewed`) is
    decided, else None."""
    contract = term_being_renewed(contracts, account_id, assigned_on)
    if contract is None or pd.isna(contract["renewed"]):
        return None
    return bool(contract["renewed"])


def save_rate(
    attempts: list[AssignedAttempt], contracts: pd.DataFrame, by: GroupBy,
    confidence: float = 0.95, at_risk_below: float = 0.75,
) -> list[dict[str, Any]]:
    """One row per group: assigned, decided, pending, actual, expected, uplift and its CI;
    and the domain's save rate (§5: accounts saved / at-risk accounts assigned) over the
    accounts with an attempt made while they were at risk, its probability at assignment
    below ``at_risk_below`` (the service's medium-risk cut-off), each judged from its first
    such attempt: a QBR on an account at 97 % is an intervention, not a save, and counted in
    ``save_rate`` it flattered the team."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    groups: dict[str, dict[str, AssignedAttempt]] = {}
    # An account's first attempt while it was at risk: a routine check-in at 92 % and a save
    # attempt at 40 % later make it an at-risk account assigned (judged from the save
    # attempt), which keying on its first attempt alone missed (found by review).
    at_risk_firsts: dict[str, dict[str, AssignedAttempt]] = {}
    for attempt in sorted(attempts, key=lambda a: (a.assigned_on, a.account_id)):
        key = {"csm": attempt.csm_id or "(none)", "playbook": attempt.playbook, "all": "all"}[by]
        groups.setdefault(key, {}).setdefault(attempt.account_id, attempt)
        if attempt.probability < at_risk_below:
            at_risk_firsts.setdefault(key, {}).setdefault(attempt.account_id, attempt)
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
        at_risk = list(at_risk_firsts.get(key, {}).values())
        at_risk_decided = [o for o in (outcome_of(contracts, a.account_id, a.assigned_on)
                                       for a in at_risk) if o is not None]
        saved = sum(1 for o in at_risk_decided if o)
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
            "at_risk_assigned": len(at_risk),
            "at_risk_decided": len(at_risk_decided),
            "at_risk_saved": saved,
            "at_risk_save_rate": (round(saved / len(at_risk_decided), 4)
                                  if at_risk_decided else None),
            "at_risk_below": at_risk_below,
            "confidence": confidence,
        })
    return rows
