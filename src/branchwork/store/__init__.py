"""Persistence: SQLAlchemy tables, Alembic migrations, the event log, blobs and secrets."""

from branchwork.store.secrets import SecretStore
from branchwork.store.store import Store

__all__ = ["SecretStore", "Store"]
