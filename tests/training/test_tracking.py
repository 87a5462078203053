"""Where MLflow runs and models land, what a run records, and what the CLI refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from renewal.errors import ConfigError
from training.config import LightGBMParams, TrainConfig
from training.tracking import artifact_root, configure, flat_params, mask_uri, scrub
from training.train import run_training

QUICK = TrainConfig(lightgbm=LightGBMParams(max_rounds=20, early_stopping_rounds=5))
TOKEN = "dapi0123456789abcdef0123456789ab"


@pytest.fixture
def settings_env(monkeypatch):
    """Set RENEWAL_* variables for one test; the cached settings are re-read before and after."""
    from renewal.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch.setenv
    get_settings.cache_clear()


@pytest.mark.parametrize(("uri", "shown"), [
    (f"https://{TOKEN}@mlflow.example/path", "https://***@mlflow.example/path"),
    (f"https://{TOKEN}:@mlflow.example", "https://***@mlflow.example"),
    (f"https://user:{TOKEN}@mlflow.example/path", "https://user:***@mlflow.example/path"),
])
def test_a_token_given_as_user_name_is_masked(uri, shown):
    assert mask_uri(uri) == shown
    message = scrub(f"GET {uri}/api/2.0/mlflow/experiments failed; 401 for token {TOKEN}", uri)
    assert TOKEN not in message
    assert "mlflow.example" in message


def test_a_short_user_name_is_masked_before_the_at_only():
    uri = "postgresql://mlflow@db.example/mlflow"
    assert mask_uri(uri) == "postgresql://***@db.example/mlflow"
    message = scrub('connection to mlflow@db.example failed: database "mlflow" missing', uri)
    assert message == 'connection to ***@db.example failed: database "mlflow" missing'


def test_a_long_feature_list_is_logged_whole():
    """The features param was cut at 500 characters: not JSON, and two runs whose lists differ
    after the cut looked the same when compared."""
    features = json.dumps([f"feature_number_{i}" for i in range(60)])
    assert len(features) > 500
    assert json.loads(flat_params({"features": features})["features"]) == json.loads(features)
    huge = flat_params({"x": "y" * 10_000})["x"]
    assert len(huge) == 6000 and huge.endswith("…")


def test_artifacts_of_a_sqlite_store_sit_beside_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert artifact_root(f"sqlite:///{tmp_path}/state/mlflow.db") == (
        tmp_path / "state" / "mlflow-artifacts")
    assert artifact_root("sqlite:///relative/x.db") == tmp_path / "relative" / "x-artifacts"
    assert artifact_root("sqlite://") is None
    assert artifact_root("http://127.0.0.1:5000") is None
    assert artifact_root(str(tmp_path / "mlruns")) is None  # a file store keeps its own


def test_server_database_artifacts_go_under_the_data_dir(tmp_path, settings_env):
    settings_env("RENEWAL_DATA_DIR", str(tmp_path / "state"))
    assert artifact_root("postgresql://u:pw@db.example/mlflow") == (
        tmp_path / "state" / "mlflow-artifacts")


def test_an_existing_experiment_keeps_its_artifact_location(tracking_uri, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, tracking_uri)
    old = client.create_experiment("created-before", artifact_location=str(tmp_path / "old"))
    assert configure(tracking_uri, "created-before") == old
    assert client.get_experiment(old).artifact_location == str(tmp_path / "old")
    new = configure(tracking_uri, "new one/x")
    assert client.get_experiment(new).artifact_location == str(
        artifact_root(tracking_uri) / "new_one_x")
    assert artifact_root(tracking_uri).parent == Path(tracking_uri.removeprefix("sqlite:///")).parent


def test_an_unreachable_registry_is_not_taken_for_no_champion(tracking_uri, monkeypatch):
    """Any MLflow error used to mean "no champion yet": the new model became champion without
    being compared with the one it replaced."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.registry import current_champion

    client = MlflowClient(tracking_uri, tracking_uri)
    assert current_champion(client, "never-registered") is None
    client.create_registered_model("registered-without-champion")
    assert current_champion(client, "registered-without-champion") is None
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    dead = "http://127.0.0.1:9"
    with pytest.raises(MlflowException, match="127.0.0.1:9"):
        current_champion(MlflowClient(dead, dead), "renewal")


