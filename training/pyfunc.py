"""The registered model: an MLflow pyfunc around a :class:`~training.scorer.RenewalScorer`.

Features in → calibrated probability, the fitted heuristic's probability and the top risk
drivers / protective factors as JSON. The scorer travels as a joblib artifact; the class itself
is imported from the installed ``renewal`` project (no ``code_paths``: copying the package into
the model would shadow the installed one), so the model loads wherever the project is installed,
including Spark workers (``mlflow.pyfunc.spark_udf``).
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from training.scorer import RenewalScorer

SCORER_ARTIFACT = "scorer"
OUTPUT_COLUMNS = ("probability", "heuristic_probability", "drivers")


def score_frame(scorer: RenewalScorer, frame: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    """The pyfunc's output for a frame of feature columns, computed in-process."""
    X = scorer.prepare(frame)
    hidden = np.zeros(X.shape, dtype=bool)
    absent = [j for j, name in enumerate(scorer.feature_names) if name not in frame.columns]
    hidden[:, absent] = True
    explanations = scorer.explain(X, top_k=top_k, hidden=hidden)
    return pd.DataFrame(
        {
            "probability": np.array([e.probability for e in explanations], dtype=np.float64),
            "heuristic_probability": scorer.heuristic(frame).astype(np.float64),
            "drivers": [json.dumps(e.to_dict(), separators=(",", ":")) for e in explanations],
        },
        index=frame.index,
    )


def model_input(scorer: RenewalScorer, frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns in the signature's types: float64 numbers/flags, str categories."""
    out = {}
    for spec in scorer.features:
        if spec.name not in frame.columns:
            continue
        column = frame[spec.name]
        if spec.kind == "category":
            out[spec.name] = column.astype("object").where(column.notna(), None)
        else:
            out[spec.name] = pd.Series(
                column.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
                if (pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean")
                else pd.to_numeric(column, errors="raise").astype("float64").to_numpy(
                    na_value=np.nan),
                index=frame.index,
            )
    return pd.DataFrame(out, index=frame.index)


def example_input(scorer: RenewalScorer, frame: pd.DataFrame) -> pd.DataFrame:
    """A one-row input example for the logged model that is no customer's row.

    MLflow stores the example as JSON beside the model (``input_example.json``,
    ``serving_input_example.json``), and the model goes wherever the registry is read. The
    first test rows used here were real accounts' vectors (ARR, CSM, CSM score, usage: found
    by audit). Each numeric feature is instead its median over ``frame`` rounded to two
    significant digits (an aggregate of many accounts, and a value the model scores like a
    typical one); categories are left missing, as an account without them is scored."""
    row: dict[str, Any] = {}
    for spec in scorer.features:
        if spec.kind == "category" or spec.name not in frame.columns:
            row[spec.name] = None
            continue
        values = pd.to_numeric(frame[spec.name].astype("Float64"), errors="coerce")
        median = values.median()
        row[spec.name] = (float("nan") if pd.isna(median)
                          else float(f"{float(median):.2g}"))
    example = pd.DataFrame([row])
    for spec in scorer.features:
        if spec.kind == "category":
            example[spec.name] = example[spec.name].astype("object")
    return example


class RenewalPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper; the scorer is loaded from its artifact in :meth:`load_context`."""

    def __init__(self, top_k: int = 3):
        self.top_k = top_k
        self.scorer: RenewalScorer | None = None

    def load_context(self, context: Any) -> None:
        import joblib

        self.scorer = joblib.load(context.artifacts[SCORER_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        if self.scorer is None:
            self.load_context(context)
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        top_k = int((params or {}).get("top_k", self.top_k))
        return score_frame(self.scorer, frame, top_k=top_k)


def model_signature(scorer: RenewalScorer):
    """Input: every feature as an optional column (absent optional tables are fine)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([
        ColSpec("string" if spec.kind == "category" else "double", spec.name, required=False)
        for spec in scorer.features
    ])
    outputs = Schema([
        ColSpec("double", "probability"),
        ColSpec("double", "heuristic_probability"),
        ColSpec("string", "drivers"),
    ])
    params = ParamSchema([ParamSpec("top_k", "long", 3)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
