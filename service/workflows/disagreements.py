"""Machine vs CSM: accounts where the model and the CSM's latest judgement disagree strongly.

Both sides are shown next to each other and never averaged: a disagreement is a question for
a person (is the CSM seeing something the data cannot, or is the judgement out of date?).
The judgement is the one the latest score used (``csm_score``, ``exec_sponsor_active``,
``core_process_live`` in its stored vector), with its age and stale flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from service.workflows.stale_inputs import stale_status


@dataclass(frozen=True)
class Thresholds:
    """Model-at-risk below ``low_probability`` while the CSM says >= ``high_csm_score`` (or
    sponsor and process both fine); model-safe above ``high_probability`` while the CSM says
    <= ``low_csm_score`` (or neither sponsor nor process)."""

    low_probability: float
    high_csm_score: int
    high_probability: float
    low_csm_score: int


def disagreement(
    probability: float, features: dict[str, Any], thresholds: Thresholds
) -> list[str]:
    """The reasons this account is a disagreement (empty: none)."""
    score = features.get("csm_score")
    sponsor = features.get("exec_sponsor_active")
    process = features.get("core_process_live")
    reasons = []
    if probability < thresholds.low_probability:
        if score is not None and score >= thresholds.high_csm_score:
            reasons.append("model_at_risk_csm_score_high")
        if sponsor is True and process is True:
            reasons.append("model_at_risk_sponsor_and_process_fine")
    if probability > thresholds.high_probability:
        if score is not None and score <= thresholds.low_csm_score:
            reasons.append("model_safe_csm_score_low")
        if sponsor is False and process is False:
            reasons.append("model_safe_no_sponsor_no_process")
    return reasons


def csm_view(features: dict[str, Any]) -> float | None:
    """The CSM score on the probability scale (1 → 0, 5 → 1), only to ORDER the list."""
    score = features.get("csm_score")
    return None if score is None else (float(score) - 1.0) / 4.0


def find_disagreements(
    rows: list[tuple[str, str | None, date, float, str, dict[str, Any]]],
    thresholds: Thresholds,
    stale_days: int,
) -> list[dict[str, Any]]:
    """Rows are (account, csm, as_of, probability, tier, features); largest gap first."""
    out = []
    for account_id, csm_id, as_of, probability, tier, features in rows:
        reasons = disagreement(probability, features, thresholds)
        if not reasons:
            continue
        view = csm_view(features)
        out.append({
            "account_id": account_id,
            "csm_id": csm_id,
            "as_of": as_of,
            "model": {"probability": round(probability, 4), "risk_tier": tier},
            "csm": {
                "csm_score": features.get("csm_score"),
                "exec_sponsor_active": features.get("exec_sponsor_active"),
                "core_process_live": features.get("core_process_live"),
                **stale_status(features, as_of, stale_days),
            },
            "reasons": reasons,
            "gap": None if view is None else round(abs(probability - view), 4),
        })
    out.sort(key=lambda d: (-(d["gap"] or 0.0), d["account_id"]))
    return out
