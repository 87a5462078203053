"""GET /v1/scoring-runs: each `renewal score` run with what it said about its data (real app,
real SQLite store), and run_scoring keeping its warnings and lost count with the run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import service_factories as factories
from service_harness import LATEST

import service.scoring as scoring
from renewal.settings import Settings
from service.config import ServiceSettings
from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.models import ScoringRun

STALE = "usage ends 2025-06-20, 10 day(s) before as-of 2025-06-30: ..."


def test_runs_newest_first_with_their_warnings_and_the_path_for_admins_only(service):
    """The harness stored two runs (30 days apart, no warnings); a third says the usage ended
    early; one from before revision 0004 knows neither warnings nor lost accounts."""
    with transaction(service.factory) as session:
        scores_db.record_run(session, ScoringRun(
            as_of=LATEST - timedelta(days=60), data_dir="/srv/old", model_name="renewal",
            model_version="0", accounts_scored=5, started_at=datetime(2025, 1, 1, tzinfo=UTC),
            finished_at=datetime(2025, 1, 1, tzinfo=UTC)))
        scores_db.record_run(session, ScoringRun(
            as_of=LATEST, data_dir="/srv/customer/data", model_name="renewal", model_version="1",
            accounts_scored=58, accounts_lost=2, warnings=[STALE],
            started_at=datetime.now(UTC), finished_at=datetime.now(UTC)))

    body = service.get("/v1/scoring-runs", service.keys.crm).json()
    assert body["count"] == 4
    newest, before_0004, *seeded = body["data"]  # by run id: the order they were stored in
    assert newest["warnings"] == [STALE] and newest["accounts_lost"] == 2
    assert newest["data_dir"] == "data"  # not the server's path
    assert before_0004["warnings"] is None and before_0004["accounts_lost"] is None  # unknown
    assert before_0004["model_version"] == "0"
    assert [r["as_of"] for r in seeded] == [str(LATEST), str(LATEST - timedelta(days=30))]
    assert all(r["warnings"] == [] and r["accounts_lost"] == 0 for r in seeded)
    assert [r["run_id"] for r in body["data"]] == sorted((r["run_id"] for r in body["data"]),
                                                        reverse=True)

    csm = service.get("/v1/scoring-runs?limit=1", service.keys.csm_a).json()
    assert csm["count"] == 1 and csm["data"][0]["data_dir"] == "data"
    admin = service.get("/v1/scoring-runs?limit=1", service.keys.admin).json()
    assert admin["data"][0]["data_dir"] == "/srv/customer/data"
    assert service.get("/v1/scoring-runs?limit=0", service.keys.crm).status_code == 422
    assert service.get("/v1/scoring-runs").status_code == 401


def test_run_scoring_keeps_its_warnings_and_lost_count_with_the_run(tmp_path, monkeypatch):
    model = factories.loaded(factories.tiny_scorer())
    frame = factories.feature_frame(40, LATEST)
    lost = frame.iloc[:3].copy()
    customers = frame.iloc[3:].reset_index(drop=True)
    lost_on = pd.Series([pd.Timestamp(LATEST - timedelta(days=5))] * 3, index=lost.index)
    monkeypatch.setattr("features.validation.check_data_dir", lambda *_a, **_k: None)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    monkeypatch.setattr(scoring, "customer_features", lambda *_a, **_k: (
        customers.copy(), lost, lost_on, [STALE]))
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db")
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    summary = scoring.run_scoring(data_dir, LATEST, settings, ServiceSettings())
    assert summary.warnings == [STALE] and summary.lost_accounts == 3

    from service.db.engine import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        run = scores_db.latest_run(session)
    engine.dispose()
    assert run is not None and run.id == summary.run_id
    assert run.warnings == [STALE] and run.accounts_lost == 3 and run.accounts_scored == 37
    assert Path(run.data_dir) == data_dir.resolve()
    assert date.fromisoformat(str(run.as_of)) == LATEST


@pytest.fixture
def ten_customers(monkeypatch) -> pd.DataFrame:
    """run_scoring on ten feature vectors with the tiny model, no account lost and no data
    check (the data directory holds only what a test writes into it); returns the vectors."""
    model = factories.loaded(factories.tiny_scorer())
    customers = factories.feature_frame(10, LATEST)
    monkeypatch.setattr("features.validation.check_data_dir", lambda *_a, **_k: None)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    monkeypatch.setattr(scoring, "customer_features", lambda *_a, **_k: (
        customers.copy(), customers.iloc[:0], None, []))
    return customers


def test_run_scoring_announces_a_recent_bad_survey_of_the_data_directory(tmp_path,
                                                                        ten_customers):
    """The job reads the surveys of the directory it scores: a bad answer two days before the
    as_of becomes one survey_follow_up_needed event, stored with the run's scores."""
    from sqlalchemy import select

    from renewal.datadir import write_table
    from service.db.engine import make_engine, make_session_factory
    from service.db.workflow_models import WebhookEvent

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    account = str(ten_customers["account_id"].iloc[0])
    write_table(pd.DataFrame({"account_id": [account, account],
                              "date": pd.to_datetime([LATEST - timedelta(days=40),
                                                      LATEST - timedelta(days=2)]),
                              "score": [9.0, 3.0], "comment": ["great", None]}),
                data_dir, "surveys", "parquet")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db")

    scoring.run_scoring(data_dir, LATEST, settings, ServiceSettings())

    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        events = session.scalars(select(WebhookEvent).where(
            WebhookEvent.type == "survey_follow_up_needed")).all()
        payloads = [(e.account_id, e.payload["survey_date"], e.payload["score"]) for e in events]
    engine.dispose()
    assert payloads == [(account, str(LATEST - timedelta(days=2)), 3.0)]


