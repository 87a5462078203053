"""How good is a renewal probability: ranking, loss, calibration, and the lift CS teams feel.

- ``ece``: expected calibration error over 10 equal-count bins of the predicted probability.
- ``top_decile_lift``: CS works the riskiest accounts first, so the "top decile" is the 10 % of
  accounts with the LOWEST renewal probability; lift = their non-renewal rate / the overall
  non-renewal rate (1 = no better than random, 10 = every churner in that decile).
- Log loss is computed on probabilities clipped to [0.001, 0.999] for every model alike, so the
  heuristic's "0 %" for an inactive account that still renews costs a large, finite amount.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from renewal.errors import RenewalError

LOG_LOSS_EPS = 1e-3
N_BINS = 10


def equal_count_bins(p: np.ndarray, n_bins: int = N_BINS) -> list[np.ndarray]:
    """Indices of ``n_bins`` bins of (nearly) equal size, in order of predicted probability."""
    order = np.argsort(np.asarray(p, dtype=float), kind="stable")
    return [b for b in np.array_split(order, n_bins) if b.size]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """Count-weighted mean |observed rate - mean probability| over equal-count bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(sum(b.size * abs(y[b].mean() - p[b].mean()) for b in equal_count_bins(p, n_bins))
                 / len(y))


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Non-renewal rate among the 10 % lowest probabilities / overall non-renewal rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    churn = 1.0 - y
    if churn.sum() == 0:
        return float("nan")
    n_top = max(1, int(round(0.1 * len(y))))
    riskiest = np.argsort(p, kind="stable")[:n_top]
    return float(churn[riskiest].mean() / churn.mean())


