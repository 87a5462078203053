"""Test factories: a tiny real LightGBM scorer, synthetic feature vectors, a seeded store.

The scorer is a real ``training.scorer.RenewalScorer`` around a real booster trained here in
a fraction of a second, so the service code under test runs exactly as with a trained model.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from service.config import ServiceSettings
from service.model_store import LoadedModel
from service.predict import score_vectors
from service.scoring import store_scores
from training.scorer import Calibrator, FeatureSpec, RenewalScorer

SPECS = (
    FeatureSpec(
        name="active_days_30d",
        kind="numeric",
        description="{value:.0f} active days in the last 30 days",
        unit="days",
        risk="low",
        certain=True,
        table="usage",
    ),
    FeatureSpec(
        name="activity_rate_3m",
        kind="numeric",
        description="active in {value:.0%} of the last 3 months",
        unit="share",
        risk="low",
        certain=True,
        table="usage",
    ),
    FeatureSpec(
        name="exec_sponsor_active",
        kind="bool",
        description="the executive sponsor uses the product",
        description_false="no active executive sponsor",
        risk="low",
        certain=True,
        table="health_inputs",
        optional_table=True,
    ),
    FeatureSpec(
        name="core_process_live",
        kind="bool",
        description="core business processes run in the product",
        description_false="core business processes are not live",
        risk="low",
        certain=True,
        table="health_inputs",
        optional_table=True,
    ),
    FeatureSpec(
        name="csm_score",
        kind="numeric",
        description="CSM rates the account {value:.0f}/5",
        risk="low",
        certain=True,
        table="health_inputs",
        optional_table=True,
    ),
    FeatureSpec(
        name="segment",
        kind="category",
        description="segment {value}",
        table="accounts",
        categories=("enterprise", "mid_market", "smb"),
    ),
)
FEATURE_NAMES = [s.name for s in SPECS]
CSMS = ("csm-a", "csm-b", "csm-c")
SEGMENTS = ("smb", "mid_market", "enterprise")


def training_matrix(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    active = rng.integers(0, 31, rows).astype(float)
    rate = np.clip(active / 30 + rng.normal(0, 0.1, rows), 0, 1)
    sponsor = rng.integers(0, 2, rows).astype(float)
    process = rng.integers(0, 2, rows).astype(float)
    score = rng.integers(1, 6, rows).astype(float)
    segment = rng.integers(0, 3, rows).astype(float)
    logit = -2.5 + 0.12 * active + 1.0 * sponsor + 0.8 * process + 0.3 * score + 0.3 * segment
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    X = np.column_stack([active, rate, sponsor, process, score, segment])
    return X, y


def tiny_scorer(seed: int = 0, rounds: int = 40) -> RenewalScorer:
    """A real monotone LightGBM model on six features, trained in well under a second."""
    X, y = training_matrix(3000, seed)
    data = lgb.Dataset(
        X, y, feature_name=FEATURE_NAMES, categorical_feature=[5], free_raw_data=False
    )
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "learning_rate": 0.1,
        "verbose": -1,
        "monotone_constraints": [1, 1, 1, 1, 1, 0],
        "seed": seed,
        "num_threads": 1,
        "min_data_in_leaf": 20,
    }
    booster = lgb.train(params, data, num_boost_round=rounds)
    return RenewalScorer(
        booster,
        SPECS,
        Calibrator("sigmoid"),
        heuristic_factor=0.9,
        metadata={"test_metrics": {"auc": 0.8}, "test_window": ["a", "b"]},
    )


def loaded(scorer: RenewalScorer, version: str = "1") -> LoadedModel:
    return LoadedModel(
        scorer=scorer,
        name="renewal",
        version=version,
        alias="champion",
        source="registry",
        uri=f"models:/renewal/{version}",
        card={},
    )


def feature_frame(n_accounts: int, as_of: date, seed: int = 1) -> pd.DataFrame:
    """Vectors shaped like features.vectors output: identity, stakes and model features."""
    rng = np.random.default_rng(seed)
    ids = [f"acc-{i:05d}" for i in range(n_accounts)]
    active = rng.integers(0, 31, n_accounts)
    frame = pd.DataFrame(
        {
            "account_id": pd.Series(ids, dtype="string"),
            "as_of": pd.Timestamp(as_of),
            "seats": rng.integers(3, 200, n_accounts).astype("int64"),
            "segment": pd.Series([SEGMENTS[i % 3] for i in range(n_accounts)], dtype="string"),
            "csm_id": pd.Series([CSMS[i % 3] for i in range(n_accounts)], dtype="string"),
            "arr": rng.integers(5, 200, n_accounts).astype(float) * 1000.0,
            "activated": pd.Series(rng.random(n_accounts) < 0.8, dtype="boolean"),
            "past_window_not_activated": pd.Series(False, index=range(n_accounts), dtype="boolean"),
            "active_days_30d": active.astype("int64"),
            "activity_rate_3m": np.clip(active / 30, 0, 1),
            "exec_sponsor_active": pd.Series(rng.random(n_accounts) < 0.5, dtype="boolean"),
            "core_process_live": pd.Series(rng.random(n_accounts) < 0.5, dtype="boolean"),
            "csm_score": pd.Series(rng.integers(1, 6, n_accounts), dtype="float64"),
            "health_input_age_days": pd.Series(rng.integers(0, 120, n_accounts), dtype="float64"),
            "health_input_stale": pd.Series(False, index=range(n_accounts), dtype="boolean"),
        }
    )
    frame["past_window_not_activated"] = ~frame["activated"]
    return frame


def seed_scores(
    factory: Any,
    model: LoadedModel,
    frame: pd.DataFrame,
    as_of: date,
    settings: ServiceSettings | None = None,
) -> list[Any]:
    settings = settings or ServiceSettings()
    scored = score_vectors(model, frame, settings, top_k=3)
    store_scores(factory, frame, scored, model, as_of, "/nonexistent-data-dir")
    return scored


def seed_history(factory: Any, model: LoadedModel, n_accounts: int, latest: date) -> pd.DataFrame:
    """Two runs 30 days apart (the older with more activity), returns the latest frame."""
    older = feature_frame(n_accounts, latest - timedelta(days=30), seed=2)
    older["active_days_30d"] = np.minimum(older["active_days_30d"] + 8, 30)
    seed_scores(factory, model, older, latest - timedelta(days=30))
    frame = feature_frame(n_accounts, latest, seed=2)
    seed_scores(factory, model, frame, latest)
    return frame
