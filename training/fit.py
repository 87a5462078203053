"""Fit every model on its part of the training set and score them all on the same test rows.

Which rows each step may see (the leak rules, tested):
- heuristic factor, logistic regression, LightGBM trees: the train part only;
- LightGBM's number of rounds (early stopping) and the calibrator: the calibration part only;
- the test part: scoring only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from training.baselines import fit_logistic, predict_logistic
from training.calibration import choose_calibrator
from training.config import TrainConfig
from training.dataset import LABEL, ORACLE, TrainingSet, check_parts
from training.heuristic import ACTIVITY_COLUMN, fit_factor, heuristic_probability
from training.lightgbm_model import fit_booster
from training.scorer import FeatureSpec, RenewalScorer, encode
from training.specs import feature_specs


@dataclass
class FittedModels:
    """The three fitted models and what was learned on the way."""

    specs: list[FeatureSpec]
    factor: float
    logistic: Pipeline
    scorer: RenewalScorer
    calibration_log_loss: dict[str, float] = field(default_factory=dict)
    best_iteration: int = 0


def fit_models(
    training_set: TrainingSet, config: TrainConfig, registry: Any = None
) -> FittedModels:
    """Heuristic factor, logistic baseline, LightGBM + calibrator → a RenewalScorer."""
    check_parts(training_set.rows, training_set.windows)  # also for a ready-made training set
    train = training_set.part("train")
    calibration = training_set.part("calibration")
    y_train = train[LABEL].to_numpy(dtype=int)
    y_calibration = calibration[LABEL].to_numpy(dtype=int)
    specs = feature_specs(train, training_set.feature_columns, registry)

    factor = fit_factor(train[ACTIVITY_COLUMN].to_numpy(dtype=float, na_value=np.nan), y_train)
    logistic = fit_logistic(train, y_train, specs, config.logistic_c, config.seed)

    X_train, X_calibration = encode(train, specs), encode(calibration, specs)
    booster = fit_booster(X_train, y_train, X_calibration, y_calibration, specs,
                          config.lightgbm, config.seed, config.train_threads)
    raw_calibration = booster.predict(X_calibration, raw_score=True,
                                      num_threads=config.train_threads)
    calibrator, scores = choose_calibrator(raw_calibration, y_calibration, config.calibration,
                                           config.calibration_folds, config.seed)
    metadata = {
        "heuristic_source_factor": 0.9,
        "windows": training_set.windows.as_dict(),
        "training_window": [training_set.windows.train_start.isoformat(),
                            training_set.windows.train_end.isoformat()],
        "horizon_days": config.horizon_days,
        "horizons_days": config.horizons_days,  # every lead time it was fitted on
        "calibration": calibrator.method,
        "best_iteration": booster.current_iteration(),
    }
    scorer = RenewalScorer(booster, specs, calibrator, factor, metadata, config.scoring_threads)
    return FittedModels(specs, factor, logistic, scorer, scores, booster.current_iteration())


def score_all(
    fitted: FittedModels, frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Every model's renewal probability on ``frame`` (oracle when the truth is known)."""
    out = {
        "lightgbm": fitted.scorer.predict(fitted.scorer.prepare(frame)),
        "logistic": predict_logistic(fitted.logistic, frame, fitted.specs),
        "heuristic": heuristic_probability(
            frame[ACTIVITY_COLUMN].to_numpy(dtype=float, na_value=np.nan), fitted.factor),
    }
    if ORACLE in frame.columns and frame[ORACLE].notna().all():
        out["oracle"] = frame[ORACLE].to_numpy(dtype=float)
    return out
