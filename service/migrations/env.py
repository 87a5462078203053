"""Alembic environment of the score store, run programmatically by ``service.db.migrate``.

The caller passes an open connection in ``config.attributes["connection"]``; there is no
alembic.ini and no URL in a file, so the same migrations run against SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

import service.db.workflow_models  # noqa: F401  (the workflow tables join Base.metadata)
from service.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.db.migrate (it passes a connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
