"""The training job end to end: report, plots, determinism, the CLI, MLflow and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.config import LightGBMParams, TrainConfig
from training.dataset import LABEL
from training.registry import beats, clearly_better
from training.train import PLOTS, run_training

MODELS = {"lightgbm", "logistic", "heuristic", "oracle"}
METRICS = {"auc", "log_loss", "brier", "ece", "top_decile_lift"}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_dir, training_set, train_config):
    out = tmp_path_factory.mktemp("train-out")
    return run_training(data_dir, out, train_config, training_set=training_set)


def test_report_has_the_issue_keys_and_every_model(trained):
    report = json.loads((trained.out_dir / "report.json").read_text())
    for key in ("n_train", "n_calibration", "n_test", "test_window", "factor", "models"):
        assert key in report
    assert report["warnings"] == []  # 90 days' horizon within 3 months' calibration
    assert set(report["models"]) == MODELS
    for metrics in report["models"].values():
        assert set(metrics) == METRICS
    assert report["n_train"] + report["n_calibration"] + report["n_test"] == len(
        trained.training_set.rows)
    assert report["test_window"] == [trained.training_set.windows.test_start.isoformat(),
                                     trained.training_set.windows.test_end.isoformat()]
    assert report["source_factor"] == 0.9 and 0.05 <= report["factor"] <= 2
    tables = report["calibration_against_heuristic"]
    assert sum(r["n"] for r in tables["by_activity"]) == report["n_test"]
    assert sum(r["n"] for r in tables["by_cohort"]) == report["n_test"]
    assert report["data"]["fingerprint"]["sha256"]


def test_plots_are_png_files(trained):
    for name in PLOTS:
        assert (trained.out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_lightgbm_beats_the_heuristic_on_held_out_data(trained):
    models = trained.report["models"]
    assert models["lightgbm"]["log_loss"] < models["heuristic"]["log_loss"]
    assert models["lightgbm"]["brier"] < models["heuristic"]["brier"]
    assert models["lightgbm"]["auc"] > 0.75


def test_same_data_and_seed_give_the_same_metrics(trained, data_dir, train_config, tmp_path):
    again = run_training(data_dir, tmp_path / "again", train_config, validate=False)
    assert again.report["models"] == trained.report["models"]
    assert again.report["factor"] == trained.report["factor"]
    assert again.report["data"]["fingerprint"] == trained.report["data"]["fingerprint"]


def test_champion_rule_is_log_loss_then_auc():
    assert beats({"log_loss": 0.30, "auc": 0.80}, {"log_loss": 0.31, "auc": 0.90})
    assert not beats({"log_loss": 0.32, "auc": 0.99}, {"log_loss": 0.31, "auc": 0.80})
    assert beats({"log_loss": 0.31, "auc": 0.81}, {"log_loss": 0.31, "auc": 0.80})
    assert not beats({"log_loss": 0.31, "auc": 0.80}, {"log_loss": 0.31, "auc": 0.80})


def test_a_new_champion_must_be_better_beyond_the_test_windows_noise():
    """The paired bootstrap: the same model is no better; of two models that differ by noise
    only (their seeds; here each jitters the true probabilities), the lower log loss won half
    the time under the old rule and wins about 5 % of the time at 95 %; a model that knows
    more wins. Hand-checked: identical rows give a difference of 0 and a bound of 0, which is
    not below 0."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.2, 0.95, 1000)
    renewed = (rng.uniform(size=1000) < truth).astype(int)
    vague = np.full(1000, renewed.mean())
    same = clearly_better(renewed, truth, truth, 0.95)
    assert (same.difference, same.upper_bound, same.clearly_better) == (0.0, 0.0, False)
    switched = {"lower log loss": 0, "clearly better": 0}
    for _ in range(40):
        a, b = (np.clip(truth + rng.normal(0, 0.02, 1000), 0.01, 0.99) for _ in range(2))
        comparison = clearly_better(renewed, a, b, 0.95)
        switched["lower log loss"] += comparison.difference < 0
        switched["clearly better"] += comparison.clearly_better
    # Binomial(40, 0.5) and (40, 0.05): each bound fails with probability below 0.001.
    assert switched["lower log loss"] >= 10 and switched["clearly better"] <= 8, switched

    # Three rows per contract (three horizons, one label): resampled by account, the rows of
    # one account move together and noise still rarely wins; row by row it won often
    # (found by review: 15 of 60).
    accounts = np.repeat(np.arange(1000), 3)
    tripled = {"by row": 0, "by account": 0}
    for _ in range(40):
        a, b = (np.repeat(np.clip(truth + rng.normal(0, 0.02, 1000), 0.01, 0.99), 3)
                for _ in range(2))
        y3 = np.repeat(renewed, 3)
        tripled["by row"] += clearly_better(y3, a, b, 0.95).clearly_better
        tripled["by account"] += clearly_better(y3, a, b, 0.95, accounts).clearly_better
    assert tripled["by account"] <= 8 and tripled["by row"] > tripled["by account"], tripled
    knows_more = clearly_better(renewed, truth, vague, 0.95)
    assert knows_more.clearly_better and knows_more.difference < -0.03
    assert knows_more.difference < knows_more.upper_bound < 0
    assert not clearly_better(renewed, vague, truth, 0.95).clearly_better


