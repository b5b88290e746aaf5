"""The executor protocol: how the store runs its SQL.

Two executors implement it: stdlib `sqlite3` (`store/sqlite.py`) and SQLAlchemy
(`store/alchemy.py`); `Store.open` picks one by URL. Both run the same text SQL of
`store/sql.py` and turn database errors into one-line `StoreError`s that name the database file,
the problem and the remedy (`store/errors.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from branchwork.store.errors import Action

__all__ = ["Action", "Executor", "Params", "Row", "Tx"]

Row = tuple[Any, ...]
Params = Mapping[str, Any]


class Tx(Protocol):
    """One transaction (or, for a read on SQLite, one connection in autocommit mode)."""

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run a statement and fetch every row it returns."""
        ...

    def run(self, sql: str, params: Params | None = None) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        ...

    def many(self, sql: str, params: Sequence[Params]) -> None:
        """Run one statement once per parameter set (`executemany`)."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Insert `rows`, tuples in `columns` order (names of ours, never input). On SQLite
        they are bound by position: no dict per row (the event log's appends, ~1 µs each)."""
        ...


class Executor(Protocol):
    url: str
    dialect: str  # "sqlite", "postgresql" …: decides how datetimes are stored (rows.codec_for)

    def read(self) -> AbstractContextManager[Tx]:
        """Reads: on SQLite each statement sees its own consistent snapshot."""
        ...

    def write(self) -> AbstractContextManager[Tx]:
        """A write transaction, serialized across processes, committed on success."""
        ...

    def revision(self) -> str | None:
        """The Alembic revision stored in the database, None for an empty database."""
        ...

    def close(self) -> None:
        """Release every connection; a later call opens new ones."""
        ...
