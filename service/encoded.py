"""Stored feature vectors encoded for the served model, kept on the cache entries.

``POST /v1/score`` with account ids scores each account's latest stored vector. Reading the
vectors back from the database and encoding them cost more than the model itself (issue 5:
within 1.5× of raw ``pred_contrib``), so each entry keeps its encoded row after the first
request. The row is tied to the model it was encoded for (a reload re-encodes on demand) and
to the entry (a re-scored account is a new entry, so a stale row is never served).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from service.cache import CachedScore
from service.model_store import LoadedModel
from service.predict import heuristic_from_vectors, matrix_from_vectors
from service.workflows.stale_inputs import stale_status


@dataclass(frozen=True, slots=True)
class EncodedRow:
    """One stored vector as the model sees it, plus what the response needs besides."""

    model_key: tuple[str, str, datetime]
    row: np.ndarray  # encoded features
    hidden: np.ndarray  # features the stored vector did not have (never drivers)
    heuristic: float
    inputs: dict[str, Any]  # stale-input status at the score's as_of


def model_key(model: LoadedModel) -> tuple[str, str, datetime]:
    return (model.uri, model.version, model.loaded_at)


def encode_entries(
    model: LoadedModel,
    entries: list[CachedScore],
    vectors: list[dict[str, Any]],
    stale_days: int,
) -> list[EncodedRow]:
    """Encode freshly read vectors and remember them on their entries."""
    key = model_key(model)
    X = matrix_from_vectors(model, vectors)
    heuristic = heuristic_from_vectors(model, vectors)
    names = model.feature_names
    rows = []
    for i, (entry, vector) in enumerate(zip(entries, vectors, strict=True)):
        encoded = EncodedRow(
            key, X[i], np.array([n not in vector for n in names], dtype=bool),
            float(heuristic[i]), stale_status(vector, entry.as_of, stale_days),
        )
        entry.encoded = encoded
        rows.append(encoded)
    return rows


def remembered(model: LoadedModel, entries: list[CachedScore]) -> list[EncodedRow | None]:
    """Each entry's encoded row if it was encoded for this model, else None."""
    key = model_key(model)
    return [
        e.encoded if e.encoded is not None and e.encoded.model_key == key else None
        for e in entries
    ]
