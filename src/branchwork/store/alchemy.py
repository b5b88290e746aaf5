"""The SQLAlchemy executor: PostgreSQL and any URL that names a driver (`sqlite+pysqlite://`).

It runs the same text SQL as the sqlite3 executor, through `text()`; the engine (`engine.py`)
makes SQLite write transactions take the lock at BEGIN, as the sqlite3 executor does. For a
SQLite file the file is checked and created as on the sqlite3 path (`sqlite.prepare_file`: a
directory, a zero-length file refused) and driver errors get the same one-line messages; the
read-only fallback of the sqlite3 executor is not repeated here (a read-only data directory is
reported, not read).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import TextClause, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from branchwork.domain.errors import StoreError
from branchwork.store.engine import WRITE, make_engine, sqlite_file
from branchwork.store.errors import Action, refused, server_error, sqlite_error
from branchwork.store.executor import Params, Row
from branchwork.store.sqlite import prepare_file


@lru_cache(maxsize=512)
def _text(sql: str) -> TextClause:
    return text(sql)


class AlchemyTx:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        return [tuple(row) for row in self._conn.execute(_text(sql), dict(params or {}))]

    def run(self, sql: str, params: Params | None = None) -> int:
        return self._conn.execute(_text(sql), dict(params or {})).rowcount

    def many(self, sql: str, params: Sequence[Params]) -> None:
        self._conn.execute(_text(sql), [dict(p) for p in params])

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        names = ", ".join(f":{c}" for c in columns)
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({names})"  # noqa: S608
        self._conn.execute(_text(statement), [dict(zip(columns, r, strict=True)) for r in rows])


class AlchemyExecutor:
    def __init__(self, url: str, *, allow_empty: bool = False) -> None:
        self.url = url
        self.path = sqlite_file(url)  # None for a database server
        if self.path is not None:
            prepare_file(self.path, allow_empty=allow_empty)
        with self._translated("opened"):
            self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[AlchemyTx]:
        with self._translated("read"), self.engine.connect() as conn, conn.begin():
            yield AlchemyTx(conn)

    @contextmanager
    def write(self) -> Iterator[AlchemyTx]:
        with self._translated("written"), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield AlchemyTx(conn)

    def revision(self) -> str | None:
        with self._translated("read"), self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _translated(self, action: Action) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            error = translate(exc, action, self.url, self.path)
            if error is None:  # a programming error: let it be seen as one
                raise
            raise error from exc


def translate(exc: DBAPIError, action: Action, url: str, path: Path | None) -> StoreError | None:
    """The one-line `StoreError` for a SQLAlchemy driver error; None for a programming error.

    On a SQLite file the wrapped sqlite3 error is classified as on the sqlite3 path."""
    if path is not None and isinstance(exc.orig, sqlite3.Error):
        return sqlite_error(exc.orig, action, path)
    if isinstance(exc, IntegrityError):
        return refused(exc.orig or exc)
    if isinstance(exc, OperationalError):
        return server_error(action, url, exc.orig or exc)
    return None
