"""Choose and fit the probability calibrator on the calibration window.

Choosing isotonic vs sigmoid by the log loss of calibrators fitted on the very same rows would
always favour isotonic (it can memorise the window). So the choice is cross-fitted: each method
is fitted on k-1 folds of the calibration window and scored on the held-out fold; the method
with the lower out-of-fold log loss is then refitted on the whole window.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from renewal.errors import RenewalError
from training.scorer import PROBABILITY_FLOOR, Calibrator

METHODS = ("isotonic", "sigmoid")


def fit_calibrator(method: str, margin: np.ndarray, renewed: np.ndarray) -> Calibrator:
    """Fit one calibrator on raw log-odds ``margin`` against the 0/1 outcome."""
    margin = np.asarray(margin, dtype=float)
    renewed = np.asarray(renewed, dtype=float)
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margin, renewed)
        return Calibrator(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )
    if method == "sigmoid":
        platt = LogisticRegression(C=1e4, max_iter=1000).fit(margin.reshape(-1, 1), renewed)
        return Calibrator("sigmoid", a=float(platt.coef_[0, 0]), b=float(platt.intercept_[0]))
    raise RenewalError(f"unknown calibration method {method!r}; choose one of {METHODS}")


def cross_fitted_log_loss(
    method: str, margin: np.ndarray, renewed: np.ndarray, folds: int, seed: int
) -> float:
    """Out-of-fold log loss of ``method`` within the calibration window."""
    margin = np.asarray(margin, dtype=float)
    renewed = np.asarray(renewed, dtype=int)
    out_of_fold = np.empty(len(margin))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, held_idx in splitter.split(margin.reshape(-1, 1), renewed):
        calibrator = fit_calibrator(method, margin[fit_idx], renewed[fit_idx])
        out_of_fold[held_idx] = calibrator.transform(margin[held_idx])
    return float(log_loss(renewed, out_of_fold, labels=[0, 1]))


def choose_calibrator(
    margin: np.ndarray, renewed: np.ndarray, method: str = "auto", folds: int = 5, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """The calibrator to ship and the cross-fitted log loss of each candidate method."""
    renewed = np.asarray(renewed, dtype=int)
    minority = int(min(renewed.sum(), len(renewed) - renewed.sum()))
    if minority < 2:
        raise RenewalError(
            f"the calibration window has {len(renewed)} rows but only {minority} of one outcome; "
            "widen it (calibration_months) or add data"
        )
    folds = max(2, min(folds, minority))
    candidates = METHODS if method == "auto" else (method,)
    scores = {m: cross_fitted_log_loss(m, margin, renewed, folds, seed) for m in candidates}
    chosen = min(scores, key=lambda m: (scores[m], m))
    calibrator = fit_calibrator(chosen, margin, renewed)
    if calibrator.method == "sigmoid" and calibrator.a <= 0 and method == "auto":
        # A falling sigmoid would invert the booster's ranking and its monotone constraints.
        calibrator = fit_calibrator("isotonic", margin, renewed)
    return calibrator, scores


__all__ = ["PROBABILITY_FLOOR", "choose_calibrator", "fit_calibrator", "cross_fitted_log_loss"]
