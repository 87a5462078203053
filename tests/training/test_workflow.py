"""The data scientist's loop after training: where the Default experiment puts artifacts, what
a run logs per segment, and `renewal models` (list, promote, rollback, compare) with its errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from renewal.errors import ConfigError
from training.config import LightGBMParams, TrainConfig
from training.train import run_training

QUICK = TrainConfig(lightgbm=LightGBMParams(max_rounds=20, early_stopping_rounds=5))


def test_a_new_store_keeps_default_experiment_artifacts_beside_it(tmp_path, monkeypatch):
    """`--experiment Default` wrote to ./mlruns/0 of whatever directory first created the store:
    MLflow fixes the Default experiment's location when it creates the tables."""
    from mlflow import MlflowClient

    from training.tracking import artifact_root, check_tracking

    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    check_tracking(uri, "Default", register=False)
    location = MlflowClient(uri).get_experiment("0").artifact_location
    assert Path(location.removeprefix("file://")) == artifact_root(uri) / "0"
    assert list(here.iterdir()) == []


def test_an_experiment_far_from_the_store_is_warned_about(
    data_dir, training_set, tmp_path, monkeypatch
):
    """A store created elsewhere (`mlflow ui`, a notebook) has Default at <its cwd>/mlruns/0: the
    run still works, but the user is told where the model went and how to avoid it."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    monkeypatch.chdir(notebook)
    MlflowClient(uri).search_experiments()  # the store created the way MLflow's own tools do
    monkeypatch.chdir(tmp_path)
    result = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                          tracking_uri=uri, experiment="Default", register=False)
    warnings = [w for w in result.report["warnings"] if "Default" in w]
    assert len(warnings) == 1 and str(notebook / "mlruns" / "0") in warnings[0]
    assert "--experiment" in warnings[0]
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert warnings[0] in on_disk["warnings"]
    # An experiment this project created sits beside the store: no warning.
    again = run_training(data_dir, tmp_path / "out2", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="beside", register=False)
    assert not [w for w in again.report["warnings"] if "keeps its artifacts" in w]


def test_a_plain_path_as_tracking_uri_says_how_to_write_it(tmp_path):
    """MLflow read `mlflow.db` as a file store and answered with a migration notice."""
    from training.tracking import check_tracking

    with pytest.raises(ConfigError, match="sqlite:///mlflow.db"):
        check_tracking("mlflow.db", "renewal")


def test_segment_metrics_cover_every_model_and_survive_a_one_outcome_segment():
    from training.evaluate import segment_metrics

    frame = pd.DataFrame({"segment": ["smb", "smb", "smb", "enterprise", "enterprise"]})
    y = np.array([1, 0, 1, 1, 1])
    probabilities = {"lightgbm": np.array([0.9, 0.2, 0.8, 0.7, 0.9]),
                     "heuristic": np.array([0.5, 0.5, 0.5, 0.5, 0.5])}
    out = segment_metrics(frame, y, probabilities)
    assert out["smb"]["n"] == 3 and out["smb"]["models"]["lightgbm"]["auc"] == 1.0
    assert out["enterprise"]["models"]["lightgbm"]["auc"] is None  # every contract renewed
    assert out["enterprise"]["models"]["heuristic"]["brier"] == pytest.approx(0.25)
    assert out["smb"]["observed_rate"] == pytest.approx(2 / 3)


def test_a_run_logs_per_segment_metrics_and_the_calibration_table(
    data_dir, training_set, tracking_uri, tmp_path
):
    """Only overall metrics were logged: a model worse on enterprise accounts looked fine, and
    the calibration against the heuristic was buried in report.json."""
    from mlflow import MlflowClient

    result = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                          tracking_uri=tracking_uri, experiment="segments", register=False)
    segments = result.report["segments"]
    expected = set(training_set.part("test")["segment"].astype(str))
    assert set(segments) == expected
    client = MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    for segment, values in segments.items():
        assert run.data.metrics[f"segment.{segment}.n"] == values["n"]
        for model in ("lightgbm", "logistic", "heuristic"):
            assert run.data.metrics[f"segment.{segment}.{model}.log_loss"] == pytest.approx(
                values["models"][model]["log_loss"])
            assert f"segment.{segment}.{model}.brier" in run.data.metrics
        assert run.data.tags[f"segment_name.{segment}"] == segment
    # Per horizon too (one here, the primary): the horizon report reaches MLflow.
    assert run.data.metrics["horizon.90.n"] == result.report["horizons"]["90"]["n"]
    assert run.data.metrics["horizon.90.lightgbm.brier"] == pytest.approx(
        result.report["horizons"]["90"]["models"]["lightgbm"]["brier"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert "calibration_against_heuristic.json" in artifacts


@pytest.fixture(scope="module")
def registry(data_dir, training_set, tmp_path_factory):
    """A store with two versions: v1 champion by training, v2 forced champion by --promote."""
    tmp = tmp_path_factory.mktemp("models-cli")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    runs = [run_training(data_dir, tmp / f"out{i}", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="models-cli", model_name="m",
                         promote=i == 2)
            for i in (1, 2)]
    return uri, runs


def test_models_list_shows_versions_aliases_and_metrics(registry, cli):
    uri, runs = registry
    result = cli("models", "list", "--tracking-uri", uri, "--name", "m", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["version"] for r in rows] == ["1", "2"]
    assert [r["run_id"] for r in rows] == [r.run_id for r in runs]
    assert "champion" in rows[1]["aliases"]
    # created_at in ISO 8601 UTC beside created, MLflow's epoch milliseconds (kept: scripts
    # read it).
    from datetime import UTC, datetime, timedelta
    created = datetime.fromisoformat(rows[0]["created_at"])
    assert created.tzinfo is not None and abs(datetime.now(UTC) - created) < timedelta(hours=1)
    assert abs(rows[0]["created"] / 1000 - created.timestamp()) < 1
    assert rows[0]["log_loss"] == pytest.approx(runs[0].report["models"]["lightgbm"]["log_loss"])
    table = cli("models", "list", "--tracking-uri", uri, "--name", "m")
    assert table.exit_code == 0 and "forced by --promote" in table.output


def test_promote_and_rollback_move_the_champion(registry, cli):
    """There was no command to promote or roll back a version: only the MLflow UI, which does
    not record what the alias pointed at before."""
    from mlflow import MlflowClient

    uri, _ = registry
    client = MlflowClient(uri, uri)

    def champion() -> str:
        return str(client.get_model_version_by_alias("m", "champion").version)

    assert champion() == "2"
    result = cli("models", "rollback", "--tracking-uri", uri, "--name", "m")
    assert result.exit_code == 0, result.output
    assert champion() == "1" and "v1 (was v2)" in result.output
    result = cli("models", "promote", "v2", "--tracking-uri", uri, "--name", "m")
    assert result.exit_code == 0, result.output
    assert champion() == "2"
    result = cli("models", "rollback", "--tracking-uri", uri, "--name", "m")
    assert result.exit_code == 0 and champion() == "1"
    # A challenger promoted by hand stops being the challenger.
    client.set_registered_model_alias("m", "challenger", "2")
    assert cli("models", "promote", "2", "--tracking-uri", uri, "--name", "m").exit_code == 0
    aliases = client.get_registered_model("m").aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "2"}
    assert cli("models", "rollback", "--tracking-uri", uri, "--name", "m").exit_code == 0
    assert champion() == "1"
    # Another alias, e.g. a trial the service is pointed at with RENEWAL_MODEL_ALIAS.
    result = cli("models", "promote", "2", "--alias", "trial", "--tracking-uri", uri,
                 "--name", "m")
    assert result.exit_code == 0, result.output
    assert str(client.get_model_version_by_alias("m", "trial").version) == "2"


@pytest.mark.parametrize(("args", "message"), [
    (["models", "promote", "9"], "has no version '9'; its versions: 1, 2"),
    (["models", "rollback", "--alias", "nope"], "has no alias 'nope'"),
    (["models", "list", "--name", "nobody"], "no registered model 'nobody'"),
])
def test_models_errors_name_what_exists(registry, cli, args, message):
    uri, _ = registry
    extra = [] if "--name" in args else ["--name", "m"]
    result = cli(*args, "--tracking-uri", uri, *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_mistyped_store_is_refused_not_created(tmp_path, cli):
    missing = tmp_path / "typo" / "mlflow.db"
    result = cli("models", "list", "--tracking-uri", f"sqlite:///{missing}")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not missing.parent.exists()


def test_compare_two_runs_side_by_side(registry, cli):
    uri, runs = registry
    a, b = runs[0].run_id, runs[1].run_id
    result = cli("models", "compare", a, b, "--tracking-uri", uri, "--json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.output)
    assert compared["same_test_window"] is True
    assert compared["metrics"]["lightgbm.log_loss"]["a"] == pytest.approx(
        runs[0].report["models"]["lightgbm"]["log_loss"])
    assert compared["features_only_in_a"] == [] and compared["features_only_in_b"] == []
    assert compared["segment_names"] == {s: s for s in runs[0].report["segments"]}
    table = cli("models", "compare", a, b, "--tracking-uri", uri)
    assert table.exit_code == 0 and "lightgbm.log_loss" in table.output
    unknown = cli("models", "compare", a, "0123456789abcdef", "--tracking-uri", uri)
    assert unknown.exit_code == 2 and "no MLflow run '0123456789abcdef'" in unknown.output


def test_segment_names_outside_ascii_get_keys_of_their_own(tmp_path):
    """Every character outside [A-Za-z0-9_- /] became `_`: "大客户" and "中小企业" both logged as
    `segment._.*` and one segment's metrics silently overwrote the other's."""
    import mlflow
    from mlflow import MlflowClient

    from training.tracking import (
        configure,
        segment_keys,
        segment_metric_names,
        segment_name_tags,
    )
    from training.versions import compare_runs

    def values(n: int) -> dict:
        return {"n": n, "observed_rate": n / 100,
                "models": {"lightgbm": {"log_loss": n / 1000, "auc": None}}}

    names = ["大客户", "中小企业", "Großkunden", "smb", "mid-market", "a.b", "a_b", "a//b"]
    segments = {name: values(10 * (i + 1)) for i, name in enumerate(names)}
    keys = segment_keys(segments)
    assert len(set(keys.values())) == len(names)
    assert {name: keys[name] for name in ("smb", "mid-market", "a_b")} == {
        "smb": "smb", "mid-market": "mid-market", "a_b": "a_b"}  # existing keys unchanged
    assert keys["大客户"] == "_4af71933" and keys["Großkunden"] == "Gro_kunden_7c798437"
    assert segment_keys(["大客户"]) == {"大客户": "_4af71933"}  # the name alone decides

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    configure(uri, "segment-keys")
    with mlflow.start_run() as run:
        mlflow.log_metrics(segment_metric_names(segments))
        mlflow.set_tags(segment_name_tags(segments))
    logged = MlflowClient(uri).get_run(run.info.run_id).data.metrics
    for name, key in keys.items():
        assert logged[f"segment.{key}.n"] == segments[name]["n"]
        assert logged[f"segment.{key}.lightgbm.log_loss"] == pytest.approx(
            segments[name]["models"]["lightgbm"]["log_loss"])
    compared = compare_runs(uri, run.info.run_id, run.info.run_id)
    assert compared["segment_names"] == {key: name for name, key in keys.items()}


def test_a_failure_inside_the_registration_puts_the_alias_back(
    data_dir, training_set, tmp_path, monkeypatch
):
    """register_model moved the alias and then wrote its tags: a tag write failing (store gone,
    SIGTERM) left champion on a version of a FAILED run, and nothing undid a registration that
    register_model never returned."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_training(data_dir, tmp_path / "out1", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="inner", model_name="inner")
    assert first.registration.alias == "champion"
    real_set_tag = MlflowClient.set_model_version_tag
    stop: list[BaseException] = []

    def failing_on_the_reason(self, name, version, key, value):
        if key == "alias_reason":
            raise stop[0]
        return real_set_tag(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", failing_on_the_reason)
    client = MlflowClient(uri, uri)
    # A champion replaced by --promote: the alias goes back to it.
    stop[:] = [OSError("store gone")]
    with pytest.raises(Exception, match="store gone"):
        run_training(data_dir, tmp_path / "out2", QUICK, training_set=training_set,
                     tracking_uri=uri, experiment="inner", model_name="inner", promote=True)
    assert str(client.get_model_version_by_alias("inner", "champion").version) == "1"
    assert [str(v.version) for v in client.search_model_versions("name = 'inner'")] == ["1"]
    # No champion before (a first version), stopped by an interrupt: no alias, no version.
    stop[:] = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        run_training(data_dir, tmp_path / "out3", QUICK, training_set=training_set,
                     tracking_uri=uri, experiment="inner", model_name="fresh")
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("fresh", "champion")
    assert client.search_model_versions("name = 'fresh'") == []


def test_a_rollback_is_a_recorded_move_so_a_second_one_undoes_it(registry, cli):
    """rollback recorded nothing: a mistaken rollback could not be rolled back, and rolling
    back onto the challenger's version left it holding both aliases."""
    import mlflow
    from mlflow import MlflowClient

    uri, runs = registry
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for run in runs:  # a model of its own: the other tests move m's aliases
        mlflow.register_model(run.model_uri, "toggle")
    client = MlflowClient(uri, uri)

    def aliases() -> dict[str, str]:
        found = client.get_registered_model("toggle").aliases
        return {alias: str(version) for alias, version in found.items()}

    def models(*args: str):
        result = cli("models", *args, "--tracking-uri", uri, "--name", "toggle")
        assert result.exit_code == 0, result.output
        return result

    models("promote", "1")
    models("promote", "2")
    assert models("rollback").output.strip().endswith("v1 (was v2)")
    assert client.get_model_version("toggle", "1").tags["previous_champion"] == "2"
    assert client.get_model_version("toggle", "1").tags["alias_reason"] == "rolled back from v2"
    assert models("rollback").output.strip().endswith("v2 (was v1)")  # the mistake undone
    assert aliases() == {"champion": "2"}
    # Rolling back onto the challenger's version: it is no longer the challenger.
    client.set_registered_model_alias("toggle", "challenger", "1")
    models("rollback")
    assert aliases() == {"champion": "1"}
    # A record left from an earlier time is not one: the alias was removed in between.
    client.delete_registered_model_alias("toggle", "champion")
    models("promote", "2")
    refused = cli("models", "rollback", "--tracking-uri", uri, "--name", "toggle")
    assert refused.exit_code == 2 and "no earlier holder is recorded" in refused.output


def test_too_few_rows_says_how_many_each_part_has_and_what_to_do():
    """The message ended on a Python dict of windows and gave no way out."""
    from renewal.errors import RenewalError
    from training.dataset import assign_parts, check_parts, split_windows

    ends = pd.Series(pd.to_datetime(
        ["2024-01-15"] * 5 + ["2025-07-15"] * 30 + ["2025-11-15"] * 30))
    windows = split_windows(ends, TrainConfig())
    rows = pd.DataFrame({"part": assign_parts(ends, windows),
                         "renewed": [True, False] * 32 + [True]})
    with pytest.raises(RenewalError) as refused:
        check_parts(rows, windows, min_rows=20)
    message = str(refused.value)
    assert "the train part" in message and "has 5 rows (< min_rows_per_part 20)" in message
    assert "train 5, calibration 30, test 30" in message
    assert "lower min_rows_per_part in --train-config" in message
    assert "{" not in message


def test_a_run_failing_after_registration_takes_its_version_back(
    data_dir, training_set, tmp_path, monkeypatch
):
    """The alias moved to the new version before the run's last writes: a failure (or SIGTERM)
    there left the service serving a model of a FAILED run whose report never reached --out."""
    from mlflow import MlflowClient

    import training.train as train_module

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_training(data_dir, tmp_path / "out1", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="undo", model_name="undo")
    assert first.registration.alias == "champion"
    real_write_json = train_module.write_json

    def failing_once_registered(path, data):
        if "registration" in data:
            raise OSError("disk full")
        return real_write_json(path, data)

    monkeypatch.setattr(train_module, "write_json", failing_once_registered)
    out = tmp_path / "out2"
    with pytest.raises(Exception, match="disk full"):
        run_training(data_dir, out, QUICK, training_set=training_set, tracking_uri=uri,
                     experiment="undo", model_name="undo", promote=True)
    client = MlflowClient(uri, uri)
    assert str(client.get_model_version_by_alias("undo", "champion").version) == "1"
    assert [str(v.version) for v in client.search_model_versions("name = 'undo'")] == ["1"]
    assert not out.exists() or list(out.iterdir()) == []
    runs = client.search_runs([client.get_experiment_by_name("undo").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]


def test_a_full_disk_under_out_is_a_message_not_a_traceback(data_dir, training_set, tmp_path,
                                                            monkeypatch):
    """Found by audit (a 48 KB tmpfs): the plots' write raised OSError through to a
    traceback and exit 1, where `renewal score` says "cannot be written" and exits 2."""
    import errno

    import training.train as train_module
    from renewal.errors import ConfigError

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_module, "write_plots", full_disk)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="--out .*out cannot be written: No space left"):
        run_training(data_dir, out, QUICK, training_set=training_set)
    assert not out.exists() or list(out.iterdir()) == []
