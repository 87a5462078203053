"""A webhook's previous signing secrets, still signed with until their own time (rotation).

Revision ID: 0008_webhook_secret_rotation
Revises: 0007_account_names
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_webhook_secret_rotation"
down_revision: str | None = "0007_account_names"
branch_labels: str | None = None
depends_on: str | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """``previous_secrets``: after a rotation, ``[{"secret", "until"}, ...]``; deliveries carry
    a signature with each until its time, so a receiver can switch without losing any."""
    op.add_column("webhook_subscriptions",
                  sa.Column("previous_secrets", JSON_TYPE, nullable=True))


def downgrade() -> None:
    """Forget the previous secrets (deliveries are then signed with the current one only).

    A plain ``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35+), not Alembic's batch mode: that
    rebuilds the table on SQLite, and dropping the old copy cascaded to every delivery of the
    log through ``webhook_deliveries.subscription_id`` (found by review)."""
    op.execute("ALTER TABLE webhook_subscriptions DROP COLUMN previous_secrets")
