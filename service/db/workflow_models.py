"""Tables of the CS workflows (interventions, webhooks), on the score store's declarative Base.

Migration ``0002_workflows`` creates them; like ``service.db.models`` these classes are the
in-code view of that schema and must not drift from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.models import Base, BigId, JsonType, UtcDateTime, utc_now


class Intervention(Base):
    """A save attempt: who (key id), when, which playbook, the probability at that moment."""

    __tablename__ = "interventions"
    __table_args__ = (
        Index("ix_interventions_account_assigned", "account_id", "assigned_at"),
        Index("ix_interventions_csm", "csm_id"),
        Index("ix_interventions_playbook", "playbook"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    csm_id: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(64))
    playbook: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    probability_at_assignment: Mapped[float] = mapped_column(Float)
    score_as_of: Mapped[date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(100))


class WebhookSubscription(Base):
    """A subscriber: URL, the events it wants and the secret its payloads are signed with.

    The secret is stored as given (an HMAC needs it); only admins can read the table's rows
    through the API and the secret is shown once, at creation.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JsonType)
    secret: Mapped[str] = mapped_column(String(200))
    #: After rotations, the secrets replaced that still sign until their time:
    #: ``[{"secret": ..., "until": ISO time}, ...]`` (null or empty: none).
    previous_secrets: Mapped[list[dict[str, str]] | None] = mapped_column(JsonType)
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebhookEvent(Base):
    """An event, stored before anyone is told about it; ``dedupe_key`` makes emitting twice
    (a re-run of the scoring job) a no-op."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_created", "created_at"),
        Index("ix_webhook_events_type_account", "type", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    account_id: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class WebhookDelivery(Base):
    """One event for one subscriber: its state, attempts and the log of each attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_events.id", ondelete="CASCADE")
    )
    subscription_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
