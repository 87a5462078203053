"""The tables of the score store, as typed SQLAlchemy 2 models.

Alembic migrations in ``service/migrations`` create these tables; the models are the
in-code view of them (a test checks that the two never drift apart).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: JSON on SQLite, JSONB on PostgreSQL.
JsonType = JSON().with_variant(JSONB(), "postgresql")
#: 64-bit ids on PostgreSQL; SQLite only auto-increments a plain INTEGER primary key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware (stored as UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every score-store table."""


class ScoringRun(Base):
    """One run of ``renewal score``: which data, which date, which model, how many accounts."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    data_dir: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    accounts_scored: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # What the run said about its data (null for runs stored before revision 0004): ops read
    # it over the API, not only on the console of whoever ran the job.
    accounts_lost: Mapped[int | None] = mapped_column(Integer, nullable=True)
    warnings: Mapped[list[str] | None] = mapped_column(JsonType, nullable=True)


class Account(Base):
    """The latest known attributes of an account: who owns it (auth) and what is at stake."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    csm_id: Mapped[str | None] = mapped_column(String(200), index=True)
    segment: Mapped[str | None] = mapped_column(String(200))
    arr: Mapped[float | None] = mapped_column(Float)
    seats: Mapped[int | None] = mapped_column(Integer)
    activated: Mapped[bool | None] = mapped_column(Boolean)
    past_window_not_activated: Mapped[bool | None] = mapped_column(Boolean)
    as_of: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    #: End of the last term when the account was lost by ``as_of`` (not renewed): such an
    #: account is not scored and not served (service.lost_accounts); null for a customer.
    lost_on: Mapped[date | None] = mapped_column(Date)
    #: The customer's display name (the data directory's optional ``accounts.name``, PII):
    #: shown to the account's readers, never logged; null when the data has none. Text, not a
    #: bounded string: a long legal name must not fail a scoring run on PostgreSQL.
    name: Mapped[str | None] = mapped_column(Text)


class Score(Base):
    """One score of one account as of one date by one model version (the score history)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "as_of", "model_version", name="uq_scores_account_asof_model"
        ),
        Index("ix_scores_account_asof", "account_id", "as_of"),
        Index("ix_scores_as_of", "as_of"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[date] = mapped_column(Date)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    probability: Mapped[float] = mapped_column(Float)
    heuristic_probability: Mapped[float | None] = mapped_column(Float)
    risk_tier: Mapped[str] = mapped_column(String(16))
    drivers: Mapped[dict[str, Any]] = mapped_column(JsonType)
    features: Mapped[dict[str, Any]] = mapped_column(JsonType)
    trigger: Mapped[str] = mapped_column(String(32), default="batch")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class HealthInput(Base):
    """A CSM's judgement of an account, kept forever as an audit trail (author = key id)."""

    __tablename__ = "health_inputs"
    __table_args__ = (Index("ix_health_inputs_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(200))
    effective_date: Mapped[date] = mapped_column(Date)
    exec_sponsor_active: Mapped[bool | None] = mapped_column(Boolean)
    core_process_live: Mapped[bool | None] = mapped_column(Boolean)
    csm_score: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``id`` is the public handle used in audits."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    csm_id: Mapped[str | None] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class UiSession(Base):
    """A signed-in ops web page (service/ui). Only the SHA-256 of the session's random token
    is stored, so reading this table signs nobody in; signing out deletes the row, which is
    what makes a copied cookie useless."""

    __tablename__ = "ui_sessions"
    __table_args__ = (
        Index("ix_ui_sessions_key_id", "key_id"),
        Index("ix_ui_sessions_expires_at", "expires_at"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("api_keys.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
