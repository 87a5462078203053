"""Small data must still give a real model, and a model worse than the heuristic is not served."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import LightGBMParams
from training.lightgbm_model import fit_booster, leaf_minimum
from training.scorer import FeatureSpec


@pytest.mark.parametrize(
    ("configured", "n_train", "expected"),
    [(100, 10_000, 100), (100, 2_000, 100), (100, 1_999, 99), (100, 193, 9), (100, 40, 5),
     (3, 10_000, 5)],
)
def test_leaf_minimum_is_a_twentieth_of_the_rows_at_most(configured, n_train, expected):
    assert leaf_minimum(configured, n_train) == expected


def test_a_small_training_set_still_splits():
    """193 rows with the default 100 rows per leaf would forbid every split: a constant model."""
    rng = np.random.default_rng(0)
    activity = rng.random((193 + 80, 1))
    renewed = (rng.random(len(activity)) < 0.1 + 0.85 * activity[:, 0]).astype(int)
    specs = [FeatureSpec("activity_rate_3m", risk="low", certain=True)]
    booster = fit_booster(activity[:193], renewed[:193], activity[193:], renewed[193:], specs,
                          LightGBMParams(), seed=1, num_threads=1)
    scores = booster.predict(np.array([[0.05], [0.95]]))
    assert booster.num_trees() > 0
    assert scores[1] > scores[0]


def test_a_model_that_does_not_beat_the_heuristic_is_not_promoted(
    data_dir, training_set, train_config, tmp_path
):
    from training.registry import register_model
    from training.train import run_training

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_training(data_dir, tmp_path / "out", train_config, training_set=training_set,
                          tracking_uri=uri, experiment="heuristic-rule", register=False)
    new = result.report["models"]["lightgbm"]
    better_heuristic = {**new, "log_loss": new["log_loss"] * 2, "brier": new["brier"] / 2}
    # No champion exists under this name, so no test rows are needed to re-score one.
    test = None
    registration = register_model(
        result.model_uri, new, test_features=test, renewed=np.array([]),
        name="renewal-heuristic-rule", heuristic_metrics=better_heuristic,
    )
    assert registration.alias == "challenger"
    assert registration.reason.startswith("does not beat the activity heuristic")
    forced = register_model(
        result.model_uri, new, test_features=test, renewed=np.array([]),
        name="renewal-heuristic-rule", heuristic_metrics=better_heuristic, promote=True,
    )
    assert forced.alias == "champion"


def test_the_heuristic_gate_needs_both_log_loss_and_brier():
    """The rule's 0 % for inactive accounts makes its log loss easy to beat: a model must be
    better on the Brier score too, and a tie is no win."""
    from training.registry import beats_heuristic

    rule = {"log_loss": 1.53, "brier": 0.120, "auc": 0.70}
    assert beats_heuristic({"log_loss": 0.45, "brier": 0.110, "auc": 0.8}, rule)
    assert not beats_heuristic({"log_loss": 0.45, "brier": 0.125, "auc": 0.8}, rule)
    assert not beats_heuristic({"log_loss": 0.45, "brier": 0.120, "auc": 0.8}, rule)
    assert not beats_heuristic({"log_loss": 1.60, "brier": 0.050, "auc": 0.9}, rule)
