"""The classical baseline: logistic regression over the same features.

Median imputation with missing-value indicators (a missing survey or health input is itself a
signal), scaling, one-hot categories (unknown ones ignored at test time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.scorer import FeatureSpec


def logistic_frame(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> pd.DataFrame:
    """Plain dtypes for scikit-learn: floats for numbers and flags, objects for categories."""
    out = {}
    for spec in specs:
        column = frame[spec.name] if spec.name in frame.columns else pd.Series(
            np.nan, index=frame.index)
        if spec.kind == "category":
            out[spec.name] = column.astype("object").where(column.notna(), "(missing)")
        else:
            out[spec.name] = pd.to_numeric(column.astype("object"), errors="coerce").astype(float)
    return pd.DataFrame(out, index=frame.index)


def logistic_pipeline(specs: Sequence[FeatureSpec], c: float, seed: int) -> Pipeline:
    """Unfitted pipeline: impute + scale numbers, one-hot categories, L2 logistic regression."""
    numeric = [s.name for s in specs if s.kind != "category"]
    categorical = [s.name for s in specs if s.kind == "category"]
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler(),
            ), numeric),
            ("category", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
        ]
    )
    model = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    return Pipeline([("columns", columns), ("model", model)])


def fit_logistic(
    frame: pd.DataFrame, renewed: np.ndarray, specs: Sequence[FeatureSpec], c: float, seed: int
) -> Pipeline:
    """Fitted baseline on the training part."""
    return logistic_pipeline(specs, c, seed).fit(logistic_frame(frame, specs), renewed)


def predict_logistic(model: Pipeline, frame: pd.DataFrame, specs: Sequence[FeatureSpec]):
    """Renewal probabilities of the baseline."""
    return model.predict_proba(logistic_frame(frame, specs))[:, 1]
