"""Subscriptions and the delivery log: create, list, rotate a secret, disable, read, re-queue."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import utc_now
from service.db.workflow_models import WebhookDelivery, WebhookEvent, WebhookSubscription
from service.workflows.webhooks.signing import new_secret


def create_subscription(
    session: Session, url: str, events: Sequence[str], created_by: str,
    secret: str | None = None, description: str | None = None,
) -> WebhookSubscription:
    """Store a subscription; without ``secret`` a fresh one is generated (shown once)."""
    row = WebhookSubscription(
        id="whk_" + secrets.token_hex(8),
        url=url,
        events=list(dict.fromkeys(events)),
        secret=secret or new_secret(),
        description=description,
        active=True,
        created_by=created_by,
        created_at=utc_now(),
    )
    session.add(row)
    session.flush()
    return row


def list_subscriptions(
    session: Session, include_disabled: bool = False
) -> list[WebhookSubscription]:
    stmt = select(WebhookSubscription).order_by(WebhookSubscription.created_at)
    if not include_disabled:
        stmt = stmt.where(WebhookSubscription.active.is_(True))
    return list(session.scalars(stmt))


def get_subscription(session: Session, subscription_id: str) -> WebhookSubscription | None:
    return session.get(WebhookSubscription, subscription_id)


#: Secrets replaced that may still sign at once (rotations within one overlap).
MAX_PREVIOUS_SECRETS = 5


def rotate_secret(row: WebhookSubscription, keep_previous: timedelta,
                  secret: str | None = None) -> datetime | None:
    """A new signing secret (``secret``, or a fresh one); returns until when the one it
    replaces still signs deliveries (None: ``keep_previous`` is zero, a leaked secret, and
    every previous secret stops at once).

    Secrets replaced earlier and still in their overlap keep signing until their own time: a
    second rotation inside the overlap (a retried request whose answer was lost) dropped the
    secret the receiver still held (found by review). Call it with the row locked."""
    now = utc_now()
    until = now + keep_previous if keep_previous > timedelta(0) else None
    kept = [] if until is None else [{"secret": row.secret, "until": until.isoformat()},
                                     *_in_overlap(row, now)]
    row.previous_secrets = kept[:MAX_PREVIOUS_SECRETS]
    row.secret = secret or new_secret()
    return until


def secrets_in_overlap(row: WebhookSubscription, now: datetime) -> list[str]:
    """The previous secrets still signing at ``now``, the most recently replaced first."""
    return [entry["secret"] for entry in _in_overlap(row, now)]


def _in_overlap(row: WebhookSubscription, now: datetime) -> list[dict[str, str]]:
    return [entry for entry in (row.previous_secrets or [])
            if datetime.fromisoformat(entry["until"]) > now and entry["secret"] != row.secret]


def disable_subscription(session: Session, row: WebhookSubscription) -> WebhookSubscription:
    """Stop delivering to it; pending deliveries are cancelled, the log stays."""
    if row.active:
        row.active = False
        row.disabled_at = utc_now()
        for delivery in session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.subscription_id == row.id, WebhookDelivery.status == "pending"
            )
        ):
            delivery.status = "cancelled"
    return row


def deliveries(
    session: Session, subscription_id: str, status: str | None = None, limit: int = 100,
    before_id: int | None = None,
) -> list[tuple[WebhookDelivery, WebhookEvent]]:
    """A subscription's delivery log, newest first, with each delivery's event."""
    stmt = (
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return [(d, e) for d, e in session.execute(stmt)]


def requeue(session: Session, delivery: WebhookDelivery, now: datetime | None = None) -> None:
    """Send a failed delivery again (attempts continue counting; the log keeps the old ones).

    A delivery a worker holds a lease on is being sent right now: its lease is kept, else a
    second worker would claim and send it at the same time (a duplicate the receiver sees).
    """
    now = now or utc_now()
    leased = delivery.status == "pending" and delivery.locked_until is not None and (
        delivery.locked_until > now
    )
    delivery.status = "pending"
    delivery.next_attempt_at = now
    if not leased:
        delivery.locked_until = None
