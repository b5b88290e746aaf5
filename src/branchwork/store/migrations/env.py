"""Alembic environment: runs on the connection handed over by `branchwork.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from branchwork.store.tables import metadata

connection: Connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
