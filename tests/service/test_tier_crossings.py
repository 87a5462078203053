"""Tier crossings told to webhook subscribers follow the account's tier through same-day
re-scores (each replaces that day's score), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from service.db import scores as scores_db
from service.db.engine import make_session_factory, transaction
from service.db.workflow_models import WebhookEvent
from service.workflows.webhooks.events import emit_score_events

D0, D1, D2 = date(2025, 5, 31), date(2025, 6, 30), date(2025, 7, 31)
TIER_PROBABILITY = {"low": 0.9, "medium": 0.6, "high": 0.3}
START = datetime(2025, 7, 1, tzinfo=UTC)


def score(session, account: str, as_of: date, tier: str, step: int) -> list[WebhookEvent]:
    """Write (or replace: same account, day and model) one score, as the scoring job and the
    health-input re-score do, and store its events in the same transaction."""
    scores_db.upsert_scores(session, [{
        "account_id": account, "as_of": as_of, "model_name": "renewal", "model_version": "1",
        "probability": TIER_PROBABILITY[tier], "heuristic_probability": None,
        "risk_tier": tier, "drivers": {"risk_drivers": [], "protective_factors": []},
        "features": {"past_window_not_activated": False}, "trigger": "rescore",
        "created_at": START + timedelta(minutes=step),
    }])
    return [e for e in emit_score_events(session, drop_points=100, account_ids=[account])
            if e.type == "risk_tier_crossed"]


def crossings(factory, account: str) -> list[tuple[str, str, str, str]]:
    with factory() as session:
        events = session.scalars(select(WebhookEvent).where(
            WebhookEvent.account_id == account, WebhookEvent.type == "risk_tier_crossed"
        ).order_by(WebhookEvent.id))
        return [(e.payload["as_of"], e.payload["previous_risk_tier"], e.payload["risk_tier"],
                 e.dedupe_key) for e in events]


def test_the_last_crossing_told_is_the_tier_after_same_day_rescores(engine):
    """Low the day before; that day medium, then high, then medium again. Compared with the
    day before only, the second low>medium was a duplicate and never sent: the subscriber
    kept "high". Each crossing is told against the tier last told that day."""
    factory = make_session_factory(engine)
    account = "acc:7"  # a colon in the id must not confuse anything
    with transaction(factory) as session:
        assert score(session, account, D0, "low", 0) == []  # nothing to compare with
    steps = [("medium", "low"), ("high", "medium"), ("medium", "high")]
    for step, (tier, told_before) in enumerate(steps, start=1):
        with transaction(factory) as session:
            [event] = score(session, account, D1, tier, step)
        assert (event.payload["previous_risk_tier"], event.payload["risk_tier"]) == (
            told_before, tier)
    with transaction(factory) as session:  # storing again tells nothing new
        assert emit_score_events(session, drop_points=100) == []
    with transaction(factory) as session:  # back to the day before's tier: told too
        [back] = score(session, account, D1, "low", 4)
    assert back.payload["direction"] == "better"
    assert back.payload["previous_as_of"] == D1.isoformat()
    with transaction(factory) as session:  # a re-score that changes nothing tells nothing
        assert score(session, account, D1, "low", 5) == []
    with transaction(factory) as session:  # the next day compares with the newest of D1
        [next_day] = score(session, account, D2, "medium", 6)
    assert next_day.payload["previous_as_of"] == D1.isoformat()
    key = f"risk_tier_crossed:{account}"
    assert crossings(factory, account) == [
        ("2025-06-30", "low", "medium", f"{key}:2025-06-30:low>medium"),
        ("2025-06-30", "medium", "high", f"{key}:2025-06-30:medium>high#1"),
        ("2025-06-30", "high", "medium", f"{key}:2025-06-30:high>medium#2"),
        ("2025-06-30", "medium", "low", f"{key}:2025-06-30:medium>low#3"),
        ("2025-07-31", "low", "medium", f"{key}:2025-07-31:low>medium"),
    ]


def test_crossings_of_one_account_do_not_count_for_another(engine):
    """The day's count is per account: another account's first crossing keeps the plain key,
    and an account whose id extends the first's (``acc:7:2025-06-30``) is not mixed in."""
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        for account in ("acc:7", "acc:7:2025-06-30"):
            score(session, account, D0, "low", 0)
        score(session, "acc:7", D1, "medium", 1)
        score(session, "acc:7", D1, "high", 2)
        [other] = score(session, "acc:7:2025-06-30", D1, "high", 3)
    assert other.dedupe_key == "risk_tier_crossed:acc:7:2025-06-30:2025-06-30:low>high"
    assert other.payload["previous_risk_tier"] == "low"
