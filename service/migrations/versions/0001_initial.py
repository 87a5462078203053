"""The score store: scoring runs, accounts snapshot, score history, health inputs, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "scoring_runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("data_dir", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("accounts_scored", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_scoring_runs_as_of", "scoring_runs", ["as_of"])
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("csm_id", sa.String(200), nullable=True),
        sa.Column("segment", sa.String(200), nullable=True),
        sa.Column("arr", sa.Float(), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("activated", sa.Boolean(), nullable=True),
        sa.Column("past_window_not_activated", sa.Boolean(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_accounts_csm_id", "accounts", ["csm_id"])
    op.create_table(
        "scores",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("heuristic_probability", sa.Float(), nullable=True),
        sa.Column("risk_tier", sa.String(16), nullable=False),
        sa.Column("drivers", JSON_TYPE, nullable=False),
        sa.Column("features", JSON_TYPE, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint(
            "account_id", "as_of", "model_version", name="uq_scores_account_asof_model"
        ),
    )
    op.create_index("ix_scores_account_asof", "scores", ["account_id", "as_of"])
    op.create_index("ix_scores_as_of", "scores", ["as_of"])
    op.create_table(
        "health_inputs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("exec_sponsor_active", sa.Boolean(), nullable=True),
        sa.Column("core_process_live", sa.Boolean(), nullable=True),
        sa.Column("csm_score", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_index(
        "ix_health_inputs_account_created", "health_inputs", ["account_id", "created_at"]
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("csm_id", sa.String(200), nullable=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
    )


def downgrade() -> None:
    """Drop every table (loses all data: only for development)."""
    for table in ("api_keys", "health_inputs", "scores", "accounts", "scoring_runs"):
        op.drop_table(table)