def test_cli_trains_logs_registers_and_the_pyfunc_reproduces_predictions(
    data_dir, tracking_uri, tmp_path
):
    import mlflow

    from renewal.cli import build_app
    from training.pyfunc import model_input, score_frame

    out = tmp_path / "cli-out"
    result = CliRunner().invoke(build_app(), [
        "train", "--data", str(data_dir), "--out", str(out), "--tracking-uri", tracking_uri,
        "--experiment", "cli-test", "--no-validate",
    ])
    assert result.exit_code == 0, result.output
    assert "registered renewal v1 as champion" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["registration"]["alias"] == "champion"

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    run = mlflow.get_run(report["mlflow"]["run_id"])
    assert run.data.params["data.fingerprint"] == report["data"]["fingerprint"]["sha256"]
    assert "lightgbm.auc" in run.data.metrics and "heuristic.log_loss" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {*PLOTS, "report.json"} <= artifacts

    scorer = joblib.load(out / "scorer.joblib")
    test = pd.read_parquet(out / "test_predictions.parquet")
    loaded = mlflow.pyfunc.load_model("models:/renewal@champion")
    from training.dataset import build_training_set

    frame = build_training_set(data_dir, TrainConfig()).part("test")
    served = loaded.predict(model_input(scorer, frame))
    in_process = score_frame(scorer, frame)
    np.testing.assert_array_equal(served["probability"].to_numpy(),
                                  in_process["probability"].to_numpy())
    # Evaluation used predict() (the trees' raw score); the pyfunc explains, and its margin is
    # the contributions' sum: the same probabilities to the last floating-point digits.
    np.testing.assert_allclose(served["probability"].to_numpy(), test["p_lightgbm"].to_numpy(),
                               rtol=0, atol=1e-12)
    np.testing.assert_array_equal(served["heuristic_probability"].to_numpy(),
                                  in_process["heuristic_probability"].to_numpy())
    assert list(served["drivers"]) == list(in_process["drivers"])
    drivers = json.loads(served["drivers"].iloc[0])
    assert set(drivers) == {"risk_drivers", "protective_factors"}


def test_challenger_unless_it_beats_the_champion_and_promote_forces(
    data_dir, training_set, tracking_uri, tmp_path
):
    """The rule on real metrics: which of two settings wins is the data's business, not ours.

    Training A, then B, then A again on the same test window exercises both outcomes: whichever
    of A and B is worse is the challenger once, and the better one stays champion.
    """
    from mlflow import MlflowClient

    name = "renewal-rule"
    config_a = TrainConfig(lightgbm=LightGBMParams(max_rounds=3, early_stopping_rounds=1))
    config_b = TrainConfig()

    def train(config: TrainConfig, out: str, promote: bool = False):
        result = run_training(data_dir, tmp_path / out, config, training_set=training_set,
                              tracking_uri=tracking_uri, experiment="rule-test",
                              model_name=name, promote=promote)
        return result.registration, result.report["models"]["lightgbm"]

    first, metrics_a = train(config_a, "a")
    assert (first.alias, first.reason) == ("champion", "no champion yet")
    second, metrics_b = train(config_b, "b")
    # Lower log loss, and clearly lower: the bootstrap's bound below 0 (a 3-round model is far
    # worse, so B should win here; the rule, not this data set, is what is asserted).
    assert second.comparison is not None and second.comparison["confidence"] == 0.95
    b_wins = beats(metrics_b, metrics_a) and second.comparison["upper_bound"] < 0
    assert second.alias == ("champion" if b_wins else "challenger")
    assert second.champion_version == first.version
    # The old champion was re-scored on the new test window: the same window, the same metrics.
    assert second.champion_metrics["log_loss"] == pytest.approx(metrics_a["log_loss"])
    # A again either loses to B or ties with its own earlier version: a tie does not beat.
    third, _ = train(config_a, "a-again")
    assert third.alias == "challenger"
    assert third.champion_version == (second.version if b_wins else first.version)
    forced, _ = train(config_a, "forced", promote=True)
    assert (forced.alias, forced.reason) == ("champion", "forced by --promote")
    client = MlflowClient(tracking_uri)
    assert str(client.get_model_version_by_alias(name, "champion").version) == forced.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == third.version


def test_test_predictions_hold_every_model(trained):
    predictions = pd.read_parquet(trained.out_dir / "test_predictions.parquet")
    assert {f"p_{m}" for m in MODELS} <= set(predictions.columns)
    assert predictions[LABEL].isin([0, 1]).all()
    assert len(predictions) == trained.report["n_test"]


def test_out_dir_contains_a_loadable_scorer(trained):
    scorer = joblib.load(Path(trained.out_dir) / "scorer.joblib")
    X = scorer.prepare(trained.training_set.part("test"))
    np.testing.assert_array_equal(scorer.predict(X), trained.test_probabilities["lightgbm"])
