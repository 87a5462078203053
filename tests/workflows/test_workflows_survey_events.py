"""The survey_follow_up_needed webhook event, emitted by a scoring run's store step: which
surveys are announced (age boundary, follow-up done, future, calm), once each, and never
with the customer's comment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import workflow_factories as wf
from sqlalchemy import select

from renewal.datadir import write_table
from service.config import ServiceSettings
from service.db.engine import transaction
from service.db.workflow_models import Intervention, WebhookDelivery, WebhookEvent
from service.predict import score_vectors
from service.scoring import store_scores
from service.workflows.survey_events import survey_alerts

LATEST = date(2025, 6, 30)  # the seeded scoring run's as_of (conftest)
WHEN = LATEST + timedelta(days=40)
SECRET = "CONFIDENTIAL-we-signed-with-a-competitor-9b1e"


def survey_events(stack) -> list[WebhookEvent]:
    with stack.factory() as session:
        return list(session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "survey_follow_up_needed")
            .order_by(WebhookEvent.id)))


def run_on(stack, as_of: date) -> None:
    frame = wf.lever_frame(60, as_of, seed=2)
    scored = score_vectors(stack.model, frame, ServiceSettings(), top_k=3)
    store_scores(stack.factory, frame, scored, stack.model, as_of, str(stack.data_dir),
                 drop_points=10, survey_alerts=survey_alerts(stack.data_dir, as_of,
                                                             stack.settings))


def test_recent_pending_surveys_are_announced_once_without_their_comment(stack):
    ids = wf.lever_frame(60, WHEN, seed=2)["account_id"].astype(str).tolist()
    rows = [
        (ids[0], 3, 3.0, "slow"),                  # bad score, 3 days before: announced
        (ids[1], 0, 9.0, SECRET),                  # a 9 naming a competitor: announced
        (ids[2], 14, 2.0, None),                   # 14 days: the last day announced
        (ids[3], 15, 2.0, None),                   # 15 days: too old
        (ids[4], 2, 1.0, "call me"),               # followed up on the survey's day
        (ids[5], -1, 0.0, "tomorrow"),             # dated after the as_of: not in yet
        (ids[6], 1, 9.0, "Core to our daily work."),  # calm
        ("never-scored", 1, 0.0, "who?"),          # not scored in this run
    ]
    frame = pd.DataFrame([{"account_id": a, "date": pd.Timestamp(WHEN - timedelta(days=d)),
                           "score": s, "comment": c} for a, d, s, c in rows])
    write_table(frame, stack.data_dir, "surveys", "parquet")
    with transaction(stack.factory) as session:
        session.add(Intervention(
            account_id=ids[4], csm_id=None, author="test", playbook="call", note=None,
            assigned_at=datetime.combine(WHEN - timedelta(days=2), datetime.min.time(), UTC),
            probability_at_assignment=0.5, score_as_of=WHEN, model_version="1"))
    with stack.client(stack.keys.admin) as client:
        hook = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                                 "events": ["survey_follow_up_needed"]})
        assert hook.status_code == 201, hook.text
    try:
        run_on(stack, WHEN)
        events = survey_events(stack)
        by_account = {e.account_id: e.payload for e in events}
        assert set(by_account) == {ids[0], ids[1], ids[2]}
        assert by_account[ids[0]]["reasons"] == ["score"]
        assert by_account[ids[0]]["days_waiting"] == 3
        assert by_account[ids[0]]["survey_date"] == (WHEN - timedelta(days=3)).isoformat()
        assert by_account[ids[1]]["reasons"] == ["comment"]
        # Not even which phrases: fragments of the customer's words, to an outside URL.
        assert all("alarm_phrases" not in e.payload for e in events)
        assert by_account[ids[2]]["days_waiting"] == 14
        assert all(SECRET not in str(e.payload) and "comment" not in e.payload for e in events)
        assert {"probability", "risk_tier", "model_version", "as_of"} <= set(by_account[ids[0]])
        with stack.factory() as session:  # queued for the subscriber, one each
            queued = session.scalars(select(WebhookDelivery.event_id).where(
                WebhookDelivery.subscription_id == hook.json()["id"])).all()
        assert sorted(queued) == sorted(e.id for e in events)

        # The same run again: nothing new. The next day's run: only the survey dated that
        # day, now in (ids[2]'s, 15 days old by then, was told the day before).
        run_on(stack, WHEN)
        assert [e.id for e in survey_events(stack)] == [e.id for e in events]
        run_on(stack, WHEN + timedelta(days=1))
        later = survey_events(stack)[len(events):]
        assert [(e.account_id, e.payload["days_waiting"]) for e in later] == [(ids[5], 0)]
    finally:
        with stack.client(stack.keys.admin) as client:
            client.delete(f"/v1/webhooks/{hook.json()['id']}")
        for old in stack.data_dir.glob("surveys.*"):
            old.unlink()


def test_a_run_without_a_surveys_table_announces_none(stack):
    for old in stack.data_dir.glob("surveys.*"):
        old.unlink()
    before = len(survey_events(stack))
    run_on(stack, WHEN + timedelta(days=2))
    assert len(survey_events(stack)) == before


def test_the_event_reads_the_surveys_the_follow_up_list_reads(stack, tmp_path, monkeypatch):
    """Found by review: with RENEWAL_OUTCOMES_DATA_DIR set, the list read its surveys while
    the scoring run's event read the scored directory's: an event for a survey the list did
    not show, or none for one it did."""
    ids = wf.lever_frame(60, WHEN, seed=2)["account_id"].astype(str).tolist()
    outcomes = tmp_path / "outcomes"
    outcomes.mkdir()
    write_table(pd.DataFrame([{"account_id": ids[10], "date": pd.Timestamp(WHEN),
                               "score": 1.0, "comment": None}]), outcomes, "surveys", "parquet")
    write_table(pd.DataFrame([{"account_id": ids[11], "date": pd.Timestamp(WHEN),
                               "score": 1.0, "comment": None}]),
                stack.data_dir, "surveys", "parquet")
    monkeypatch.setattr(stack.settings, "outcomes_data_dir", outcomes)
    try:
        before = len(survey_events(stack))
        run_on(stack, WHEN + timedelta(days=3))
        told = [e.account_id for e in survey_events(stack)[before:]]
        assert told == [ids[10]]
    finally:
        for old in stack.data_dir.glob("surveys.*"):
            old.unlink()

