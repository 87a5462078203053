"""The production model: one LightGBM booster, monotone where the registry is certain.

One booster, not a fold ensemble: its exact per-feature contributions (``pred_contrib``) are the
explanations the service shows, and they only add up for a single model.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np

from training.config import LightGBMParams
from training.scorer import FeatureSpec


def leaf_minimum(configured: int, n_train: int) -> int:
    """At most a twentieth of the training rows per leaf (at least 5).

    The configured minimum suits thousands of rows; on a small data set it would forbid every
    split and leave a constant model.
    """
    return max(5, min(configured, n_train // 20))


def booster_params(
    specs: Sequence[FeatureSpec], params: LightGBMParams, seed: int, num_threads: int,
    n_train: int | None = None,
) -> dict:
    """LightGBM parameters: deterministic for a seed, monotone constraints from the specs."""
    min_leaf = params.min_data_in_leaf
    if n_train is not None:
        min_leaf = leaf_minimum(min_leaf, n_train)
    out = {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": min_leaf,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "cat_smooth": 20.0,
        "min_data_per_group": min(50, min_leaf),
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": num_threads,
        "verbosity": -1,
    }
    if params.monotone and any(s.monotone for s in specs):
        out["monotone_constraints"] = [s.monotone for s in specs]
        out["monotone_constraints_method"] = "intermediate"
    return out


def fit_booster(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    specs: Sequence[FeatureSpec],
    params: LightGBMParams,
    seed: int,
    num_threads: int = 0,
) -> lgb.Booster:
    """Train on the training part, stop early on the calibration window; keep the best rounds."""
    names = [s.name for s in specs]
    categorical = [i for i, s in enumerate(specs) if s.kind == "category"]
    train_set = lgb.Dataset(
        X_train, label=y_train, feature_name=names, categorical_feature=categorical,
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
    booster = lgb.train(
        booster_params(specs, params, seed, num_threads, n_train=len(y_train)),
        train_set,
        num_boost_round=params.max_rounds,
        valid_sets=[valid_set],
        valid_names=["calibration"],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    # Re-load with only the kept rounds so every later predict/pred_contrib uses exactly them.
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
