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


def test_a_signing_secret_is_rotated_with_an_overlap_or_at_once(stack):
    """A leaked or aging secret is replaced without losing deliveries: for the overlap asked
    for, each delivery carries a signature with both secrets (two v1=), so the receiver may
    switch at its own pace; with 0 hours the old one stops signing at once. Before, the only
    way was to delete the subscription and subscribe again."""
    receiver = wf.Receiver().start()
    old, new, newest = "old-secret-0123456789", "new-secret-0123456789", "newest-secret-012345"
    try:
        with stack.client(stack.keys.admin) as client:
            hook = client.post("/v1/webhooks", json={"url": receiver.url, "secret": old,
                                                     "events": ["model_promoted"]}).json()["id"]
            rotated = client.post(f"/v1/webhooks/{hook}/secret",
                                  json={"secret": new, "keep_previous_hours": 24})
            assert rotated.status_code == 200, rotated.text
            body = rotated.json()
            assert body["id"] == hook and body["secret"] == new
            assert body["previous_secret_valid_until"] is not None
            assert "secret" not in client.get("/v1/webhooks").json()["data"][0]
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "2", "1", "champion")
        wait_for(lambda: len(receiver.requests) >= 1)
        first = receiver.requests[0]
        assert first["headers"]["renewal-signature"].count("v1=") == 2
        for secret in (old, new):  # a receiver on either secret accepts it
            verify(secret, first["headers"]["renewal-signature"], first["body"])

        # A second rotation inside the overlap (a retry whose answer was lost): the first
        # secret, which the receiver may still hold, keeps signing too (found by review).
        with stack.client(stack.keys.admin) as client:
            again = client.post(f"/v1/webhooks/{hook}/secret", json={}).json()
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "2b", "2", "champion")
        wait_for(lambda: len(receiver.requests) >= 2)
        retried = receiver.requests[1]
        assert retried["headers"]["renewal-signature"].count("v1=") == 3
        for secret in (old, new, again["secret"]):
            verify(secret, retried["headers"]["renewal-signature"], retried["body"])

        with stack.client(stack.keys.admin) as client:
            at_once = client.post(f"/v1/webhooks/{hook}/secret",
                                  json={"secret": newest, "keep_previous_hours": 0}).json()
        assert at_once["previous_secret_valid_until"] is None
        with transaction(stack.factory) as session:
            emit_model_promoted(session, "renewal", "3", "2", "champion")
        wait_for(lambda: len(receiver.requests) >= 3)
        second = receiver.requests[2]
        assert second["headers"]["renewal-signature"].count("v1=") == 1
        verify(newest, second["headers"]["renewal-signature"], second["body"])
        for gone in (old, new, again["secret"]):  # a leak: every earlier secret stops at once
            with pytest.raises(SignatureError):
                verify(gone, second["headers"]["renewal-signature"], second["body"])
    finally:
        receiver.stop()

    with stack.client(stack.keys.csm_a) as client:
        assert client.post(f"/v1/webhooks/{hook}/secret", json={}).status_code == 403
    with stack.client(stack.keys.admin) as client:
        assert client.post("/v1/webhooks/whk_nope/secret", json={}).status_code == 404
        for bad in ({"keep_previous_hours": 169}, {"keep_previous_hours": "24"},
                    {"keep_previous_hours": 1.5}, {"keep_previous_hours": True},
                    {"secret": "short"}, {"other": 1}):
            assert client.post(f"/v1/webhooks/{hook}/secret", json=bad).status_code == 422, bad
        # JSON has one number type: 2.0 is the integer 2 (refused before: found by fuzzing).
        assert client.post(f"/v1/webhooks/{hook}/secret",
                           json={"keep_previous_hours": 2.0}).status_code == 200
        assert client.delete(f"/v1/webhooks/{hook}").status_code == 204
        gone = client.post(f"/v1/webhooks/{hook}/secret", json={})
        assert gone.status_code == 409 and gone.json()["type"].endswith("webhook-disabled")


def test_the_documented_receiver_check_accepts_either_signature_of_a_rotation():
    """docs/workflows.md's verify() is what receivers copy: it read the header as a dict, so
    with two v1= values (a rotation) it kept the last and refused the new secret's."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text()
    snippet = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", text, re.S)
    assert snippet is not None
    documented: dict = {}
    exec(snippet.group(1), documented)  # noqa: S102 - our own documentation's code
    body = b'{"id": "evt_1"}'
    header = signature_header("new-secret-0123456789", body, previous=["old-secret-0123456789"])
    for secret in ("new-secret-0123456789", "old-secret-0123456789"):
        documented["verify"](secret, header, body)
        verify(secret, header, body)
    with pytest.raises(ValueError, match="bad signature"):
        documented["verify"]("another-secret-012345", header, body)
