"""The domain's rule of thumb, fitted: renewal probability = factor × activity_rate_3m.

The source quotes factor 0.9 as an example "fitted per business"; we fit it on the training
part by maximum likelihood (the same loss the models are judged on), so the model has to beat
the rule at its best, not a strawman.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

SOURCE_FACTOR = 0.9
ACTIVITY_COLUMN = "activity_rate_3m"
# Bounds of the probability inside the likelihood only: a rule that says "0 %" for an account
# that then renews would otherwise have an infinite loss, whatever the factor.
_LIKELIHOOD_EPS = 1e-3


def heuristic_probability(activity_rate_3m: np.ndarray, factor: float) -> np.ndarray:
    """The rule itself: factor × activity rate, clipped to [0, 1]; NaN activity stays NaN."""
    rate = np.asarray(activity_rate_3m, dtype=float)
    return np.clip(factor * rate, 0.0, 1.0)


def fit_factor(activity_rate_3m: np.ndarray, renewed: np.ndarray) -> float:
    """Maximum-likelihood factor in [0.05, 2] for the clipped rule on the training rows."""
    rate = np.asarray(activity_rate_3m, dtype=float)
    label = np.asarray(renewed, dtype=float)
    known = ~np.isnan(rate)
    rate, label = rate[known], label[known]
    if rate.size == 0:
        return SOURCE_FACTOR

    def negative_log_likelihood(factor: float) -> float:
        p = np.clip(factor * rate, _LIKELIHOOD_EPS, 1 - _LIKELIHOOD_EPS)
        return -float(np.mean(label * np.log(p) + (1 - label) * np.log1p(-p)))

    result = minimize_scalar(negative_log_likelihood, bounds=(0.05, 2.0), method="bounded",
                             options={"xatol": 1e-6})
    return float(round(result.x, 6))
