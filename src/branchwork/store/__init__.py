"""Persistence: projects, sessions, the event log, snapshots, blobs, leases, state and secrets.

```
store.py      Store: the interface the service calls; every method one transaction
sql.py        the SQL text, written once, with named :params
rows.py       rows <-> domain values; datetimes per dialect; JSON-ready event dicts
executor.py   the Executor protocol
errors.py     StoreError subclasses; one-line messages (file, problem, remedy) for driver errors
sqlite.py     stdlib sqlite3 executor for sqlite:/// (no SQLAlchemy import)
alchemy.py    SQLAlchemy executor for every other URL
engine.py     SQLAlchemy engines (SQLite: WAL, write lock at BEGIN)
migrate.py    Alembic upgrades; HEAD_REVISION checked with one query
tables.py     the schema (SQLAlchemy Core); migrations/versions/ create exactly it
secrets.py    project secrets in 0600 files, never in the database
```
"""

from branchwork.store.errors import (
    DamagedDatabase,
    DatabaseFileError,
    EmptyDatabase,
    OutOfSpace,
    ReadOnlyDatabase,
    ReadOnlyDataDir,
    file_write_error,
)
from branchwork.store.secrets import SecretStore
from branchwork.store.store import Store

__all__ = [
    "DamagedDatabase",
    "DatabaseFileError",
    "EmptyDatabase",
    "OutOfSpace",
    "ReadOnlyDataDir",
    "ReadOnlyDatabase",
    "SecretStore",
    "Store",
    "file_write_error",
]
