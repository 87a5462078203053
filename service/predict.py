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
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from renewal.errors import RenewalError
from service.config import ServiceSettings
from service.model_store import LoadedModel
from training.scorer import category_codes, collector_paused

#: Columns that identify a vector rather than describe the account.
KEY_COLUMNS = ("account_id", "as_of")


class ScoredVector(NamedTuple):
    """One scored feature vector (a tuple: a batch makes 200,000 of them)."""

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
    num_threads: int | None = None,
) -> list[ScoredVector]:
    """Probabilities, tiers and drivers in words for an encoded matrix."""
    explanations = model.scorer.explain(X, top_k=top_k, hidden=hidden, num_threads=num_threads)
    probabilities = np.array([e.probability for e in explanations], dtype=np.float64)
    tiers = settings.risk_tiers(probabilities)
    heuristics = np.asarray(heuristic, dtype=np.float64)
    plain = np.where(np.isfinite(heuristics), heuristics, np.nan).tolist()
    with collector_paused():  # 200,000 acyclic results (see training.scorer.explain)
        return [
            ScoredVector(e.probability, None if h != h else h, tier, e.to_dict())
            for e, h, tier in zip(explanations, plain, tiers, strict=True)
        ]


@dataclass(frozen=True)
class EncodedFrame:
    """A feature frame as the model reads it: matrix, heuristic, features never to mention."""

    X: np.ndarray
    heuristic: np.ndarray
    hidden: np.ndarray

    def rows(self, start: int, stop: int) -> EncodedFrame:
        return EncodedFrame(
            self.X[start:stop], self.heuristic[start:stop], self.hidden[start:stop]
        )


def encode_frame(
    model: LoadedModel, frame: pd.DataFrame, hidden: np.ndarray | None = None
) -> EncodedFrame:
    """One pandas encode of a whole frame (columns it lacks are never drivers)."""
    scorer = model.scorer
    X = scorer.prepare(frame)
    mask = np.zeros(X.shape, dtype=bool)
    absent = [j for j, name in enumerate(scorer.feature_names) if name not in frame.columns]
    mask[:, absent] = True
    if hidden is not None:
        mask |= hidden
    return EncodedFrame(X, scorer.heuristic(frame), mask)


def score_encoded(
    model: LoadedModel,
    encoded: EncodedFrame,
    settings: ServiceSettings,
    top_k: int,
    num_threads: int | None = None,
) -> list[ScoredVector]:
    return score_matrix(
        model, encoded.X, encoded.heuristic, settings, top_k, encoded.hidden, num_threads
    )


def score_vectors(
    model: LoadedModel,
    frame: pd.DataFrame,
    settings: ServiceSettings,
    top_k: int,
    hidden: np.ndarray | None = None,
) -> list[ScoredVector]:
    """Score every row of a feature frame (the batch job's path: one pandas encode)."""
    return score_encoded(model, encode_frame(model, frame, hidden), settings, top_k)