def test_runs_and_models_land_beside_the_store_from_any_working_directory(
    data_dir, training_set, tracking_uri, tmp_path, monkeypatch
):
    """Artifacts used to go to ./mlruns of the working directory: scattered, and lost to a
    scorer started elsewhere once that directory was cleaned up."""
    import mlflow
    from mlflow.utils.file_utils import local_file_uri_to_path

    from training.pyfunc import model_input

    uri = tracking_uri
    here = tmp_path / "cwd-train"
    here.mkdir()
    monkeypatch.chdir(here)
    result = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                          tracking_uri=uri, experiment="where", model_name="renewal-where")
    assert list(here.iterdir()) == []
    store = Path(uri.removeprefix("sqlite:///"))
    root = store.parent / "mlflow-artifacts" / "where"
    run_artifacts = Path(local_file_uri_to_path(mlflow.get_run(result.run_id).info.artifact_uri))
    assert run_artifacts.is_relative_to(root) and (run_artifacts / "report.json").exists()
    assert any(root.glob("models/*/artifacts/MLmodel"))  # the logged pyfunc, too

    elsewhere = tmp_path / "cwd-score"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    loaded = mlflow.pyfunc.load_model("models:/renewal-where@champion")
    frame = model_input(result.scorer, training_set.part("test").head(3))
    assert loaded.predict(frame)["probability"].between(0, 1).all()
    assert list(elsewhere.iterdir()) == []


def test_the_logged_input_example_is_no_customer_s_row(
    data_dir, training_set, tracking_uri, tmp_path
):
    """Found by audit: the model's input_example.json held the first five test rows, real
    accounts' ARR, CSM and scores, copied wherever the model goes. It is now one row of
    rounded medians over the training part, with no category."""
    import numpy as np

    result = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                          tracking_uri=tracking_uri, experiment="example", register=False)
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    found = list((store.parent / "mlflow-artifacts" / "example").glob(
        "models/*/artifacts/input_example.json"))
    assert len(found) == 1
    example = json.loads(found[0].read_text())
    rows = [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
    assert len(rows) == 1
    row = rows[0]
    train = training_set.part("train")
    arr_median = float(np.median(train["arr"].astype(float)))
    assert row["arr"] == float(f"{arr_median:.2g}")
    categories = [s.name for s in result.scorer.features if s.kind == "category"]
    assert categories and all(row.get(name) is None for name in categories)
    # No real account's vector: the old example was the first test rows, identical to them.
    from training.pyfunc import model_input

    numeric = [s.name for s in result.scorer.features if s.kind != "category"]
    real = model_input(result.scorer, training_set.rows)[numeric].to_numpy(dtype=float)
    mine = np.array([np.nan if row[n] is None else row[n] for n in numeric], dtype=float)
    same = (real == mine) | (np.isnan(real) & np.isnan(mine))
    assert not same.all(axis=1).any()


def test_promote_without_register_is_refused(data_dir, tmp_path):
    from renewal.cli import build_app

    out = tmp_path / "o"
    result = CliRunner().invoke(build_app(), [
        "train", "--data", str(data_dir), "--out", str(out), "--promote", "--no-register",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
    ])
    assert result.exit_code == 2
    assert "--no-register" in result.output
    assert not out.exists()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConfigError, match="needs register=True and a tracking_uri"):
        run_training(data_dir, out, QUICK, tracking_uri=uri, register=False, promote=True)
    with pytest.raises(ConfigError, match="needs register=True and a tracking_uri"):
        run_training(data_dir, out, QUICK, promote=True)  # nothing is logged, nor registered
    assert not out.exists()


def test_cli_trains_with_the_settings_scoring_uses_and_logs_every_feature(
    data_dir, tracking_uri, tmp_path, settings_env
):
    """`renewal train` registered 'renewal' whatever RENEWAL_MODEL_NAME said, so the service
    and `renewal score` (which load RENEWAL_MODEL_NAME@champion) never saw the new model; it
    computed features with the default thresholds while scoring used RENEWAL_FEATURE_CONFIG;
    and the features param was cut at 500 characters, not even valid JSON."""
    from mlflow import MlflowClient

    from renewal.cli import build_app
    from renewal.settings import get_settings

    settings_env("RENEWAL_TRACKING_URI", tracking_uri)
    settings_env("RENEWAL_MODEL_NAME", "acme-renewal")
    thresholds = tmp_path / "features.toml"
    thresholds.write_text("active_share = 0.4\n")
    settings_env("RENEWAL_FEATURE_CONFIG", str(thresholds))
    config = tmp_path / "train.toml"
    config.write_text("[lightgbm]\nmax_rounds = 20\nearly_stopping_rounds = 5\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_app(), [
        "train", "--data", str(data_dir), "--out", str(out), "--no-validate",
        "--train-config", str(config),
    ])
    assert result.exit_code == 0, result.output
    assert "registered acme-renewal v1" in result.output
    settings = get_settings()
    uri = settings.resolved_tracking_uri
    assert uri == tracking_uri
    version = MlflowClient(uri, uri).get_model_version_by_alias(
        settings.model_name, settings.model_alias)
    report = json.loads((out / "report.json").read_text())
    assert version.run_id == report["mlflow"]["run_id"]
    run = MlflowClient(uri, uri).get_run(version.run_id)
    assert run.data.params["feature_config.active_share"] == "0.4"
    features = json.loads(run.data.params["features"])
    assert features == report["features"] and len(run.data.params["features"]) > 500
    # The model carries its thresholds, so scoring can tell when its own differ.
    import mlflow.models

    info = mlflow.models.get_model_info(f"models:/{settings.model_name}/{version.version}")
    recorded = json.loads(info.metadata["feature_config"])
    assert recorded["active_share"] == 0.4
    from features.config import load_feature_config

    assert recorded == load_feature_config(thresholds).model_dump(mode="json")


