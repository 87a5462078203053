"""The four pictures a data scientist checks before promoting a model (PNG, Agg backend).

Each function writes one file atomically and returns its path; matplotlib is imported inside,
with the Agg backend, so nothing needs a display and importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from renewal.datadir import atomic_path
from training.evaluate import reliability_table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def reliability_diagram(y: np.ndarray, probabilities: Mapping[str, np.ndarray], path: Path) -> Path:
    """Observed renewal rate against mean predicted probability, 10 equal-count bins per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, p in probabilities.items():
        table = reliability_table(y, p)
        ax.plot(table["mean_probability"], table["observed_rate"], marker="o", label=name)
    ax.set(xlabel="mean predicted renewal probability", ylabel="observed renewal rate",
           title="Reliability (test window, 10 equal-count bins)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return _save(fig, path)


def feature_importance(names: Sequence[str], gain: np.ndarray, path: Path, top: int = 20) -> Path:
    """Total split gain per feature of the booster, largest first."""
    plt = _pyplot()
    order = np.argsort(gain)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.5))
    ax.barh([names[i] for i in order], np.asarray(gain)[order])
    ax.set(xlabel="total gain", title="LightGBM feature importance (gain)")
    return _save(fig, path)


def contribution_summary(
    names: Sequence[str], contributions: np.ndarray, path: Path, top: int = 15
) -> Path:
    """Distribution of each feature's contribution (probability points) over the test rows."""
    plt = _pyplot()
    impact = np.abs(contributions).mean(axis=0)
    order = np.argsort(impact)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    ax.boxplot([100 * contributions[:, i] for i in order], orientation="horizontal",
               showfliers=False,
               tick_labels=[names[i] for i in order])
    ax.axvline(0, color="grey", linewidth=1)
    ax.set(xlabel="contribution to renewal probability (points)",
           title="Per-feature contributions (test window)")
    return _save(fig, path)


def lift_curve(y: np.ndarray, probabilities: Mapping[str, np.ndarray], path: Path) -> Path:
    """Share of non-renewals caught when CS works accounts from the lowest probability up."""
    plt = _pyplot()
    churn = 1.0 - np.asarray(y, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5))
    share = np.arange(1, len(churn) + 1) / len(churn)
    for name, p in probabilities.items():
        caught = np.cumsum(churn[np.argsort(p, kind="stable")]) / max(churn.sum(), 1.0)
        ax.plot(share, caught, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
    ax.set(xlabel="share of accounts worked (riskiest first)",
           ylabel="share of non-renewals caught", title="Lift curve (test window)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right")
    return _save(fig, path)
