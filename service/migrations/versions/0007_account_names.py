"""The customer's display name in the accounts snapshot, for the ops page and the API.

Revision ID: 0007_account_names
Revises: 0006_ui_sessions
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_account_names"
down_revision: str | None = "0006_ui_sessions"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``accounts.name``: the data directory's optional ``accounts.name`` as of the latest
    scoring run; null for accounts stored before this revision until the next run, and for
    data without names."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("name", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the names (the next scoring run after an upgrade stores them again)."""
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("name")
