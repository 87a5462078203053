"""Webhook events: detected from the score history, stored with one pending delivery per
interested subscriber in the caller's transaction (an outbox), delivered later.

Emitting is idempotent: every event has a ``dedupe_key`` (e.g. one tier crossing per account,
as_of and direction), so re-running the scoring job or calling an emitter twice stores
nothing new. Payloads carry ids, dates and numbers only: never a CSM's note.

A tier crossing compares the latest score with the tier subscribers were last told for that
as_of (its latest ``risk_tier_crossed`` event), or, before any, with the newest score of an
earlier as_of. So a subscriber's last tier is the account's tier even when a re-score the
same day (which replaces that day's score) goes low → medium → high → medium: compared with
the day before only, the second "low>medium" would be deduplicated away.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from sqlalchemy import func, select
from sqlalchemy import insert as sqlalchemy_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db.chunks import chunks, chunks_or_all
from service.db.models import Score, utc_now
from service.db.workflow_models import WebhookDelivery, WebhookEvent, WebhookSubscription

EventType = Literal[
    "risk_tier_crossed", "probability_dropped", "activation_window_missed", "model_promoted",
    "survey_follow_up_needed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
TIER_RANK = {"low": 0, "medium": 1, "high": 2}  # risk of NOT renewing


@dataclass(frozen=True)
class NewEvent:
    """An event to store: its type, dedupe key, account (if any) and JSON payload."""

    type: str
    dedupe_key: str
    payload: dict[str, Any]
    account_id: str | None = None


@dataclass(frozen=True)
class ScorePoint:
    """What event detection needs of one stored score."""

    account_id: str
    as_of: date
    probability: float
    risk_tier: str
    past_window_not_activated: bool | None
    model_version: str


@dataclass(frozen=True)
class AnnouncedTier:
    """The tier crossings already stored for an account's latest as_of: how many, and the
    last one's score (the tier its subscribers were last told)."""

    count: int
    last: ScorePoint


def _before(point: ScorePoint) -> dict[str, Any]:
    return {
        "previous_as_of": point.as_of.isoformat(),
        "previous_probability": round(point.probability, 4),
        "previous_risk_tier": point.risk_tier,
    }


def score_events(
    previous: ScorePoint | None,
    current: ScorePoint,
    drop_points: float,
    announced: AnnouncedTier | None = None,
) -> list[NewEvent]:
    """The events between an account's previous score and its current one (pure).

    ``previous``: the newest score of an earlier as_of (drops and missed windows compare
    with it). ``announced``: the tier crossings already stored for ``current.as_of``; the
    tier compares with the last of them, else with ``previous``. The n-th crossing of a day
    (n > 1) gets ``#n-1`` on its key: the first keeps the key it always had."""
    events: list[NewEvent] = []
    account, as_of = current.account_id, current.as_of.isoformat()
    base = {
        "account_id": account,
        "as_of": as_of,
        "probability": round(current.probability, 4),
        "risk_tier": current.risk_tier,
        "model_version": current.model_version,
    }
    told = announced.last if announced is not None else previous
    if told is not None and told.risk_tier != current.risk_tier:
        worse = TIER_RANK.get(current.risk_tier, 0) > TIER_RANK.get(told.risk_tier, 0)
        key = f"risk_tier_crossed:{account}:{as_of}:{told.risk_tier}>{current.risk_tier}"
        if announced is not None:
            key += f"#{announced.count}"
        events.append(
            NewEvent(
                "risk_tier_crossed",
                key,
                {**base, **_before(told), "direction": "worse" if worse else "better"},
                account,
            )
        )
    if previous is not None:
        before = _before(previous)
        drop = 100.0 * (previous.probability - current.probability)
        # "Drops more than N points" (issue 8): exactly N is not enough; the tolerance keeps
        # 0.80 -> 0.70 (10.000000000000009 points in floats) at exactly 10.
        if drop > drop_points + 1e-9:
            events.append(
                NewEvent(
                    "probability_dropped",
                    f"probability_dropped:{account}:{as_of}",
                    {**base, **before, "drop_points": round(drop, 2),
                     "threshold_points": drop_points},
                    account,
                )
            )
    was_missed = previous is not None and previous.past_window_not_activated is True
    if current.past_window_not_activated is True and not was_missed:
        events.append(
            NewEvent(
                "activation_window_missed",
                f"activation_window_missed:{account}",
                {**base, "past_window_not_activated": True},
                account,
            )
        )
    return events


