"""Accounts lost at a run's as-of date (last term ended, not renewed): not scored, not listed.

Revision ID: 0003_lost_accounts
Revises: 0002_workflows
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_lost_accounts"
down_revision: str | None = "0002_workflows"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``accounts.lost_on``: the end of the last term, when the account was lost by the run's
    as-of date; null for a customer."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("lost_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("lost_on")
