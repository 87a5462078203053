"""What a scoring run said about its data: the accounts it left out as lost and its warnings.

Revision ID: 0004_run_warnings
Revises: 0003_lost_accounts
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_run_warnings"
down_revision: str | None = "0003_lost_accounts"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``scoring_runs.accounts_lost`` and ``scoring_runs.warnings`` (a JSON list of sentences);
    null for runs stored before this revision (unknown, not none)."""
    with op.batch_alter_table("scoring_runs") as batch:
        batch.add_column(sa.Column("accounts_lost", sa.Integer(), nullable=True))
        batch.add_column(sa.Column(
            "warnings", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scoring_runs") as batch:
        batch.drop_column("warnings")
        batch.drop_column("accounts_lost")