def model_promoted_event(
    name: str, version: str, previous_version: str | None, alias: str | None = None,
    repeat: int = 0,
) -> NewEvent:
    """The event of a new model being served (call after a reload that swapped models).

    One event per swap from ``previous_version`` to ``version``: every worker of a server
    makes the same swap (one event), while a rollback to a version served before (v3 → v4
    → v3) is a swap of its own and is announced (keyed on the version alone, it was not).
    ``repeat``: how many times this same swap was announced before (v3 → v4 again after a
    rollback), ``#repeat`` on the key."""
    suffix = f"#{repeat}" if repeat else ""
    return NewEvent(
        "model_promoted",
        f"model_promoted:{name}:{previous_version}>{version}{suffix}",
        {"model": name, "version": version, "previous_version": previous_version,
         "alias": alias},
    )


#: Rows per statement when storing events (well under SQLite's bound-parameter limit).
STORE_CHUNK = 500


def latest_two_points(
    session: Session, account_ids: Sequence[str] | None = None
) -> dict[str, tuple[ScorePoint | None, ScorePoint]]:
    """Per account: the newest score of an earlier as_of (or None) and the newest score."""
    rank = (
        func.dense_rank()
        .over(partition_by=Score.account_id, order_by=Score.as_of.desc())
        .label("as_of_rank")
    )
    inner = select(
        Score.account_id,
        Score.as_of,
        Score.probability,
        Score.risk_tier,
        Score.model_version,
        Score.created_at,
        Score.id,
        Score.features["past_window_not_activated"].as_boolean().label("missed"),
        rank,
    )
    out: dict[str, tuple[ScorePoint | None, ScorePoint]] = {}
    for chunk in chunks_or_all(account_ids):
        stmt = inner if chunk is None else inner.where(Score.account_id.in_(chunk))
        sub = stmt.subquery()
        rows = session.execute(
            select(sub).where(sub.c.as_of_rank <= 2).order_by(sub.c.created_at, sub.c.id)
        )
        newest: dict[tuple[str, int], ScorePoint] = {}
        for row in rows:  # later rows (newer writes) overwrite older ones of the same as_of
            newest[(row.account_id, row.as_of_rank)] = ScorePoint(
                row.account_id, row.as_of, float(row.probability), row.risk_tier,
                None if row.missed is None else bool(row.missed), row.model_version,
            )
        for (account, rank_value), point in newest.items():
            if rank_value == 1:
                out[account] = (newest.get((account, 2)), point)
    return out


def announced_tiers(
    session: Session, latest: dict[str, date]
) -> dict[str, AnnouncedTier]:
    """Per account: the ``risk_tier_crossed`` events already stored for the as_of given
    (oldest first by id, so the last is the newest)."""
    by_day: dict[date, list[str]] = {}
    for account, as_of in latest.items():
        by_day.setdefault(as_of, []).append(account)
    out: dict[str, AnnouncedTier] = {}
    for as_of, accounts in by_day.items():
        for chunk in chunks(accounts):
            rows = session.execute(
                select(WebhookEvent.account_id, WebhookEvent.payload)
                .where(
                    WebhookEvent.type == "risk_tier_crossed",
                    WebhookEvent.account_id.in_(list(chunk)),
                    WebhookEvent.payload["as_of"].as_string() == as_of.isoformat(),
                )
                .order_by(WebhookEvent.id)
            )
            for account, payload in rows:
                seen = out.get(account)
                last = ScorePoint(account, as_of, float(payload["probability"]),
                                  str(payload["risk_tier"]), None,
                                  str(payload.get("model_version", "")))
                out[account] = AnnouncedTier(1 if seen is None else seen.count + 1, last)
    return out


