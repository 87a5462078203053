"""An index of webhook events by type and account: a tier crossing is compared with the
crossings already told for the account's day, looked up for every account a run scores,
and a model swap with the model's earlier announcements (type alone).

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
    op.create_index("ix_webhook_events_type_account", "webhook_events", ["type", "account_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_type_account", table_name="webhook_events")