def model_metrics(y: np.ndarray, p: np.ndarray, model: str = "model") -> dict[str, float]:
    """auc, log_loss, brier, ece, top_decile_lift of one model on one set of rows."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    if np.isnan(p).any():
        raise RenewalError(f"{model}: {int(np.isnan(p).sum())} of {len(p)} probabilities are NaN")
    if len(np.unique(y)) < 2:
        raise RenewalError(f"{model}: the evaluation rows hold only one outcome ({len(y)} rows)")
    clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
    }


def reliability_table(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Per equal-count bin: mean predicted probability, observed renewal rate, count."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    rows = [
        {"bin": i, "mean_probability": p[b].mean(), "observed_rate": y[b].mean(), "n": b.size}
        for i, b in enumerate(equal_count_bins(p, n_bins))
    ]
    return pd.DataFrame(rows)


def activity_bins(activity_rate_3m: pd.Series) -> pd.Series:
    """Deciles of activity_rate_3m; when it has <= 10 distinct values, each value is its own bin.

    activity_rate_3m is months active out of 3, so it usually takes only 0, 1/3, 2/3, 1: equal-count
    deciles would split identical accounts across bins.
    """
    rate = activity_rate_3m.astype("float64")
    if rate.nunique(dropna=True) <= N_BINS:
        return rate.round(4).map(lambda v: "missing" if pd.isna(v) else f"{v:.2f}")
    bins = pd.qcut(rate, N_BINS, duplicates="drop")
    return bins.astype("string").fillna("missing")


def calibration_against_heuristic(
    frame: pd.DataFrame, y: np.ndarray, p_model: np.ndarray, p_heuristic: np.ndarray
) -> dict[str, list[dict]]:
    """The table that shows where the model and the rule of thumb disagree with reality.

    ``frame`` needs ``activity_rate_3m``, ``end_date`` and optionally ``segment``. Per activity
    bin and per cohort (segment, renewal quarter): count, observed renewal rate, mean model
    probability, mean heuristic probability.
    """
    data = pd.DataFrame({
        "renewed": np.asarray(y, dtype=float),
        "lightgbm": np.asarray(p_model, dtype=float),
        "heuristic": np.asarray(p_heuristic, dtype=float),
        "activity_bin": activity_bins(frame["activity_rate_3m"]).to_numpy(),
        "segment": (frame["segment"].astype("string").fillna("(none)").to_numpy()
                    if "segment" in frame.columns else "(all)"),
        "renewal_quarter": pd.PeriodIndex(pd.to_datetime(frame["end_date"]), freq="Q")
        .astype(str).to_numpy(),
    })

    def summarise(keys: list[str]) -> list[dict]:
        grouped = data.groupby(keys, sort=True, observed=True).agg(
            n=("renewed", "size"),
            observed_rate=("renewed", "mean"),
            mean_lightgbm_probability=("lightgbm", "mean"),
            mean_heuristic_probability=("heuristic", "mean"),
        ).reset_index()
        return [
            {k: (round(float(v), 6) if isinstance(v, float | np.floating) else
                 int(v) if isinstance(v, int | np.integer) else str(v))
             for k, v in row.items()}
            for row in grouped.to_dict(orient="records")
        ]

    return {
        "by_activity": summarise(["activity_bin"]),
        "by_cohort": summarise(["segment", "renewal_quarter"]),
    }


def group_metrics(
    groups: np.ndarray, y: np.ndarray, probabilities: dict[str, np.ndarray], *,
    ece: bool = False,
) -> dict[Any, dict]:
    """Per value of ``groups`` (one per row; in sorted order): rows, observed renewal rate and
    each model's log loss, Brier, AUC, mean probability (and ECE when ``ece``).

    AUC is None for a group with one outcome only (every contract renewed, say).
    """
    groups = np.asarray(groups)
    y = np.asarray(y, dtype=int)
    out: dict[Any, dict] = {}
    for group in sorted(set(groups.tolist())):
        rows = groups == group
        models = {name: _group_model_metrics(y[rows], np.asarray(p, dtype=float)[rows], ece)
                  for name, p in probabilities.items()}
        out[group] = {"n": int(rows.sum()), "observed_rate": float(y[rows].mean()),
                      "models": models}
    return out


def _group_model_metrics(y: np.ndarray, p: np.ndarray, ece: bool) -> dict[str, float | None]:
    metrics: dict[str, float | None] = {
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
        "log_loss": float(log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS),
                                   labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
    }
    if ece:
        metrics["ece"] = expected_calibration_error(y, p)
    metrics["mean_probability"] = float(p.mean())
    return metrics


def segment_metrics(
    frame: pd.DataFrame, y: np.ndarray, probabilities: dict[str, np.ndarray]
) -> dict[str, dict]:
    """Per segment: rows, observed renewal rate and each model's log loss, Brier, AUC and mean
    probability, so a model that wins overall but loses on enterprise accounts shows."""
    segments = (frame["segment"].astype("string").fillna("(none)").to_numpy()
                if "segment" in frame.columns else np.full(len(frame), "(all)"))
    return {str(k): v for k, v in group_metrics(segments, y, probabilities).items()}


def horizon_metrics(
    frame: pd.DataFrame, y: np.ndarray, probabilities: dict[str, np.ndarray],
    primary_horizon_days: int, primary_only: tuple[str, ...] = ("oracle",),
) -> dict[str, dict]:
    """Per snapshot horizon (``frame["horizon_days"]``; a frame without it is all primary):
    rows, observed rate and each model's AUC, log loss, Brier, ECE and mean probability, so
    calibration is measured at every lead time the model was trained for, not only overall.

    Models in ``primary_only`` (the simulator's oracle: what was knowable at the 90-day
    decision day) are scored on the primary horizon's rows only. Keys are the days as text.
    """
    days = (frame["horizon_days"].to_numpy(dtype=int) if "horizon_days" in frame.columns
            else np.full(len(frame), primary_horizon_days))
    models = {k: v for k, v in probabilities.items() if k not in primary_only}
    out = group_metrics(days, y, models, ece=True)
    primary = days == primary_horizon_days
    if primary_horizon_days in out:
        for name in (k for k in probabilities if k in primary_only):
            out[primary_horizon_days]["models"][name] = _group_model_metrics(
                np.asarray(y, dtype=int)[primary],
                np.asarray(probabilities[name], dtype=float)[primary], ece=True)
    return {str(k): v for k, v in out.items()}


def horizon_metric_names(horizons: dict[str, dict]) -> dict[str, float]:
    """report.json's ``horizons`` as MLflow metrics ``horizon.<days>.<model>.<metric>`` (and
    ``horizon.<days>.n``, ``.observed_rate``), as segments are logged (days are plain keys)."""
    metrics: dict[str, float] = {}
    for days, values in horizons.items():
        key = f"horizon.{days}"
        metrics[f"{key}.n"] = values["n"]
        metrics[f"{key}.observed_rate"] = values["observed_rate"]
        for model, model_values in values["models"].items():
            metrics.update({f"{key}.{model}.{name}": value
                            for name, value in model_values.items()
                            if value is not None and np.isfinite(value)})
    return metrics