def detect_score_events(
    session: Session, drop_points: float, account_ids: Sequence[str] | None = None
) -> list[NewEvent]:
    """Events of every account's latest score against its previous one (read only)."""
    points = latest_two_points(session, account_ids)
    announced = announced_tiers(
        session, {account: current.as_of for account, (_, current) in points.items()}
    )
    events: list[NewEvent] = []
    for account, (previous, current) in points.items():
        events.extend(score_events(previous, current, drop_points, announced.get(account)))
    return events


def store_events(session: Session, events: Sequence[NewEvent]) -> list[WebhookEvent]:
    """Persist new events (known dedupe keys are skipped) and queue their deliveries.

    Set-based, so a scoring run of many accounts stays cheap: one look-up of the known keys
    and one multi-row insert per chunk; ``ON CONFLICT DO NOTHING`` still guards against a
    concurrent writer storing the same key in between."""
    if not events:
        return []
    unique: dict[str, NewEvent] = {}
    for event in events:
        unique.setdefault(event.dedupe_key[:300], event)
    known: set[str] = set()
    for chunk in chunks(list(unique), STORE_CHUNK):
        known.update(session.scalars(
            select(WebhookEvent.dedupe_key).where(WebhookEvent.dedupe_key.in_(list(chunk)))
        ))
    fresh = [(key, event) for key, event in unique.items() if key not in known]
    if not fresh:
        return []
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utc_now()
    new_ids: list[int] = []
    for chunk in chunks(fresh, STORE_CHUNK):
        statement = (
            insert(WebhookEvent)
            .values([
                {
                    "event_id": "evt_" + uuid.uuid4().hex,
                    "type": event.type,
                    "dedupe_key": key,
                    "account_id": event.account_id,
                    "payload": event.payload,
                    "created_at": now,
                }
                for key, event in chunk
            ])
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(WebhookEvent.id)
        )
        new_ids.extend(session.scalars(statement))
    stored: list[WebhookEvent] = []
    for chunk in chunks(sorted(new_ids), STORE_CHUNK):
        stored.extend(session.scalars(
            select(WebhookEvent).where(WebhookEvent.id.in_(list(chunk))).order_by(WebhookEvent.id)
        ))
    subscriptions = list(
        session.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True)))
    )
    deliveries = [
        {
            "event_id": row.id,
            "subscription_id": subscription.id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "attempt_log": [],
            "created_at": now,
        }
        for row in stored
        for subscription in subscriptions
        if row.type in subscription.events
    ]
    for chunk in chunks(deliveries, STORE_CHUNK):
        session.execute(sqlalchemy_insert(WebhookDelivery), list(chunk))
    session.flush()
    return stored


def emit_score_events(
    session: Session, drop_points: float, account_ids: Sequence[str] | None = None
) -> list[WebhookEvent]:
    """Detect and store the events of the latest scores. Call in the transaction that wrote
    the scores (the scoring job, a re-score) or right after it; idempotent."""
    return store_events(session, detect_score_events(session, drop_points, account_ids))


def emit_model_promoted(
    session: Session, name: str, version: str, previous_version: str | None,
    alias: str | None = None,
) -> list[WebhookEvent]:
    """Store a model_promoted event, unless the model's latest one already announced
    ``version``: every worker of a server makes the swap, one event tells it. A swap made
    again later (v3 → v4, rolled back to v3, then v4 again) is announced again."""
    told = session.execute(
        select(WebhookEvent.payload)
        .where(WebhookEvent.type == "model_promoted",
               WebhookEvent.payload["model"].as_string() == name)
        .order_by(WebhookEvent.id)
    ).scalars().all()
    if told and told[-1].get("version") == version:
        return []
    repeat = sum(1 for p in told if (p.get("previous_version"), p.get("version"))
                 == (previous_version, version))
    return store_events(
        session, [model_promoted_event(name, version, previous_version, alias, repeat)])
