"""``renewal score`` refuses, before any work and before anything is stored, an --as-of after
today and an --out it must not write (a file of the data directory, a directory, the wrong
suffix, an unwritable place); the Parquet file appears only once the scores are stored."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import service.scoring as scoring
from renewal.errors import ConfigError
from renewal.settings import Settings
from service.config import ServiceSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))

import service_factories as factories  # noqa: E402

AS_OF = date(2025, 6, 30)
INPUT = b"the customer's usage table"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose files must never be replaced (contents are not read here)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "usage.parquet").write_bytes(INPUT)
    (data / "contracts.parquet").write_bytes(INPUT)
    return data


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The score store of the run (a SQLite file): it must not even be created on refusal."""
    db = tmp_path / "store.db"
    monkeypatch.setenv("RENEWAL_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("RENEWAL_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("RENEWAL_TRACKING_URI", "http://127.0.0.1:9")
    from renewal.settings import get_settings
    from service.config import get_service_settings

    get_settings.cache_clear()
    get_service_settings.cache_clear()
    yield db
    get_settings.cache_clear()
    get_service_settings.cache_clear()


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from renewal.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out + captured.err


def no_work(*_args, **_kwargs):
    raise AssertionError("expensive work started before the cheap checks")


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the run gets as far as validating the data or loading the model."""
    monkeypatch.setattr("features.validation.check_data_dir", no_work)
    monkeypatch.setattr(scoring, "load_batch_model", no_work)
    monkeypatch.setattr(scoring, "store_scores", no_work)


@pytest.mark.parametrize(("out", "expected"), [
    ("data/usage.parquet", "is a file of the data directory"),
    ("data/../data/contracts.parquet", "is a file of the data directory"),
    ("scores.csv", "must end in .parquet: the output is written as Parquet"),
    ("adir", "is a directory: give a file path ending in .parquet"),
    ("afile/s.parquet", "cannot be written: afile is not a directory"),
])
def test_score_refuses_a_bad_out_before_anything_is_stored(
    out, expected, tmp_path, data_dir, store, guarded, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    code, text = run_cli(["score", "--data", "data", "--as-of", str(AS_OF), "--out", out],
                         capsys)
    assert code == 2, text
    assert expected in text
    assert "Traceback" not in text
    assert (data_dir / "usage.parquet").read_bytes() == INPUT
    assert (data_dir / "contracts.parquet").read_bytes() == INPUT
    assert not store.exists()  # nothing stored, not even an empty store
    assert not (tmp_path / "scores.csv").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_score_refuses_an_unwritable_out(tmp_path, data_dir, store, guarded, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, text = run_cli(["score", "--data", str(data_dir), "--as-of", str(AS_OF),
                              "--out", str(locked / "s.parquet")], capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2, text
    assert "is not writable" in text
    assert not store.exists()


def test_run_scoring_refuses_a_bad_out_itself(tmp_path, data_dir, guarded):
    """The check is in run_scoring (not only in the command), before the store is opened."""
    with pytest.raises(ConfigError, match="is a file of the data directory"):
        scoring.run_scoring(data_dir, AS_OF, Settings(database_url=f"sqlite:///{tmp_path}/x.db"),
                            ServiceSettings(), out=data_dir / "usage.parquet")
    assert not (tmp_path / "x.db").exists()
    assert (data_dir / "usage.parquet").read_bytes() == INPUT


def test_score_refuses_an_as_of_after_today(tmp_path, data_dir, store, guarded, capsys):
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    for day in (tomorrow, date(2099, 1, 1)):
        code, text = run_cli(["score", "--data", str(data_dir), "--as-of", str(day)], capsys)
        assert code == 2, text
        assert f"--as-of {day} is after today" in text
        assert "served as the newest one and sent to webhook subscribers" in text
        assert "Traceback" not in text
    assert not store.exists()


def test_run_scoring_refuses_an_as_of_after_today(tmp_path, data_dir, guarded):
    with pytest.raises(ConfigError, match="after today"):
        scoring.run_scoring(data_dir, date(2099, 1, 1),
                            Settings(database_url=f"sqlite:///{tmp_path}/x.db"),
                            ServiceSettings())
    assert not (tmp_path / "x.db").exists()


def test_spark_scoring_refuses_an_as_of_after_today_before_spark_starts(monkeypatch):
    from service import spark_scoring

    monkeypatch.setattr(spark_scoring, "start_spark", no_work)
    with pytest.raises(ConfigError, match="after today"):
        spark_scoring.score_on_spark("data", date(2099, 1, 1), "out", "models:/renewal/1")


@pytest.fixture
def tiny_run(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """run_scoring with the tiny model on synthetic vectors (no feature computation)."""
    model = factories.loaded(factories.tiny_scorer())
    frame = factories.feature_frame(40, AS_OF)
    monkeypatch.setattr("features.validation.check_data_dir", lambda *_a, **_k: None)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    monkeypatch.setattr(scoring, "customer_features", lambda *_a, **_k: (
        frame.copy(), frame.iloc[:0], pd.Series([], dtype="datetime64[ns]"), []))
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db")

    def run(out: Path):
        return scoring.run_scoring(data_dir, AS_OF, settings, ServiceSettings(), out=out)

    return run


def scored_rows(tmp_path: Path) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path}/store.db")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from scores")).scalar_one()
    finally:
        engine.dispose()


def test_run_scoring_writes_out_with_the_stored_scores(tmp_path, tiny_run):
    out = tmp_path / "out" / "scores.parquet"
    summary = tiny_run(out)
    assert summary.out == out
    table = pd.read_parquet(out)
    assert len(table) == summary.accounts == 40 == scored_rows(tmp_path)
    assert [p.name for p in out.parent.iterdir()] == ["scores.parquet"]  # no temporary file
    # as_of is a date, as docs/scale-out.md says and the Spark job writes it (a timestamp
    # before: found by audit).
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert pq.read_schema(out).field("as_of").type == pa.date32()
    assert set(table["as_of"].astype(str)) == {str(summary.as_of)}


def test_a_failed_store_leaves_no_out_file(tmp_path, tiny_run, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("store down")

    monkeypatch.setattr(scoring, "store_scores", broken)
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(RuntimeError, match="store down"):
        tiny_run(out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # and no temporary file left behind


def test_a_failed_write_stores_nothing(tmp_path, tiny_run, monkeypatch):
    """The Parquet file is written before the scores are stored (renamed after): a disk full
    at the write must not leave a run stored (and its webhook events queued) without it."""
    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(ConfigError, match="--out .* cannot be written: No space left"):
        tiny_run(out)
    assert scored_rows(tmp_path) == 0
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(("out", "expected"), [
    ("{data}", "is the data directory"),
    ("{data}/", "is the data directory"),
    ("{tmp}", "contains the data directory"),  # e.g. --out . from the data's parent
    ("{data}/usage.parquet", "is a table of the data directory"),
    ("{data}/../data/accounts.csv/part-0", "is a table of the data directory"),
    ("{data}/notes.txt", "is a file of the data directory"),
    ("file://{data}", "is the data directory"),
])
def test_spark_scoring_refuses_an_out_that_would_replace_the_data(
    tmp_path, data_dir, monkeypatch, capsys, out, expected
):
    """Spark's write moves the previous --out aside and deletes it: --out data would delete
    the customer's data after a successful run. Refused before Spark starts."""
    from service import spark_scoring

    monkeypatch.setattr(spark_scoring, "start_spark", no_work)
    (data_dir / "notes.txt").write_bytes(INPUT)
    location = out.format(data=data_dir, tmp=tmp_path)
    code, text = run_cli(["score", "--engine", "spark", "--data", str(data_dir),
                          "--as-of", str(AS_OF), "--out", location], capsys)
    assert code == 2, text
    assert expected in " ".join(text.split())
    assert "write them elsewhere" in " ".join(text.split())
    assert sorted(p.name for p in data_dir.iterdir()) == ["contracts.parquet", "notes.txt",
                                                          "usage.parquet"]
    assert (data_dir / "usage.parquet").read_bytes() == INPUT


def test_spark_output_check_allows_new_places_beside_or_under_the_data(tmp_path, data_dir):
    """docs/scale-out.md writes s3a://lake/renewal/scores/DAY.parquet under --data
    s3a://lake/renewal: a new place that is no table; a rerun replaces its own output."""
    from service.spark_scoring import check_spark_output

    check_spark_output(str(tmp_path / "scores"), str(data_dir))
    check_spark_output(str(tmp_path / "data-scores"), str(data_dir))  # a prefix, not a parent
    (data_dir / "scores" / "2026-06-30.parquet").mkdir(parents=True)  # the previous run's
    check_spark_output(str(data_dir / "scores" / "2026-06-30.parquet"), str(data_dir))
    check_spark_output("s3a://lake/renewal/scores/2026-06-30.parquet", "s3a://lake/renewal")
    check_spark_output("s3a://lake/scores", "s3a://lake/renewal")
    for out in ("s3a://lake/renewal", "s3a://lake/renewal/usage.parquet", "s3a://lake",
                "s3a://lake/renewal/tickets.csv/"):
        with pytest.raises(ConfigError, match="write them elsewhere"):
            check_spark_output(out, "s3a://lake/renewal/")


def test_renewal_score_says_warnings_on_stderr_and_does_not_wrap_when_piped(tmp_path, capsys,
                                                                            monkeypatch):
    """Found by audit: a scheduler alerting on stderr missed the run's warnings (they went
    to stdout), and piped lines broke at 80 columns ("scored 1,245 accounts as" / "of ...")."""
    import service.scoring as scoring_module
    from renewal.cli import main
    from service.scoring import ScoringSummary

    stale = "usage ends 2025-06-20, 10 day(s) before as-of 2025-06-30: " + "x" * 80
    monkeypatch.setattr(scoring_module, "run_scoring", lambda *_a, **_k: ScoringSummary(
        as_of=AS_OF, accounts=1245, model_name="renewal-model-with-a-long-name",
        model_version="12", run_id=1, out=None, seconds={"features": 1.0, "score": 2.0},
        risk_tiers={"high": 5}, warnings=[stale], lost_accounts=3))
    monkeypatch.setenv("RENEWAL_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as done:
        main(["score", "--data", str(tmp_path), "--as-of", AS_OF.isoformat()])
    assert done.value.code == 0
    out, err = capsys.readouterr()
    assert "warning: " + stale in err and stale not in out
    lines = out.splitlines()
    assert any(line.startswith("model renewal-model-with-a-long-name v12; features 1.0s, "
                               "score 2.0s") for line in lines)
    assert any("3 account(s) lost by" in line and line.endswith("not scored") for line in lines)
