"""A webhook's previous signing secret, still signed with until a set time (secret rotation).

Revision ID: 0008_webhook_secret_rotation
Revises: 0007_account_names
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_webhook_secret_rotation"
down_revision: str | None = "0007_account_names"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``previous_secret`` and ``previous_secret_until``: after a rotation, deliveries carry a
    signature with each secret until then, so a receiver can switch without losing any."""
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(200), nullable=True))
        batch.add_column(sa.Column("previous_secret_until", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    """Forget the previous secrets (deliveries are then signed with the current one only)."""
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
