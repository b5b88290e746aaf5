"""The executor protocol: how the store runs its SQL.

Two executors implement it: stdlib `sqlite3` (`store/sqlite.py`) and SQLAlchemy
(`store/alchemy.py`); `Store.open` picks one by URL. Both run the same text SQL of
`store/sql.py` and turn database errors into `StoreError` with the remedy (`error_for`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from branchwork.domain.errors import StoreError

Row = tuple[Any, ...]
Params = Mapping[str, Any]
Action = Literal["read", "written", "opened"]
ErrorKind = Literal["refused", "unavailable", "corrupt"]


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


def error_for(kind: ErrorKind, action: Action, exc: Exception) -> StoreError:
    """The `StoreError` for a driver error, its message ending with what to do."""
    if kind == "refused":
        return StoreError(
            f"the database refused the change: {exc}. Another process may have written the "
            "same row meanwhile; retry, and report it if it happens again"
        )
    if kind == "corrupt":
        return StoreError(
            f"the database could not be {action}: {exc}. It is not a Branchwork database or it "
            "is damaged; restore it from a backup or point BRANCHWORK_DATABASE_URL elsewhere"
        )
    return StoreError(
        f"the database could not be {action}: {exc}. Check that the data directory is "
        "writable and not on a network file system, then retry"
    )
