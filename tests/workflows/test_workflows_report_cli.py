"""``renewal report`` as a user runs it: the console script on a simulated data directory,
a model directory and a score store with interventions; the JSON report's backtest agrees
with the contracts table, and the save rate counts the interventions recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from renewal.datadir import read_table
from renewal.simulator import simulate

pytestmark = pytest.mark.slow
RENEWAL = str(Path(sys.executable).parent / "renewal")
MONTHS = ["2025-03", "2025-04"]


def save_model_dir(scorer, path: Path) -> None:
    """The scorer as the project's MLflow pyfunc, saved to a directory (``--model DIR``)."""
    import joblib
    import mlflow.pyfunc

    from training.pyfunc import SCORER_ARTIFACT, RenewalPyfunc

    with tempfile.TemporaryDirectory() as tmp:
        joblib.dump(scorer, Path(tmp) / "scorer.joblib")
        mlflow.pyfunc.save_model(
            str(path), python_model=RenewalPyfunc(top_k=3),
            artifacts={SCORER_ARTIFACT: str(Path(tmp) / "scorer.joblib")},
        )


def record_interventions(url: str, rows: list[tuple[str, str, float]]) -> None:
    from service.db.engine import make_engine, make_session_factory, transaction
    from service.db.migrate import upgrade
    from service.db.workflow_models import Intervention

    engine = make_engine(url)
    upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        for account_id, playbook, probability in rows:
            session.add(Intervention(
                account_id=account_id, csm_id="csm-1", author="k1", playbook=playbook,
                note=None, assigned_at=datetime(2025, 1, 15, tzinfo=UTC),
                probability_at_assignment=probability, score_as_of=date(2024, 12, 31),
                model_version="1"))
    engine.dispose()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, scorer) -> dict:
    root = tmp_path_factory.mktemp("report")
    simulate(root / "data", accounts=300, seed=3, months=18)
    save_model_dir(scorer, root / "model")
    contracts = read_table(root / "data", "contracts")
    ending = contracts[pd.to_datetime(contracts["end_date"]).dt.strftime("%Y-%m") == MONTHS[0]]
    picked = ending["account_id"].astype(str).head(4).tolist()
    url = f"sqlite:///{root / 'store.db'}"
    record_interventions(url, [(a, "exec-reengage", 0.5) for a in picked])
    env = {**os.environ, "RENEWAL_DATABASE_URL": url, "RENEWAL_TRACKING_URI": "http://127.0.0.1:9"}
    out = root / "report.json"
    args = ["report", "--data", str(root / "data"), "--model", str(root / "model"),
            "--draws", "2000", "--out", str(out)]
    for month in MONTHS:
        args += ["--month", month]
    done = subprocess.run([RENEWAL, *args], env=env, cwd=root, capture_output=True, text=True,
                          timeout=600)
    return {"root": root, "done": done, "out": out, "contracts": contracts, "picked": picked,
            "env": env}


def test_report_backtests_the_months_asked_against_the_contracts(setup):
    done = setup["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ARR interval covered the actual in" in done.stdout
    report = json.loads(setup["out"].read_text())
    months = report["forecast_backtest"]["months"]
    assert [m["month"] for m in months] == MONTHS
    contracts = setup["contracts"].assign(
        start=pd.to_datetime(setup["contracts"]["start_date"]),
        end=pd.to_datetime(setup["contracts"]["end_date"]),
    )
    for m in months:
        forecast_on = pd.Timestamp(m["forecast_on"])
        assert forecast_on < pd.Timestamp(f"{m['month']}-01")  # made ahead of the month
        due = contracts[(contracts["end"].dt.strftime("%Y-%m") == m["month"])
                        & (contracts["start"] <= forecast_on)]
        renewed = due[due["renewed"].astype(bool)]
        assert m["contracts"] == len(due) > 0
        assert 0 < len(renewed) < len(due)
        assert m["actual_logos"] == len(renewed)
        assert m["actual_renewed_arr"] == pytest.approx(renewed["arr"].sum(), abs=0.01)
        low, high = m["renewed_arr_interval"]
        assert low <= m["expected_renewed_arr"] <= high


def test_report_counts_the_recorded_interventions_in_the_save_rate(setup):
    report = json.loads(setup["out"].read_text())
    by_playbook = {g["group"]: g for g in report["save_rate"]["playbook"]}
    group = by_playbook["exec-reengage"]
    assert group["accounts_assigned"] == len(setup["picked"])
    assert group["decided"] == len(setup["picked"])  # their contracts ended in March 2025
    assert group["expected_renewals"] == pytest.approx(0.5 * len(setup["picked"]))
    renewed = setup["contracts"][setup["contracts"]["account_id"].astype(str).isin(
        setup["picked"])]
    march = renewed[pd.to_datetime(renewed["end_date"]).dt.strftime("%Y-%m") == MONTHS[0]]
    assert group["actual_renewals"] == int(march["renewed"].astype(bool).sum())


def test_report_without_a_model_is_a_clear_error(setup, tmp_path):
    done = subprocess.run(
        [RENEWAL, "report", "--data", str(setup["root"] / "data"), "--out",
         str(tmp_path / "r.json")],
        env={**setup["env"], "RENEWAL_MODELS_DIR": str(tmp_path / "none")},
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "no model" in (done.stdout + done.stderr)
    assert not (tmp_path / "r.json").exists()
