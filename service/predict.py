"""Score feature vectors with the served model: probability, heuristic, tier, drivers in words.

Shared by the batch job (``renewal score``), the what-if endpoint and the health-input
re-score, so all three say the same thing for the same vector. No FastAPI here.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from renewal.errors import RenewalError
from service.config import ServiceSettings
from service.model_store import LoadedModel
from training.scorer import category_codes

#: Columns that identify a vector rather than describe the account.
KEY_COLUMNS = ("account_id", "as_of")


@dataclass(frozen=True)
class ScoredVector:
    """One scored feature vector."""

    probability: float
    heuristic_probability: float | None
    risk_tier: str
    drivers: dict[str, list[dict[str, Any]]]


def json_value(value: Any) -> Any:
    """A plain JSON value: numpy scalars unboxed, NaN/NA → None, dates as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def vectors_as_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row's features (identity columns left out) as a JSON-safe dict."""
    columns = [c for c in frame.columns if c not in KEY_COLUMNS]
    converted = {c: [json_value(v) for v in frame[c].tolist()] for c in columns}
    return [{c: converted[c][i] for c in columns} for i in range(len(frame))]


def _codes(scorer: Any) -> dict[str, dict[str, float]]:
    codes = _CODES.get(scorer)
    if codes is None:
        codes = _CODES[scorer] = category_codes(scorer.features)
    return codes


_CODES: weakref.WeakKeyDictionary[Any, dict[str, dict[str, float]]] = weakref.WeakKeyDictionary()


def matrix_from_vectors(model: LoadedModel, vectors: Sequence[dict[str, Any]]) -> np.ndarray:
    """The model's input matrix straight from JSON vectors (no pandas on the request path).

    Same encoding as ``RenewalScorer.prepare`` (a test holds them equal): numbers as floats,
    booleans as 0/1, categories as their training codes (unknown → missing), None → missing.
    Values of the wrong type are refused naming the feature.
    """
    specs = model.scorer.features
    codes = _codes(model.scorer)
    X = np.full((len(vectors), len(specs)), np.nan, dtype=np.float64)
    for j, spec in enumerate(specs):
        name, kind = spec.name, spec.kind
        mapping = codes.get(name, {})
        for i, vector in enumerate(vectors):
            value = vector.get(name)
            if value is None:
                continue
            if kind == "category":
                X[i, j] = mapping.get(str(value), np.nan)
            elif isinstance(value, bool | int | float):
                X[i, j] = float(value)
            else:
                raise RenewalError(f"feature {name}: {value!r} is not a number")
    return X


def heuristic_from_vectors(model: LoadedModel, vectors: Sequence[dict[str, Any]]) -> np.ndarray:
    """The heuristic's probability (factor × activity_rate_3m, in [0, 1]) per vector."""
    rates = np.array(
        [np.nan if (r := v.get("activity_rate_3m")) is None else float(r) for v in vectors],
        dtype=np.float64,
    )
    return np.clip(model.scorer.heuristic_factor * rates, 0.0, 1.0)


def score_records(
    model: LoadedModel,
    vectors: Sequence[dict[str, Any]],
    settings: ServiceSettings,
    top_k: int,
) -> list[ScoredVector]:
    """Score JSON feature vectors; a feature a vector does not have is never a driver of it."""
    X = matrix_from_vectors(model, vectors)
    names = model.feature_names
    hidden = np.array([[name not in v for name in names] for v in vectors], dtype=bool)
    hidden = hidden.reshape(len(vectors), len(names))
    return score_matrix(model, X, heuristic_from_vectors(model, vectors), settings, top_k, hidden)


def score_matrix(
    model: LoadedModel,
    X: np.ndarray,
    heuristic: np.ndarray,
    settings: ServiceSettings,
    top_k: int,
    hidden: np.ndarray | None = None,
) -> list[ScoredVector]:
    """Probabilities, tiers and drivers in words for an encoded matrix."""
    explanations = model.scorer.explain(X, top_k=top_k, hidden=hidden)
    return [
        ScoredVector(
            probability=float(e.probability),
            heuristic_probability=json_value(heuristic[i]),
            risk_tier=settings.risk_tier(float(e.probability)),
            drivers=e.to_dict(),
        )
        for i, e in enumerate(explanations)
    ]


def score_vectors(
    model: LoadedModel,
    frame: pd.DataFrame,
    settings: ServiceSettings,
    top_k: int,
    hidden: np.ndarray | None = None,
) -> list[ScoredVector]:
    """Score every row of a feature frame (the batch job's path: one pandas encode)."""
    scorer = model.scorer
    X = scorer.prepare(frame)
    mask = np.zeros(X.shape, dtype=bool)
    absent = [j for j, name in enumerate(scorer.feature_names) if name not in frame.columns]
    mask[:, absent] = True
    if hidden is not None:
        mask |= hidden
    return score_matrix(model, X, scorer.heuristic(frame), settings, top_k, mask)
