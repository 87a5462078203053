"""Copy the feature registry's knowledge into the model: kinds, words, risk directions.

The scorer carries these specs inside the model artifact, so the model explains itself the same
way wherever it is loaded, even if the registry changes later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from renewal.tables import OPTIONAL_TABLES
from training.scorer import FeatureSpec


def _kind(feature: Any, column: pd.Series) -> str:
    kind = getattr(feature, "kind", None)
    if kind in ("numeric", "bool", "category"):
        return kind
    if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
        return "bool"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    return "category"


def feature_specs(
    frame: pd.DataFrame, names: Sequence[str], registry: Any = None
) -> list[FeatureSpec]:
    """One spec per model feature, categories taken from ``frame`` (the training part).

    ``registry`` maps name → registry Feature (default: ``features.registry.FEATURES``).
    """
    if registry is None:
        from features.registry import FEATURES

        registry = FEATURES
    by_name = registry if isinstance(registry, dict) else {f.name: f for f in registry}
    specs = []
    for name in names:
        feature = by_name.get(name)
        column = frame[name] if name in frame.columns else pd.Series(dtype="float64")
        kind = _kind(feature, column)
        table = getattr(feature, "table", None)
        categories: tuple[str, ...] = ()
        if kind == "category":
            categories = tuple(sorted(str(v) for v in column.dropna().unique()))
        specs.append(FeatureSpec(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            description=getattr(feature, "description", "") or "",
            description_false=getattr(feature, "description_false", None),
            unit=getattr(feature, "unit", None),
            risk=getattr(feature, "risk", None),
            certain=bool(getattr(feature, "certain", False)),
            table=table,
            optional_table=table in OPTIONAL_TABLES,
            categories=categories,
        ))
    return specs
