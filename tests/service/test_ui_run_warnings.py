"""The ops page's risk list shows the caveats of the run behind its scores (the warnings
`GET /v1/scoring-runs` serves), so nobody acts on the list without them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service_harness import LATEST, sign_in_page

from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.models import ScoringRun

STALE = "usage ends 2025-06-20, 10 day(s) before as-of 2025-06-30: those days count as idle"


def record(service, as_of, warnings):
    with transaction(service.factory) as session:
        scores_db.record_run(session, ScoringRun(
            as_of=as_of, data_dir="/srv/data", model_name="renewal", model_version="1",
            accounts_scored=60, accounts_lost=0, warnings=warnings,
            started_at=datetime.now(UTC), finished_at=datetime.now(UTC)))


def page(service, key) -> str:
    """The risk list as a person signed in with ``key`` sees it (the page's own sign-in)."""
    client = service.client
    signed_in = sign_in_page(client, key)
    assert signed_in.status_code == 200 and "Risk list" in signed_in.text, signed_in.text[:300]
    response = client.get("/ui/risk-list")
    assert response.status_code == 200, response.text[:300]
    assert "<h1>Risk list</h1>" in response.text  # the page, not the sign-in form
    return response.text


def test_the_risk_list_shows_the_warnings_of_the_run_behind_its_scores(service):
    assert 'id="run-warnings"' not in page(service, service.keys.csm_a)  # the seeded runs: none
    record(service, LATEST, [STALE, "the model was trained with 7 input(s) <b>"])
    shown = page(service, service.keys.csm_a)
    assert 'id="run-warnings"' in shown and STALE in shown
    assert "7 input(s) &lt;b&gt;" in shown  # text, never markup


def test_a_newer_run_than_the_listed_scores_is_not_theirs(service):
    """A run recorded for another date (its scores not the ones listed) lends no caveat."""
    record(service, LATEST + timedelta(days=1), [STALE])
    assert 'id="run-warnings"' not in page(service, service.keys.crm)


def test_the_list_stays_up_when_the_runs_cannot_be_read(service, monkeypatch):
    """The list is served from memory; a database that fails the caveats' query must not
    take the page down with it."""
    from sqlalchemy.exc import OperationalError

    import service.ui.routes.risk_list as risk_list

    def down(principal, ctx, limit):  # noqa: ARG001 (the route's own parameters)
        raise OperationalError("select", {}, Exception("connection refused"))

    record(service, LATEST, [STALE])
    monkeypatch.setattr(risk_list, "get_scoring_runs", down)
    shown = page(service, service.keys.crm)
    assert 'id="run-warnings"' not in shown and "acc-000" in shown
