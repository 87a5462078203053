"""Stored JSON feature vectors → the model's input matrix (the scorer's own encoding).

Kept here so the workflows depend only on ``training.scorer`` (a stable contract), not on
the request-path helpers of ``service.predict``: numbers as floats, booleans as 0/1,
categories as their training codes (unknown → missing), None → missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from renewal.errors import RenewalError
from training.scorer import category_codes


def matrix(scorer: Any, vectors: Sequence[dict[str, Any]]) -> np.ndarray:
    """One row per vector, one column per model feature."""
    codes = category_codes(scorer.features)
    X = np.full((len(vectors), len(scorer.features)), np.nan, dtype=np.float64)
    for j, spec in enumerate(scorer.features):
        mapping = codes.get(spec.name, {})
        for i, vector in enumerate(vectors):
            value = vector.get(spec.name)
            if value is None:
                continue
            if spec.kind == "category":
                X[i, j] = mapping.get(str(value), np.nan)
            elif isinstance(value, bool | int | float):
                X[i, j] = float(value)
            else:
                raise RenewalError(f"feature {spec.name}: {value!r} is not a number")
    return X
