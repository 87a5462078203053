"""GET /v1/metrics says what `renewal metrics` says about the data directory: asked for months
after the usage ends, the activity rate of those months reads 0 for want of data, and the
answer must say so. A real uvicorn server on loopback, a real simulated data directory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from service_harness import build_service

from features.config import load_feature_config
from features.freshness import data_warnings
from features.source import open_source
from renewal.simulator import simulate
from service.api.schemas import MetricTable
from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.models import ScoringRun, utc_now

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflows"))
from workflow_factories import ThreadedServer  # noqa: E402

KEYS = {"metric", "by", "as_of", "rows", "warnings"}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[Path, date]:
    """Six months of simulated data and the usage's last day, after the seeded runs' as_of
    (LATEST): the metrics read the run of the newest as_of."""
    data = tmp_path_factory.mktemp("metrics-sim") / "data"
    simulate(data, accounts=40, seed=3, months=6, start=date(2025, 3, 1))
    end = pd.Timestamp(pd.read_parquet(data / "usage.parquet")["date"].max()).date()
    return data, end


@pytest.fixture
def served(tmp_path: Path, scorer, simulated) -> Iterator[tuple[str, object]]:
    """The seeded app whose latest scoring run read the simulated directory as of the
    usage's last day, on a real server; yields its base URL and the service."""
    data, end = simulated
    for service in build_service(tmp_path, scorer, n_accounts=12):
        with transaction(service.factory) as session:
            scores_db.record_run(session, ScoringRun(
                as_of=end, data_dir=str(data), model_name="renewal", model_version="1",
                accounts_scored=40, started_at=utc_now(), finished_at=utc_now()))
        with ThreadedServer(service.client.app) as server:
            yield server.base, service


def metric(base: str, key: str, path: str) -> dict:
    response = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {key}"},
                         timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == KEYS
    MetricTable.model_validate(body)
    return body


def test_months_after_the_usage_ends_come_with_the_cli_warning(served, simulated):
    base, service = served
    data, end = simulated
    later = end + timedelta(days=92)  # three month-ends past the data, still before today
    body = metric(base, service.keys.crm, f"/v1/metrics/activity?as_of={later}")
    assert body["as_of"] == later.isoformat()
    # What the warning is about: the months after the usage ends read as nobody active.
    after = [r for r in body["rows"] if r["month"] > end.strftime("%Y-%m")]
    assert after and all(r["monthly_activity_rate"] == 0.0 for r in after)
    # The CLI's sentences, word for word (renewal metrics prints data_warnings).
    cli = data_warnings(open_source(data), later, load_feature_config(None))
    assert body["warnings"] == cli
    assert len(cli) == 1 and cli[0].startswith(f"usage ends {end.isoformat()}, 92 day(s) "
                                               f"before as-of {later.isoformat()}")
    # Every metric and grouping at that date, and a CSM key too: it is the data's end.
    assert metric(base, service.keys.crm, f"/v1/metrics/renewal?by=segment&as_of={later}")[
        "warnings"] == cli
    assert metric(base, service.keys.csm_a, f"/v1/metrics/activation?as_of={later}")[
        "warnings"] == cli


def test_the_scoring_runs_day_has_no_warning(served, simulated):
    base, service = served
    _, end = simulated
    for path in ("/v1/metrics/activity", f"/v1/metrics/activity?as_of={end}",
                 "/v1/metrics/activation?by=segment"):
        body = metric(base, service.keys.crm, path)
        assert body["as_of"] == end.isoformat()
        assert body["warnings"] == [], path
        assert body["rows"]
    # by=csm, as the forecast and the save rate say it, is by=csm_id.
    by_csm = metric(base, service.keys.crm, "/v1/metrics/activation?by=csm")
    assert by_csm == metric(base, service.keys.crm, "/v1/metrics/activation?by=csm_id")
    assert by_csm["by"] == "csm_id"


def test_the_data_directory_is_read_for_warnings_once_per_scoring_run(served, simulated,
                                                                      monkeypatch):
    import features.freshness as freshness

    base, service = served
    _, end = simulated
    reads = []
    real = freshness.usage_span
    monkeypatch.setattr(freshness, "usage_span", lambda source: reads.append(1) or real(source))
    days = (end, end + timedelta(days=1), end + timedelta(days=30))
    answers = {
        (name, day): metric(base, service.keys.crm, f"/v1/metrics/{name}?as_of={day}")[
            "warnings"]
        for name in ("activity", "renewal")
        for day in days
    }
    assert len(reads) == 1
    assert all(answers["activity", day] == answers["renewal", day] for day in days)
    answers = {day: answers["activity", day] for day in days}
    # One read, each date its own sentence.
    assert answers[end] == []
    assert answers[end + timedelta(days=1)][0].startswith(
        f"usage ends {end.isoformat()}, 1 day(s) before")
    assert answers[end + timedelta(days=30)][0].startswith(
        f"usage ends {end.isoformat()}, 30 day(s) before")
    # A kept result is answered with its warnings again without reading anything.
    again = metric(base, service.keys.crm, f"/v1/metrics/activity?as_of={end + timedelta(days=30)}")
    assert again["warnings"] == answers[end + timedelta(days=30)] and len(reads) == 1
    # A new scoring run is new data: read again.
    with transaction(service.factory) as session:
        run = scores_db.latest_run(session)
        scores_db.record_run(session, ScoringRun(
            as_of=run.as_of, data_dir=run.data_dir, model_name="renewal", model_version="1",
            accounts_scored=40, started_at=utc_now(), finished_at=utc_now()))
    metric(base, service.keys.crm, f"/v1/metrics/activity?as_of={end}")
    assert len(reads) == 2