def test_the_scoring_merge_reads_same_day_inputs_as_the_features_do(tmp_path):
    """Found by review: the scoring job's merge took the data directory's last row of a day
    (the safest reading here), where the features take the minimum; and it kept a note-only
    row as an input. The API's value of a day still wins over the export's."""
    from renewal.datadir import write_table

    export = pd.DataFrame({
        "account_id": ["a", "a", "a", "b"],
        "date": pd.to_datetime(["2024-06-01", "2024-06-01", "2024-06-29", "2024-06-01"]),
        "exec_sponsor_active": pd.array([False, True, None, True], dtype="boolean"),
        "core_process_live": pd.array([False, True, None, True], dtype="boolean"),
        "csm_score": pd.array([1, 5, None, 4], dtype="Int64"),
        "note": [None, None, "left a voicemail", None],
    })
    write_table(export, tmp_path, "health_inputs", "csv")
    api = pd.DataFrame({"account_id": ["b"], "date": pd.to_datetime(["2024-06-01"]),
                        "exec_sponsor_active": pd.array([None], dtype="boolean"),
                        "core_process_live": pd.array([None], dtype="boolean"),
                        "csm_score": pd.array([2], dtype="Int64")})
    merged = scoring.merged_health_inputs(tmp_path, api).set_index("account_id")
    a = merged.loc["a"]
    assert (bool(a["exec_sponsor_active"]), bool(a["core_process_live"]), a["csm_score"]) == (
        False, False, 1)  # one row: the day's minimum; the note-only row is gone
    b = merged.loc["b"]
    assert bool(b["exec_sponsor_active"]) is True and b["csm_score"] == 2  # the API's score


def test_a_broken_surveys_table_in_the_outcomes_directory_stops_the_events_not_the_run(
        tmp_path, ten_customers):
    """The outcomes directory is not the one the run checked: its surveys table breaking the
    contract used to fail the whole scoring run after the scores were computed."""
    from renewal.datadir import write_table
    from service.workflows.config import WorkflowSettings

    data_dir, outcomes = tmp_path / "data", tmp_path / "outcomes"
    data_dir.mkdir()
    outcomes.mkdir()
    write_table(pd.DataFrame({"account_id": ["acc-00000"], "date": ["2025-06-28"],
                              "score": ["terrible"], "comment": ["a secret"]}),
                outcomes, "surveys", "csv")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db")

    summary = scoring.run_scoring(data_dir, LATEST, settings, ServiceSettings(),
                                  workflow_settings=WorkflowSettings(outcomes_data_dir=outcomes))
    assert summary.accounts == 10
    said = [w for w in summary.warnings if w.startswith("survey_follow_up_needed events not")]
    assert said == ["survey_follow_up_needed events not sent: the surveys table of outcomes "
                    "breaks the data contract (1 problem(s)); run `renewal validate` on that "
                    "directory"]
    assert "a secret" not in str(summary.warnings) and "acc-00000" not in str(summary.warnings)
