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


def test_an_input_recorded_while_the_run_computes_is_in_the_score_it_stores(tmp_path,
                                                                           monkeypatch):
    """Found by audit (PostgreSQL, two workers): a CSM's input recorded while `renewal score`
    computed re-scored the account on the spot, then the run stored its score, built without
    the input, as the account's newest: the input was lost from the served score until the
    next run. Now the run reads those accounts' judgement again, as the pipeline reads it
    (each input from the latest day it is filled in, export and API merged), and scores them
    again. The inputs here are written between the run's read and its store, as the API's
    PUT writes them (a committed transaction of its own).

    The data directory's export, as of LATEST (hand-computed below):
      late:   LATEST-40  sponsor true, process true, score 5
      older:  LATEST-2   score 2
      split:  LATEST-2   score 2 (no sponsor given)
    Inputs recorded during the run:
      late:   LATEST     sponsor false, score 1   -> sponsor false, process true, score 1, age 0
      older:  LATEST-7   score 5                  -> score 2 (the export's later day), age 2
      split:  LATEST-7   sponsor false            -> sponsor false (no later day has one),
                                                     score 2, age 2 (review's case)
    """
    from service.db.engine import make_engine, make_session_factory
    from service.db.health_inputs import add_health_input
    from service.db.models import HealthInput, Score
    from service.predict import score_records

    model = factories.loaded(factories.tiny_scorer())
    frame = factories.feature_frame(20, LATEST)
    late, older, split, other = (str(a) for a in frame["account_id"].iloc[:4])
    health = ["exec_sponsor_active", "core_process_live", "csm_score", "health_input_age_days"]
    frame[health] = frame[health].astype("object")
    frame.loc[0, health] = [True, True, 5.0, 40.0]  # what the pipeline read of the export
    frame.loc[1, health] = [None, None, 2.0, 2.0]
    frame.loc[2, health] = [None, None, 2.0, 2.0]
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame([
        {"account_id": late, "date": LATEST - timedelta(days=40), "exec_sponsor_active": True,
         "core_process_live": True, "csm_score": 5},
        {"account_id": older, "date": LATEST - timedelta(days=2), "csm_score": 2},
        {"account_id": split, "date": LATEST - timedelta(days=2), "csm_score": 2},
    ]).astype({"exec_sponsor_active": "boolean", "core_process_live": "boolean",
               "csm_score": "Int64"}).to_parquet(data / "health_inputs.parquet", index=False)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/store.db")
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    recorded = [(late, LATEST, {"csm_score": 1, "exec_sponsor_active": False}),
                (older, LATEST - timedelta(days=7), {"csm_score": 5}),
                (split, LATEST - timedelta(days=7), {"exec_sponsor_active": False})]

    def features_then_puts(*_a, **_k):
        with transaction(factory) as session:
            for account, day, values in recorded:
                add_health_input(session, HealthInput(
                    account_id=account, effective_date=day, author="key_csm",
                    created_at=datetime.now(UTC), **values))
        return frame.copy(), frame.iloc[:0], pd.Series(dtype="datetime64[ns]"), []

    monkeypatch.setattr("features.validation.check_data_dir", lambda *_a, **_k: None)
    monkeypatch.setattr(scoring, "load_batch_model", lambda *_a, **_k: model)
    monkeypatch.setattr(scoring, "customer_features", features_then_puts)
    scoring.run_scoring(data, LATEST, settings, ServiceSettings())

    with factory() as session:
        stored = {s.account_id: s for s in session.query(Score).filter(Score.as_of == LATEST)}
    engine.dispose()

    def judged(account: str) -> tuple:
        v = stored[account].features
        return (v["exec_sponsor_active"], v["core_process_live"], v["csm_score"],
                v["health_input_age_days"], v["health_input_stale"])

    assert judged(late) == (False, True, 1, 0, False)
    assert judged(older) == (None, None, 2, 2, False)
    assert judged(split) == (False, None, 2, 2, False)
    expected_vector = {**scoring.vectors_as_json(frame.iloc[:1])[0],
                       "exec_sponsor_active": False, "core_process_live": True,
                       "csm_score": 1, "health_input_age_days": 0,
                       "health_input_stale": False}
    assert stored[late].features == expected_vector
    [expected] = score_records(model, [expected_vector], ServiceSettings(), 3)
    assert stored[late].probability == pytest.approx(expected.probability)
    assert stored[late].trigger == "batch" and stored[late].drivers == expected.drivers
    # The other accounts are the run's own vectors, untouched.
    assert stored[other].features == scoring.vectors_as_json(frame.iloc[3:4])[0]


