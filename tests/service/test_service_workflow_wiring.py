"""The customer-success workflows are part of the real app (create_app): their routes are
served and documented, GET renewal marks stale manual inputs by the feature config's rule,
a CSM's cohort metrics cover only its own accounts, and the score writers store webhook
events (the scoring run's delivery to a real receiver is in test_service_e2e)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from service_harness import LATEST, build_service
from sqlalchemy import select

from renewal.simulator import simulate
from service.api.schemas import HealthInputRecorded, Renewal
from service.db import scores as scores_db
from service.db.engine import transaction
from service.db.models import ScoringRun, utc_now
from service.db.workflow_models import WebhookEvent
from service.keys import create_key

WORKFLOW_PATHS = {
    "/v1/levers",
    "/v1/accounts/{account_id}/what-if",
    "/v1/accounts/{account_id}/renewal/history",
    "/v1/disagreements",
    "/v1/stale-inputs",
    "/v1/accounts/{account_id}/interventions",
    "/v1/save-rate",
    "/v1/forecast",
    "/v1/webhooks",
    "/v1/webhooks/{webhook_id}",
    "/v1/webhooks/{webhook_id}/deliveries",
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
}


def expected_inputs(age_days: float, stale_days: int, as_of: date = LATEST) -> dict:
    age = int(age_days)
    return {
        "stale": age > stale_days,
        "age_days": age,
        "last_input_on": (as_of - timedelta(days=age)).isoformat(),
        "never_surveyed": False,
    }


def test_the_workflows_are_served_and_documented_by_the_real_app(service):
    document = service.get("/openapi.json", service.keys.crm).json()
    assert set(document["paths"]) >= WORKFLOW_PATHS
    levers = service.get("/v1/levers", service.keys.crm)
    assert levers.status_code == 200 and levers.json()["count"] == 6
    history = service.get("/v1/accounts/acc-00000/renewal/history", service.keys.crm).json()
    assert history["count"] == 2  # the two seeded runs, newest first
    # The delivery worker runs with the app (settings on app.state, started by the lifespan).
    workflows = service.client.app.state.workflows
    assert workflows.worker is not None


def test_get_renewal_marks_inputs_older_than_90_days_stale(service):
    frame = service.frame
    ages = dict(zip(frame["account_id"], frame["health_input_age_days"], strict=True))
    assert any(a > 90 for a in ages.values()) and any(a <= 90 for a in ages.values())
    for account_id, age in ages.items():
        body = service.get(f"/v1/accounts/{account_id}/renewal", service.keys.crm).json()
        Renewal.model_validate(body)
        assert body["inputs"] == expected_inputs(age, 90), account_id


def test_post_score_marks_stale_inputs_as_get_renewal_does(service):
    frame = service.frame
    ids = list(frame["account_id"][:12])
    ages = dict(zip(frame["account_id"], frame["health_input_age_days"], strict=True))
    by_id = service.post("/v1/score", service.keys.crm, json={"account_ids": ids})
    assert by_id.status_code == 200, by_id.text
    for result in by_id.json()["results"]:
        assert result["inputs"] == expected_inputs(ages[result["account_id"]], 90)
    # A what-if on an account keeps the account's inputs and as_of; without an account
    # there is no as_of, hence no staleness to tell.
    what_if = service.post("/v1/score", service.keys.crm, json={"accounts": [
        {"account_id": ids[0], "features": {"active_days_30d": 20}},
        {"features": {"active_days_30d": 20}},
    ]})
    assert what_if.status_code == 200, what_if.text
    on_account, free = what_if.json()["results"]
    assert on_account["inputs"] == expected_inputs(ages[ids[0]], 90)
    assert free["inputs"] is None


def test_a_fresh_health_input_clears_the_stale_flag_and_no_input_is_stale(service):
    frame = service.frame
    stale = next(a for a, age in zip(frame["account_id"], frame["health_input_age_days"],
                                     strict=True) if age > 90)
    owner = service.frame.set_index("account_id").loc[stale, "csm_id"]
    assert owner in ("csm-a", "csm-b", "csm-c")
    put = service.put(f"/v1/accounts/{stale}/health-inputs", service.keys.admin,
                      json={"csm_score": 4})
    assert put.status_code == 200, put.text
    HealthInputRecorded.model_validate(put.json())
    inputs = put.json()["renewal"]["inputs"]
    assert inputs["stale"] is False and inputs["never_surveyed"] is False
    assert service.get(f"/v1/accounts/{stale}/renewal", service.keys.crm).json()["inputs"] == (
        inputs
    )
    # A score without any health input: never surveyed, hence stale.
    with transaction(service.factory) as session:
        scores_db.upsert_scores(session, [{
            "account_id": "acc-never", "as_of": LATEST, "model_name": "renewal",
            "model_version": "1", "probability": 0.5, "heuristic_probability": None,
            "risk_tier": "medium", "drivers": {"risk_drivers": [], "protective_factors": []},
            "features": {"active_days_30d": 3}, "trigger": "batch",
            "created_at": datetime.now(UTC),
        }])
    service.client.app.state.context.cache.reload_accounts(["acc-never"])
    never = service.get("/v1/accounts/acc-never/renewal", service.keys.crm).json()["inputs"]
    assert never == {"stale": True, "age_days": None, "last_input_on": None,
                     "never_surveyed": True}


def test_the_stale_age_comes_from_the_feature_config(tmp_path: Path, scorer):
    config = tmp_path / "features.toml"
    config.write_text("stale_input_days = 30\n")
    for service in build_service(tmp_path, scorer, n_accounts=12, feature_config=config):
        frame = service.frame
        assert any(30 < a <= 90 for a in frame["health_input_age_days"])
        for account_id, age in zip(frame["account_id"], frame["health_input_age_days"],
                                   strict=True):
            body = service.get(f"/v1/accounts/{account_id}/renewal", service.keys.crm).json()
            assert body["inputs"] == expected_inputs(age, 30), account_id
        stale_list = service.get("/v1/stale-inputs", service.keys.admin).json()
        assert stale_list["stale_input_days"] == 30  # one source for both


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("sim") / "data"
    simulate(data, accounts=60, seed=3, months=18)
    return data


def test_a_csm_reads_cohort_metrics_of_its_own_accounts_only(service, simulated):
    accounts = pd.read_parquet(simulated / "accounts.parquet")
    mine = accounts["csm_id"].value_counts().index[0]  # the largest book: rows everywhere
    with transaction(service.factory) as session:
        scores_db.record_run(session, ScoringRun(
            as_of=date(2025, 6, 30), data_dir=str(simulated), model_name="renewal",
            model_version="1", accounts_scored=len(accounts), started_at=utc_now(),
            finished_at=utc_now(),
        ))
        csm_key = create_key(session, "csm", "carol", mine)[1]
    for metric in ("activation", "activity", "renewal", "ndr"):
        everyone = service.get(f"/v1/metrics/{metric}?by=csm_id", service.keys.crm)
        assert everyone.status_code == 200, everyone.text
        all_rows = everyone.json()["rows"]
        groups = {r["csm_id"] for r in all_rows}
        assert mine in groups and len(groups) > 1, metric
        own = service.get(f"/v1/metrics/{metric}?by=csm_id", csm_key).json()["rows"]
        # Exactly the CSM's own group of the full table: nothing of the other CSMs' accounts.
        assert own == [r for r in all_rows if r["csm_id"] == mine], metric
    # Ungrouped, the CSM's activation counts its own signed accounts, not the whole book.
    own_total = service.get("/v1/metrics/activation", csm_key).json()["rows"]
    book_total = service.get("/v1/metrics/activation", service.keys.admin).json()["rows"]
    signed = accounts[pd.to_datetime(accounts["signed_at"]) <= pd.Timestamp("2025-06-30")]
    assert sum(r["accounts_signed"] for r in own_total) == (signed["csm_id"] == mine).sum()
    assert sum(r["accounts_signed"] for r in book_total) == len(signed)


BAD_JUDGEMENT = {"exec_sponsor_active": False, "core_process_live": False, "csm_score": 1}


def test_a_health_input_rescore_stores_its_webhook_events(service):
    """A re-score whose tier differs from both earlier scores makes a crossing the batch
    never stored: it must be in the outbox after the PUT (same transaction as the score),
    told against the batch's tier of that day (the tier subscribers last heard of)."""
    ids = service.frame["account_id"].tolist()
    what_if = service.post("/v1/score", service.keys.admin, json={"accounts": [
        {"account_id": a, "features": BAD_JUDGEMENT} for a in ids]}).json()["results"]
    with service.factory() as session:
        older = {a: scores_db.history(session, a, 2)[-1].risk_tier for a in ids}
    batch = {a: service.get(f"/v1/accounts/{a}/renewal", service.keys.admin).json()["risk_tier"]
             for a in ids}
    account, tier = next((r["account_id"], r["risk_tier"]) for r in what_if
                         if r["risk_tier"] not in (older[r["account_id"]],
                                                   batch[r["account_id"]]))
    # The batch's own crossing (when its tier left the older one) is the day's first.
    second = "#1" if batch[account] != older[account] else ""
    key = f"risk_tier_crossed:{account}:{LATEST}:{batch[account]}>{tier}{second}"
    with service.factory() as session:
        assert session.scalar(select(WebhookEvent).where(WebhookEvent.dedupe_key == key)) is None
    put = service.put(f"/v1/accounts/{account}/health-inputs", service.keys.admin,
                      json={**BAD_JUDGEMENT, "note": "sponsor left; private"})
    assert put.status_code == 200 and put.json()["renewal"]["risk_tier"] == tier
    with service.factory() as session:
        event = session.scalar(select(WebhookEvent).where(WebhookEvent.dedupe_key == key))
    assert event is not None and event.type == "risk_tier_crossed"
    assert event.payload["previous_risk_tier"] == batch[account]
    assert "private" not in str(event.payload)  # the note never leaves the audit trail
