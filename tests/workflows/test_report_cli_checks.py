"""``renewal report`` run in-process on a small simulated data directory with the tiny model:
--out is checked before the model loads (never over an input, never the wrong format),
--since backtests every decided month from it on (in-sample ones marked), the default only
the held-out ones, and a month no contract ends in says so."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

import service_factories as factories  # noqa: E402

CALIBRATION_END = "2025-03-31"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from renewal.simulator import simulate

    root = tmp_path_factory.mktemp("report-checks") / "data"
    simulate(root, accounts=30, seed=3, months=18)  # decided months 2025-01 … 2025-06
    return root


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh score store, no registry, and the tiny model fitted up to CALIBRATION_END."""
    import service.scoring as scoring
    from renewal.settings import get_settings

    monkeypatch.setenv("RENEWAL_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("RENEWAL_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("RENEWAL_TRACKING_URI", "http://127.0.0.1:9")
    get_settings.cache_clear()
    scorer = copy.copy(factories.tiny_scorer())
    scorer.metadata = {**scorer.metadata, "windows": {"calibration_end": CALIBRATION_END}}
    loads: list[str | None] = []

    def load(_settings, uri):
        loads.append(uri)
        return factories.loaded(scorer)

    monkeypatch.setattr(scoring, "load_batch_model", load)
    monkeypatch.chdir(tmp_path)
    yield loads
    get_settings.cache_clear()


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    from renewal.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(("out", "expected"), [
    ("{data}/contracts.parquet", "must end in .json"),
    ("{data}/../data/contracts.parquet", "must end in .json"),
    ("report.txt", "must end in .json: the output is written as JSON"),
    ("adir", "is a directory: give a file path ending in .json"),
])
def test_report_refuses_a_bad_out_before_loading_the_model(out, expected, data, env, capsys,
                                                           tmp_path):
    (tmp_path / "adir").mkdir()
    before = (data / "contracts.parquet").read_bytes()
    code, text = run_cli(["report", "--data", str(data), "--out", out.format(data=data)],
                         capsys)
    assert code == 2, text
    assert expected in text
    assert "Traceback" not in text
    assert env == []  # the model was never loaded
    assert (data / "contracts.parquet").read_bytes() == before


def test_report_refuses_a_json_file_of_the_data_directory(data, env, capsys):
    stray = data / "notes.json"
    stray.write_text("{}")
    try:
        code, text = run_cli(["report", "--data", str(data), "--out", str(stray)], capsys)
        assert code == 2, text
        assert "is a file of the data directory" in text
        assert stray.read_text() == "{}"
        assert env == []
    finally:
        stray.unlink()


def test_report_refuses_a_bad_month_before_loading_the_model(data, env, capsys):
    code, text = run_cli(["report", "--data", str(data), "--since", "2025-1"], capsys)
    assert code == 2, text
    assert "'2025-1' is not a month YYYY-MM" in text
    assert env == []


def backtested(out: Path) -> list[tuple[str, bool | str]]:
    """(month, in_sample) per month backtested, (month, "skipped") per month skipped."""
    report = json.loads(out.read_text())["forecast_backtest"]
    return sorted([(m["month"], m["in_sample"]) for m in report["months"]] + [
        (month, "skipped") for month in report["skipped"]])


def test_since_backtests_every_decided_month_from_it_on(data, env, capsys, tmp_path):
    out = tmp_path / "r.json"
    code, text = run_cli(["report", "--data", str(data), "--since", "2025-02", "--draws",
                          "1000", "--out", str(out)], capsys)
    assert code == 0, text
    months = backtested(out)
    assert [m for m, _ in months] == ["2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    assert dict(months)["2025-02"] is True and dict(months)["2025-03"] is True
    assert dict(months)["2025-05"] is False
    assert "2025-02 (in-sample)" in text


def test_the_default_backtests_only_held_out_months(data, env, capsys, tmp_path):
    out = tmp_path / "r.json"
    code, text = run_cli(["report", "--data", str(data), "--draws", "1000", "--out", str(out)],
                         capsys)
    assert code == 0, text
    assert [m for m, _ in backtested(out)] == ["2025-04", "2025-05", "2025-06"]
    assert "(in-sample)" not in text


def test_since_after_every_decided_month_backtests_nothing(data, env, capsys, tmp_path):
    out = tmp_path / "r.json"
    code, text = run_cli(["report", "--data", str(data), "--since", "2030-01", "--out",
                          str(out)], capsys)
    assert code == 0, text
    assert backtested(out) == []  # not the default months instead
    assert "no month with every contract decided from 2030-01 on" in text


def test_a_month_no_contract_ends_in_says_so(data, env, capsys, tmp_path):
    code, text = run_cli(["report", "--data", str(data), "--month", "2020-01"], capsys)
    assert code == 0, text
    assert "skipped 2020-01: no contract ends this month" in text
    assert "undecided" not in text