@pytest.mark.postgres
def test_a_re_score_waits_while_a_run_reads_or_stores(pg_schema_url, monkeypatch):
    """PostgreSQL: a run's read of the inputs and its store take the all-accounts lock; an
    input's re-score (``lock_account``) waits for it, so none commits in between (the other
    half of the fix above: the run's mark and its late inputs are then exact)."""
    import threading
    import time

    from sqlalchemy import text

    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade

    monkeypatch.setattr(scores_db, "STORE_WAIT_SECONDS", 60)  # waits here, however slow
    engine = make_engine(pg_schema_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    pid: list[int] = []
    locked = threading.Event()

    def re_score() -> None:
        with transaction(factory) as session:
            pid.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            scores_db.lock_account(session, "acc-1")
            locked.set()

    try:
        with transaction(factory) as run:
            scores_db.lock_all_accounts(run)
            writer = threading.Thread(target=re_score)
            writer.start()
            waiting = False
            for _ in range(200):  # until the re-score waits on the lock (at most ~10 s)
                if pid:
                    waiting = bool(run.execute(text(
                        "SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted "
                        "AND locktype = 'advisory'"), {"pid": pid[0]}).scalar_one())
                if waiting:
                    break
                time.sleep(0.05)
            assert waiting and not locked.is_set()
        writer.join(timeout=30)
        assert locked.is_set()
    finally:
        engine.dispose()


def test_a_new_run_is_picked_up_even_when_a_re_score_is_stamped_later(engine):
    """Found by audit: a re-score committed while a run stored its scores carried a later
    created_at than the run's rows; another worker's cache took it as its watermark, saw no
    row newer than that, and kept serving the previous run (another model version) until an
    unrelated write. A new run is now checked first."""
    from service.cache import ScoreCache
    from service.db.engine import make_session_factory
    from service.predict import score_vectors

    factory = make_session_factory(engine)
    settings = ServiceSettings()
    first, second = factories.loaded(factories.tiny_scorer(), "1"), factories.loaded(
        factories.tiny_scorer(seed=1), "2")
    frame = factories.feature_frame(6, LATEST)
    scoring.store_scores(factory, frame, score_vectors(first, frame, settings, 3), first,
                         LATEST, "/nonexistent-data-dir")
    worker = ScoreCache(factory, settings)
    assert worker.load() == 6
    # A row stamped after the next run's rows (a re-score committed while it stored, or a
    # writer's clock ahead); of an older as_of, so that it is nobody's latest score.
    re_scored = datetime.now(UTC) + timedelta(minutes=5)
    with transaction(factory) as session:
        scores_db.upsert_scores(session, [{
            "account_id": "acc-00003", "as_of": LATEST - timedelta(days=30),
            "model_name": "renewal",
            "model_version": "1", "probability": 0.25, "heuristic_probability": None,
            "risk_tier": "high", "drivers": {}, "features": {}, "trigger": "health_input",
            "created_at": re_scored}])
    assert worker.refresh() > 0  # the watermark is now the re-score's stamp

    scoring.store_scores(factory, frame, score_vectors(second, frame, settings, 3), second,
                         LATEST, "/nonexistent-data-dir")
    assert worker.refresh() > 0
    served = {e.account_id: e.model_version for e in worker.risk_order}
    assert set(served.values()) == {"2"}, served


@pytest.mark.postgres
def test_a_re_score_gives_up_on_a_long_store_with_a_clear_error(pg_schema_url, monkeypatch):
    """Found by review: a PUT waited for the whole store of a run (tens of seconds for
    200,000 accounts), holding a thread and a pooled connection; 16 of them made /readyz time
    out. It now waits STORE_WAIT_SECONDS, then is refused (the API: 503 with Retry-After),
    and its transaction is still usable (the savepoint took the timeout)."""
    from sqlalchemy import text

    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade

    monkeypatch.setattr(scores_db, "STORE_WAIT_SECONDS", 1)
    engine = make_engine(pg_schema_url)
    upgrade(engine)
    factory = make_session_factory(engine)
    try:
        with transaction(factory) as run:
            scores_db.lock_all_accounts(run)
            with factory() as session:
                with pytest.raises(scores_db.ScoresBeingStored, match="retry in a few"):
                    scores_db.lock_account(session, "acc-1")
                assert session.execute(text("SELECT 1")).scalar_one() == 1
                session.rollback()
        with transaction(factory) as session:  # the run has stored: the lock is free again
            session.execute(text("SET LOCAL lock_timeout = '7s'"))  # the operator's own
            scores_db.lock_account(session, "acc-1")
            timeout = session.execute(text("SELECT current_setting('lock_timeout')"))
            assert timeout.scalar_one() == "7s"  # only the wait for a run was bounded
    finally:
        engine.dispose()


def test_a_re_score_refused_during_a_store_is_a_503_with_retry_after(service, monkeypatch):
    """The API's answer when lock_account gives up (PostgreSQL; forced here on SQLite)."""
    import service.rescore as rescore

    def busy(*_args, **_kwargs):
        raise scores_db.ScoresBeingStored(
            "a scoring run is storing its scores: retry in a few seconds")

    monkeypatch.setattr(rescore.scores_db, "lock_account", busy)
    answer = service.put("/v1/accounts/acc-00000/health-inputs", service.keys.admin,
                         json={"csm_score": 2})
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"].endswith("scores-being-stored")
    assert int(answer.headers["retry-after"]) >= 1


def test_drivers_keep_their_documented_key_order_on_every_database(engine):
    """Found by audit: PostgreSQL's JSONB stores an object's keys by length, so GET renewal's
    drivers read value, feature, description, contribution there (feature, description,
    value, contribution on SQLite, in POST /v1/score and in the docs)."""
    import json

    from service.cache import DRIVER_KEYS, ScoreCache
    from service.db.engine import make_session_factory
    from service.predict import score_vectors

    factory = make_session_factory(engine)
    model = factories.loaded(factories.tiny_scorer())
    frame = factories.feature_frame(6, LATEST)
    scored = score_vectors(model, frame, ServiceSettings(), 3)
    scoring.store_scores(factory, frame, scored, model, LATEST, "/nonexistent-data-dir")
    cache = ScoreCache(factory, ServiceSettings())
    cache.load()
    seen = 0
    for entry in cache.risk_order:
        body = json.loads(entry.body)
        for side in ("risk_drivers", "protective_factors"):
            for driver in body["drivers"][side]:
                assert tuple(driver) == DRIVER_KEYS, driver
                seen += 1
    assert seen > 0
