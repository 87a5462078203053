"""An index of webhook events by account and type: a tier crossing is compared with the
crossings already told for the account's day, looked up for every account a run scores.

Revision ID: 0005_event_account_index
Revises: 0004_run_warnings
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_event_account_index"
down_revision: str | None = "0004_run_warnings"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_events_account", "webhook_events", ["account_id", "type"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_account", table_name="webhook_events")