def test_a_champion_is_not_compared_on_outcomes_it_was_fitted_on(
    data_dir, training_set, tracking_uri, tmp_path
):
    """A new run with an earlier test window (longer test_months) re-scored the champion on
    contracts it had been fitted on: an in-sample score that kept it for the wrong reason."""
    from mlflow import MlflowClient

    from training.dataset import LABEL
    from training.pyfunc import model_input
    from training.registry import register_model

    name = "renewal-overlap"
    first = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                         tracking_uri=tracking_uri, experiment="overlap", model_name=name)
    assert first.registration.alias == "champion"
    start, end = first.report["test_window"]
    test = training_set.part("test")
    arguments = dict(
        model_uri=first.model_uri, test_features=model_input(first.scorer, test),
        renewed=test[LABEL].to_numpy(dtype=int), name=name,
        new_metrics={"log_loss": 0.01, "auc": 0.99},  # would beat any champion
    )
    earlier = register_model(**arguments, tags={"test_window": f"2000-01-01..{end}"})
    assert earlier.alias == "challenger"
    assert f"fitted on contracts ending before {start}" in earlier.reason
    assert "--promote" in earlier.reason
    # The same window stays a fair comparison (test_train's champion rule test).
    client = MlflowClient(tracking_uri, tracking_uri)
    assert str(client.get_model_version_by_alias(name, "champion").version) == (
        first.registration.version)


def test_mlflow_info_lines_and_the_pickle_notice_stay_off_the_console(tracking_uri):
    """`renewal train` printed MLflow's table creation, input-example validation and its
    CloudPickle notice before its own report; warnings and errors still show."""
    import logging

    from training.tracking import configure

    configure(tracking_uri, "quiet-logs")
    mlflow_log = logging.getLogger("mlflow")
    assert not mlflow_log.isEnabledFor(logging.INFO)
    assert mlflow_log.isEnabledFor(logging.WARNING)
    pyfunc_log = logging.getLogger("mlflow.pyfunc")

    def record(message: str) -> logging.LogRecord:
        return pyfunc_log.makeRecord("mlflow.pyfunc", logging.WARNING, __file__, 1, message,
                                     None, None)

    notice = record("Passing a Python object as `python_model` causes it to be serialized "
                    "using CloudPickle, it requires exercising caution ...")
    assert not pyfunc_log.filter(notice)
    assert pyfunc_log.filter(record("Failed to validate the input example"))
    configure(tracking_uri, "quiet-logs")  # idempotent: one filter, not one per call
    assert sum(f.__name__ == "_not_the_pickle_notice" for f in pyfunc_log.filters
               if hasattr(f, "__name__")) == 1


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://mlf:pw123@127.0.0.1:8308/?token=QueryTok3",
     "http://mlf:***@127.0.0.1:8308/?token=***"),
    ("postgresql://db.example/mlflow?sslmode=require&password=s%40cret",
     "postgresql://db.example/mlflow?sslmode=require&password=***"),
    ("https://mlflow.example/?access_key=AK1&sig=xyz&region=eu",
     "https://mlflow.example/?access_key=***&sig=***&region=eu"),
    # Other parameters stay as written, even when a secret's value is in them (review).
    ("postgresql://h/db?auth=1&connect_timeout=10", "postgresql://h/db?auth=***&connect_timeout=10"),
    ("mssql://h/db?PWD=Secr3t!x&sslmode=require", "mssql://h/db?PWD=***&sslmode=require"),
    ("https://h/x?p%61ssword=hunter2&a=1", "https://h/x?p%61ssword=***&a=1"),
])
def test_secret_query_values_are_masked_and_others_kept(uri, shown):
    """A query-string token was printed in clear next to a masked password (found by audit)."""
    assert mask_uri(uri) == shown
    message = scrub(f"cannot reach {uri}: QueryTok3 / s@cret / Secr3t!x refused, "
                    "host 10.0.0.1", uri)
    secrets = {"QueryTok3", "pw123", "s%40cret", "s@cret", "Secr3t!x"}
    assert not [v for v in secrets if v.replace("@", "%40") in uri and v in message]
    assert "10.0.0.1" in message  # a short value ("1") is masked after its "=" only
    assert "region=eu" in message or "region" not in uri
