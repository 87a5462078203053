"""Server-side sessions of the ops web page: the cookie holds a random token, not the API
key, and signing out deletes the session, so a copied cookie stops working.

Revision ID: 0006_ui_sessions
Revises: 0005_event_account_index
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_ui_sessions"
down_revision: str | None = "0005_event_account_index"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """``ui_sessions``: the SHA-256 of each session's token, its key and its lifetime."""
    op.create_table(
        "ui_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "key_id",
            sa.String(64),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
    )
    # By key: a key's sessions are found (and joined) through it; by expiry: sign-in purges.
    op.create_index("ix_ui_sessions_key_id", "ui_sessions", ["key_id"])
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop the table: every page signed in is signed out."""
    op.drop_index("ix_ui_sessions_expires_at", table_name="ui_sessions")
    op.drop_index("ix_ui_sessions_key_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")
