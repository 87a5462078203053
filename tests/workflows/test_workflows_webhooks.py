"""Signed webhooks against real receivers on loopback: retries with backoff, signatures,
idempotency keys, the delivery log, SSRF validation, events stored before delivery."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pytest
import workflow_factories as wf
from sqlalchemy import select

from service.config import ServiceSettings
from service.db.engine import transaction
from service.db.workflow_models import WebhookEvent
from service.predict import score_vectors
from service.scoring import store_scores
from service.workflows.webhooks.delivery import backoff_seconds
from service.workflows.webhooks.events import (
    ScorePoint,
    emit_model_promoted,
    emit_score_events,
    score_events,
)
from service.workflows.webhooks.signing import SignatureError, signature_header, verify
from service.workflows.webhooks.urls import UnsafeUrlError, validate_subscriber_url

D0, D1 = date(2025, 5, 31), date(2025, 6, 30)
LATEST = D1  # the seeded scoring run's as_of (conftest)


def point(p: float, tier: str, missed: bool | None = False, day: date = D1) -> ScorePoint:
    return ScorePoint("acc-1", day, p, tier, missed, "1")


def test_score_events_boundaries():
    events = score_events(point(0.80, "low", day=D0), point(0.6999, "medium"), drop_points=10)
    assert [e.type for e in events] == ["risk_tier_crossed", "probability_dropped"]
    assert events[0].payload["direction"] == "worse"
    # "More than N points": a drop of exactly 10 points (0.80 -> 0.70) is not one.
    assert score_events(point(0.80, "low", day=D0), point(0.70, "low"), 10) == []
    assert score_events(point(0.80, "low", day=D0), point(0.7001, "low"), 10) == []
    missed = score_events(point(0.6, "medium", day=D0), point(0.6, "medium", missed=True), 10)
    assert [e.type for e in missed] == ["activation_window_missed"]
    assert score_events(point(0.6, "medium", True, D0), point(0.6, "medium", True), 10) == []


def test_signature_round_trip_and_refusals():
    body = b'{"id":"evt_1"}'
    header = signature_header("s3cret-s3cret-s3cret", body, timestamp=1_700_000_000)
    assert verify("s3cret-s3cret-s3cret", header, body, now=1_700_000_100) == 1_700_000_000
    for secret, sent, now in [("wrong-wrong-wrong!", body, 1_700_000_100),
                              ("s3cret-s3cret-s3cret", body + b" ", 1_700_000_100),
                              ("s3cret-s3cret-s3cret", body, 1_700_001_000)]:
        with pytest.raises(SignatureError):
            verify(secret, header, sent, now=now)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost/x", "http://10.1.2.3/x", "http://192.168.0.1/x",
    "http://169.254.169.254/latest", "http://[::1]/x", "http://[::ffff:127.0.0.1]/x",
    "ftp://example.com/x", "http://user:pw@example.com/x", "http://0.0.0.0/x",
])
def test_unsafe_urls_are_refused(url):
    with pytest.raises(UnsafeUrlError):
        validate_subscriber_url(url, allow_private=False)


def test_public_literal_address_is_allowed_and_backoff_doubles(stack):
    assert validate_subscriber_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"
    s = stack.settings
    assert [backoff_seconds(n, s) for n in (1, 2, 3, 4)] == [0.05, 0.1, 0.2, 0.2]


def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_only_admins_subscribe_and_private_urls_need_the_setting(stack):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["model_promoted"]}
    with stack.client(stack.keys.csm_a) as client:
        assert client.post("/v1/webhooks", json=body).status_code == 403
    with stack.client(stack.keys.crm) as client:
        assert client.get("/v1/webhooks").status_code == 403
    with stack.client(stack.keys.admin) as client:
        bad = client.post("/v1/webhooks", json={**body, "events": ["nope"]})
        assert bad.status_code == 422
    stack.settings.webhook_allow_private_urls = False
    try:
        with stack.client(stack.keys.admin) as client:
            refused = client.post("/v1/webhooks", json=body)
        assert refused.status_code == 422 and refused.json()["type"].endswith("unsafe-url")
    finally:
        stack.settings.webhook_allow_private_urls = True


def score_a_worse_month(stack) -> list[WebhookEvent]:
    """Store a scoring run dated 30 days after the seeded one, with less activity and no
    sponsor, through ``service.scoring.store_scores``; returns the events it stored."""
    when = LATEST + timedelta(days=30)
    frame = wf.lever_frame(60, when, seed=2)
    frame["active_days_30d"] = np.maximum(frame["active_days_30d"] - 12, 0)
    frame["exec_sponsor_active"] = False
    scored = score_vectors(stack.model, frame, ServiceSettings(), top_k=3)
    store_scores(stack.factory, frame, scored, stack.model, when, str(stack.data_dir),
                 drop_points=10)
    with stack.factory() as session:
        return list(session.scalars(
            select(WebhookEvent).where(WebhookEvent.payload["as_of"].as_string()
                                       == when.isoformat())))


def test_a_receiver_that_fails_first_gets_everything_with_retries_and_signatures(stack):
    flaky = wf.Receiver(fail_first=2).start()
    checker = wf.Receiver(secret="a-very-secret-signing-key").start()
    try:
        with stack.client(stack.keys.admin) as client:
            one = client.post("/v1/webhooks", json={"url": flaky.url,
                                                    "events": ["risk_tier_crossed",
                                                               "probability_dropped"]})
            assert one.status_code == 201, one.text
            assert one.json()["secret"].startswith("whsec_")
            two = client.post("/v1/webhooks", json={
                "url": checker.url, "events": ["risk_tier_crossed", "model_promoted"],
                "secret": "a-very-secret-signing-key"})
            assert two.status_code == 201
            assert "secret" not in client.get("/v1/webhooks").json()["data"][0]
        # A real scoring run (the job's own write step) 30 days on, with activity fallen:
        # its tier crossings and drops are stored with the scores and reach the receivers.
        stored = score_a_worse_month(stack)
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "2", "1", "champion")
        assert {e.type for e in stored} >= {"risk_tier_crossed", "probability_dropped"}
        with transaction(stack.factory) as session:
            assert emit_score_events(session, drop_points=10) == []  # idempotent
        wanted = {e.event_id for e in stored if e.type in ("risk_tier_crossed",
                                                           "probability_dropped")}
        wait_for(lambda: {r["headers"]["idempotency-key"] for r in flaky.requests} >= wanted)
        crossings = {e.event_id for e in stored if e.type == "risk_tier_crossed"}
        wait_for(lambda: len(checker.requests) >= len(crossings) + 1)
        assert all(checker.verified)
        assert {b["type"] for b in checker.events()} == {"risk_tier_crossed", "model_promoted"}
        hook = one.json()["id"]
        with stack.client(stack.keys.admin) as client:
            def all_delivered():
                log = client.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 500}).json()
                return log if all(d["status"] == "delivered" for d in log["data"]) else None

            log = wait_for(all_delivered)
        assert log["count"] == len(wanted)
        retried = [d for d in log["data"] if d["attempts"] > 1]
        assert retried and retried[0]["attempt_log"][0]["status_code"] == 503
        # Each event reached the flaky receiver at least once, retries kept the same key.
        keys = [r["headers"]["idempotency-key"] for r in flaky.requests]
        assert set(keys) == wanted and len(keys) == len(wanted) + 2
        first = flaky.requests[0]["headers"]
        assert first["renewal-signature"].startswith("t=") and first["renewal-event"]
    finally:
        flaky.stop()
        checker.stop()


def test_a_receiver_that_stays_down_ends_failed_and_can_be_retried(stack):
    down = wf.Receiver(fail_first=10_000).start()
    try:
        with stack.client(stack.keys.admin) as client:
            hook = client.post("/v1/webhooks", json={"url": down.url,
                                                     "events": ["model_promoted"]}).json()["id"]
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "3", "2")
        with stack.client(stack.keys.admin) as client:
            def failed():
                data = client.get(f"/v1/webhooks/{hook}/deliveries").json()["data"]
                return data if data and data[0]["status"] == "failed" else None

            delivery = wait_for(failed)[0]
            assert delivery["attempts"] == stack.settings.webhook_max_attempts
            down.fail_first = 0
            retry = client.post(f"/v1/webhooks/{hook}/deliveries/{delivery['id']}/retry")
            assert retry.status_code == 202

            def delivered():
                data = client.get(f"/v1/webhooks/{hook}/deliveries").json()["data"]
                return data[0]["status"] == "delivered"

            wait_for(delivered)
            assert client.delete(f"/v1/webhooks/{hook}").status_code == 204
    finally:
        down.stop()
