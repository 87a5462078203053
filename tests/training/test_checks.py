"""Bad input to `renewal train` is refused up front with a clear message, never a traceback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from renewal.errors import ConfigError, RenewalError
from training.config import load_train_config
from training.dataset import check_parts
from training.tracking import check_tracking, mask_uri, scrub


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text", [
    "horizon_days = true", "min_rows_per_part = true", "seed = false",
    "[lightgbm]\nmax_rounds = true", "[training]\nhorizon_days = true",
])
def test_true_false_is_not_a_number(tmp_path, text):
    with pytest.raises(ConfigError, match="true/false is not a valid value"):
        load_train_config(write(tmp_path, text))


@pytest.mark.parametrize("text", ['horizon_days = "60"', '[lightgbm]\nlearning_rate = "0.1"'])
def test_a_quoted_number_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="without quotes"):
        load_train_config(write(tmp_path, text))


def test_top_level_keys_next_to_a_training_table_are_refused(tmp_path):
    path = write(tmp_path, "seed = 7\n[training]\nhorizon_days = 60\n")
    with pytest.raises(ConfigError, match=r"seed sit at top level next to a \[training\] table"):
        load_train_config(path)


def test_a_lightgbm_table_next_to_training_is_used(tmp_path):
    text = "[training]\nseed = 3\n[lightgbm]\nmax_rounds = 5\n"
    config = load_train_config(write(tmp_path, text))
    assert (config.seed, config.lightgbm.max_rounds) == (3, 5)
    nested = load_train_config(write(tmp_path, "[training]\n[training.lightgbm]\nmax_rounds = 6\n"))
    assert nested.lightgbm.max_rounds == 6
    top = load_train_config(write(tmp_path, "seed = 4\n[lightgbm]\nmax_rounds = 7\n"))
    assert (top.seed, top.lightgbm.max_rounds) == (4, 7)


def test_lightgbm_given_twice_is_refused(tmp_path):
    path = write(tmp_path, "[training.lightgbm]\nmax_rounds = 1\n[lightgbm]\nmax_rounds = 2\n")
    with pytest.raises(ConfigError, match="keep one"):
        load_train_config(path)


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="horizon: unknown key"):
        load_train_config(write(tmp_path, "horizon = 60"))


def test_a_directory_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_train_config(tmp_path)


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999])
def test_seed_out_of_range_is_refused(seed):
    with pytest.raises(ConfigError, match="seed"):
        load_train_config(None, seed=seed)
    assert load_train_config(None, seed=2**32 - 1).seed == 2**32 - 1


def rows_with(labels: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame([{"part": part, "renewed": y} for part, ys in labels.items() for y in ys])


def test_one_outcome_in_a_part_is_refused(training_set):
    windows = training_set.windows
    rows = rows_with({"train": [1] * 30, "calibration": [0, 1] * 15, "test": [0, 1] * 15})
    with pytest.raises(RenewalError, match=r"the train part \(contract ends .*\) has 30 rows but "
                                           r"only one outcome \(every contract renewed\)"):
        check_parts(rows, windows, 20)
    with pytest.raises(RenewalError, match="the calibration part .* has 10 rows"):
        check_parts(rows_with({"train": [0, 1] * 15, "calibration": [0, 1] * 5,
                               "test": [0, 1] * 15}), windows, 20)
    check_parts(rows_with({p: [0, 1] * 15 for p in ("train", "calibration", "test")}), windows, 20)


def test_fit_refuses_a_train_part_with_one_outcome(training_set, train_config):
    from training.dataset import TrainingSet
    from training.fit import fit_models

    rows = training_set.rows.copy()
    rows.loc[rows["part"] == "train", "renewed"] = 1
    one_outcome = TrainingSet(rows, training_set.feature_columns, training_set.windows)
    with pytest.raises(RenewalError, match="the train part .* only one outcome"):
        fit_models(one_outcome, train_config)


def test_build_refuses_one_outcome_before_the_features(data_dir, train_config, tmp_path,
                                                       monkeypatch):
    import features.vectors
    from training.dataset import build_training_set

    copy = tmp_path / "all-renewed"
    shutil.copytree(data_dir, copy)
    contracts = pd.read_parquet(copy / "contracts.parquet")
    contracts.loc[contracts["renewed"].notna(), "renewed"] = True
    contracts.to_parquet(copy / "contracts.parquet", index=False)

    def no_features(*_args, **_kwargs):
        raise AssertionError("feature vectors were built before the cheap check")

    monkeypatch.setattr(features.vectors, "feature_vectors", no_features)
    with pytest.raises(RenewalError, match="only one outcome"):
        build_training_set(copy, train_config)


@pytest.mark.parametrize(("uri", "shown"), [
    ("postgresql://user:pw@db.example:5432/mlflow", "postgresql://user:***@db.example:5432/mlflow"),
    ("https://user:token@mlflow.example/path", "https://user:***@mlflow.example/path"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_uris_are_shown_without_the_password(uri, shown):
    assert mask_uri(uri) == shown
    assert "pw" not in scrub(f"failed for {uri}: pw rejected", "postgresql://u:pw@h/db")


def test_blank_experiment_is_refused():
    with pytest.raises(ConfigError, match="must not be blank"):
        check_tracking("sqlite:////nonexistent/mlflow.db", "  ")


@pytest.mark.parametrize("uri", ["foo://bar", "http://127.0.0.1:9", "https://u:secret@127.0.0.1:9"])
def test_an_unusable_tracking_store_fails_fast_and_masked(uri):
    started = time.perf_counter()
    with pytest.raises(RenewalError, match="MLflow tracking URI") as caught:
        check_tracking(uri, "renewal")
    assert time.perf_counter() - started < 60
    assert "secret" not in str(caught.value)


def test_run_training_checks_out_and_tracking_before_any_work(data_dir, train_config, tmp_path,
                                                               monkeypatch):
    import training.train as train_module

    def no_work(*_args, **_kwargs):
        raise AssertionError("training started before the cheap checks")

    monkeypatch.setattr(train_module, "build_training_set", no_work)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        train_module.run_training(data_dir, afile, train_config, validate=False)
    with pytest.raises(ConfigError, match="cannot be created"):
        train_module.run_training(data_dir, Path("/proc/renewal-test/out"), train_config,
                                  validate=False)
    with pytest.raises(RenewalError, match="foo://bar"):
        train_module.run_training(data_dir, tmp_path / "out", train_config, validate=False,
                                  tracking_uri="foo://bar")


def test_an_mlflow_failure_leaves_the_previous_outputs(data_dir, training_set, train_config,
                                                       tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException

    import training.train as train_module

    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"previous": "good run"}')

    def broken(*_args, **_kwargs):
        raise MlflowException("store went away\nsecond line")

    monkeypatch.setattr(train_module, "log_and_register", broken)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(RenewalError, match="logging the run .* failed: store went away"):
        train_module.run_training(data_dir, out, train_config, training_set=training_set,
                                  tracking_uri=uri)
    assert (out / "report.json").read_text() == '{"previous": "good run"}'
    assert [p.name for p in out.iterdir()] == ["report.json"]


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "-1"], "--seed"),
    (["--seed", "99999999999"], "--seed"),
    (["--horizon-days", "0"], "--horizon-days"),
])
def test_cli_refuses_out_of_range_options(data_dir, tmp_path, args, message):
    from renewal.cli import build_app

    result = CliRunner().invoke(build_app(), ["train", "--data", str(data_dir), "--out",
                                              str(tmp_path / "o"), "--no-validate", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_refuses_a_directory_as_train_config(data_dir, tmp_path):
    from renewal.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["train", "--data", str(data_dir), "--out", str(tmp_path / "o"),
              "--train-config", str(tmp_path)])
    assert exited.value.code == 2
