"""Why the score moved: between consecutive stored scores, the features whose contributions
changed most, said in words ("probability fell 14 points: active days 30d 22 → 9, ...").

Contributions are recomputed from the STORED feature vectors with the model served now,
not read from the stored drivers: those hold only the top few per side (a feature that left
the top 3 would vanish from the comparison) and two scores may come from different model
versions, whose contributions are not comparable. One model on both vectors isolates what
the account did. The headline move is the stored probabilities (what users saw); when the
model version changed in between, the entry says so and the served model's own move
(``attributed_points``) is given next to it.
"""

from __future__ import annotations

import math
from typing import Any

from service.db.models import Score
from service.model_store import LoadedModel
from service.workflows.encode import matrix
from service.workflows.stale_inputs import stale_status
from training.scorer import FeatureSpec

MIN_POINTS = 0.5  # a feature that moved the probability by less is not worth a word


def _label(spec: FeatureSpec) -> str:
    return spec.name.replace("_", " ")


def format_value(spec: FeatureSpec, value: Any) -> str:
    """A value as a person reads it: 22, 63%, 1.5, smb, unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if isinstance(value, str):
        return value
    number = float(value)
    if spec.unit in ("share", "ratio"):
        return f"{number:.0%}"
    if number.is_integer():
        return f"{number:.0f}"
    return f"{number:.1f}"


def change_in_words(spec: FeatureSpec, before: Any, after: Any) -> str:
    """One feature's change: "active days 30d 22 → 9" or the bool's own phrase."""
    if spec.kind == "bool" and before is not None and after is not None:
        if bool(after):
            return spec.description or f"{_label(spec)} now true"
        return spec.description_false or f"{_label(spec)} no longer true"
    return f"{_label(spec)} {format_value(spec, before)} → {format_value(spec, after)}"


def move_in_words(points: float) -> str:
    rounded = round(points)
    if rounded == 0:
        return "probability unchanged"
    verb = "rose" if rounded > 0 else "fell"
    amount = abs(rounded)
    return f"probability {verb} {amount} point{'s' if amount != 1 else ''}"


def explain_history(
    model: LoadedModel, scores: list[Score], stale_days: int, top_n: int = 3
) -> list[dict[str, Any]]:
    """Scores newest first, each with why it differs from the one before it."""
    if not scores:
        return []
    scorer = model.scorer
    vectors = [dict(s.features) for s in scores]
    X = matrix(scorer, vectors)
    contributions, served = scorer.contributions(X)
    entries = []
    for i, score in enumerate(scores):
        entry: dict[str, Any] = {
            "as_of": score.as_of,
            "probability": round(score.probability, 4),
            "risk_tier": score.risk_tier,
            "model": {"name": score.model_name, "version": score.model_version},
            "trigger": score.trigger,
            "scored_at": score.created_at,
            "inputs": stale_status(vectors[i], score.as_of, stale_days),
            "change": None,
        }
        older = i + 1
        if older < len(scores):
            entry["change"] = _change(model, scores[older], score, X[older], X[i],
                                      contributions[older], contributions[i],
                                      float(served[i] - served[older]), top_n)
        entries.append(entry)
    return entries


def _change(
    model: LoadedModel, older: Score, newer: Score, x_old: Any, x_new: Any, c_old: Any,
    c_new: Any, served_delta: float, top_n: int,
) -> dict[str, Any]:
    scorer = model.scorer
    points = 100 * (newer.probability - older.probability)
    ranked = []
    for j in range(len(scorer.features)):
        a, b = x_old[j], x_new[j]
        same = (math.isnan(a) and math.isnan(b)) or a == b
        if same:
            continue
        delta = 100 * float(c_new[j] - c_old[j])
        ranked.append((abs(delta), j, delta))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    features = []
    for _size, j, delta in ranked:
        spec = scorer.features[j]
        before, after = scorer.decode(spec, x_old[j]), scorer.decode(spec, x_new[j])
        features.append({
            "feature": spec.name,
            "before": before,
            "after": after,
            "contribution_change_points": round(delta, 2),
            "words": change_in_words(spec, before, after),
        })
    big = [f for f in features[:top_n] if abs(f["contribution_change_points"]) >= MIN_POINTS]
    worded = [f["words"] for f in (big or features[:1])]
    headline = move_in_words(points)
    model_changed = older.model_version != newer.model_version
    text = f"{headline}: {', '.join(worded) if worded else 'no model input changed'}"
    if model_changed:
        text += f" (model v{older.model_version} → v{newer.model_version})"
    return {
        "from_as_of": older.as_of,
        "points": round(points, 2),
        "attributed_points": round(100 * served_delta, 2),
        "model_changed": model_changed,
        "explanation": text,
        "features": features[: max(top_n, 10)],
    }
