"""A failed `renewal train` leaves no MLflow store it created: a new SQLite store is only tried
before the work and made when the run logs, and a run failing after that takes it back, unless
it holds what another run put there. A store that existed before the run is never removed."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from renewal.errors import RenewalError
from training.config import LightGBMParams, TrainConfig
from training.tracking import ARTIFACTS_SUFFIX, create_store
from training.train import run_training

QUICK = TrainConfig(lightgbm=LightGBMParams(max_rounds=20, early_stopping_rounds=5))


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory) -> dict[str, Path]:
    """Data a run refuses: tables missing (the contract), too little history (the split)."""
    from renewal.simulator import simulate

    root = tmp_path_factory.mktemp("bad-data")
    (root / "empty").mkdir()
    simulate(root / "short", accounts=40, seed=1, months=6)
    return {"missing tables": root / "empty", "too little history": root / "short"}


def artifacts_of(database: Path) -> Path:
    return database.with_name(database.stem + ARTIFACTS_SUFFIX)


def fail_after_registering(monkeypatch) -> None:
    """The run's last writes fail (a full disk) once its model is logged and registered."""
    import mlflow

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow, "set_tag", full_disk)  # the `registered_alias` tag


def runs_on_disk(database: Path) -> list[str]:
    """Run ids read from the file itself (not through MLflow's cached connections)."""
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT run_uuid FROM runs")]


@pytest.mark.parametrize("kind", ["missing tables", "too little history"])
def test_a_run_refused_on_its_data_leaves_no_new_store(cli, bad_data, tmp_path, kind):
    database = tmp_path / "state" / "mlflow.db"
    outcome = cli("train", "--data", str(bad_data[kind]), "--out", str(tmp_path / "out"),
                  "--tracking-uri", f"sqlite:///{database}")
    assert outcome.exit_code == 2, outcome.output
    assert not database.exists()
    assert not artifacts_of(database).exists()
    assert list(tmp_path.iterdir()) == []  # nor the directory made for the store, nor --out


def test_an_unusable_place_for_a_new_store_still_fails_before_the_work(cli, bad_data,
                                                                       tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    outcome = cli("train", "--data", str(bad_data["too little history"]), "--out",
                  str(tmp_path / "out"), "--tracking-uri", f"sqlite:///{blocker}/mlflow.db")
    assert outcome.exit_code != 0
    assert "checking the tracking store" in " ".join(outcome.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_run_failing_after_it_logged_removes_the_store_it_created(
    data_dir, training_set, tmp_path
):
    import mlflow

    database = tmp_path / "state" / "mlflow.db"
    uri = f"sqlite:///{database}"
    with pytest.MonkeyPatch.context() as patch:
        fail_after_registering(patch)
        with pytest.raises(RenewalError, match="No space left on device"):
            run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="leftovers", model_name="renewal-leftovers")
    assert not database.exists()
    assert not artifacts_of(database).exists()
    assert list(tmp_path.iterdir()) == []

    # The same process (a notebook) trains again: the run lands in a real file, not in the
    # removed one that MLflow's cached connections still had open.
    again = run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                         tracking_uri=uri, experiment="leftovers", model_name="renewal-leftovers")
    assert runs_on_disk(database) == [again.run_id]
    default = mlflow.MlflowClient(uri).get_experiment("0").artifact_location
    assert Path(default.removeprefix("file://")) == artifacts_of(database).resolve() / "0"
    assert (artifacts_of(database) / "leftovers").is_dir()


def test_a_new_store_another_run_logged_into_is_kept(data_dir, training_set, tmp_path,
                                                     monkeypatch):
    from mlflow import MlflowClient

    import training.tracking as tracking

    monkeypatch.chdir(tmp_path)  # MLflow's clients default to ./mlruns: keep it in here
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    real_log_pyfunc = tracking.log_pyfunc

    def another_run_meanwhile(*args, **kwargs):
        other = MlflowClient(uri)  # another `renewal train` using the new store
        other.create_run(other.create_experiment(
            "another", artifact_location=str(tmp_path / "mlflow-artifacts" / "another")))
        real_log_pyfunc(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking, "log_pyfunc", another_run_meanwhile)
    with pytest.raises(RenewalError, match="No space left on device"):
        run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                     tracking_uri=uri, experiment="mine", register=False)
    assert database.exists()
    assert MlflowClient(uri).get_experiment_by_name("another") is not None
    assert len(runs_on_disk(database)) == 2  # the other run and this one (marked failed)
    assert not (tmp_path / "mlruns").exists()


def test_a_store_that_existed_before_is_kept_whatever_fails(
    cli, bad_data, data_dir, training_set, tmp_path, monkeypatch
):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's clients default to ./mlruns: keep it in here
    database = tmp_path / "mlflow.db"
    uri = f"sqlite:///{database}"
    create_store(uri)
    client = MlflowClient(uri)
    earlier = client.create_run(client.create_experiment(
        "earlier", artifact_location=str(artifacts_of(database) / "earlier"))).info.run_id
    client.set_terminated(earlier)
    (artifacts_of(database) / "kept").mkdir(parents=True)
    before = hashlib.sha256(database.read_bytes()).hexdigest()

    outcome = cli("train", "--data", str(bad_data["missing tables"]), "--out",
                  str(tmp_path / "out"), "--tracking-uri", uri)
    assert outcome.exit_code == 2, outcome.output
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before  # untouched

    fail_after_registering(monkeypatch)  # a run that logged into it, then failed
    with pytest.raises(RenewalError, match="No space left on device"):
        run_training(data_dir, tmp_path / "out", QUICK, training_set=training_set,
                     tracking_uri=uri, experiment="earlier", model_name="renewal-kept")
    assert earlier in runs_on_disk(database)
    assert (artifacts_of(database) / "kept").is_dir()
    assert client.get_run(earlier).info.status == "FINISHED"
    assert not (tmp_path / "mlruns").exists()
