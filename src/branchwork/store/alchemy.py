"""The SQLAlchemy executor: PostgreSQL and any URL that names a driver (`sqlite+pysqlite://`).

It runs the same text SQL as the sqlite3 executor, through `text()`; the engine (`engine.py`)
makes SQLite write transactions take the lock at BEGIN, as the sqlite3 executor does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import TextClause, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from branchwork.store.engine import WRITE, make_engine
from branchwork.store.executor import Action, Params, Row, error_for


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


class AlchemyExecutor:
    def __init__(self, url: str) -> None:
        self.url = url
        with _translated("opened"):
            self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[AlchemyTx]:
        with _translated("read"), self.engine.connect() as conn, conn.begin():
            yield AlchemyTx(conn)

    @contextmanager
    def write(self) -> Iterator[AlchemyTx]:
        with _translated("written"), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield AlchemyTx(conn)

    def revision(self) -> str | None:
        with _translated("read"), self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated(action: Action) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise error_for("refused", action, exc) from exc
    except OperationalError as exc:
        raise error_for("unavailable", action, exc) from exc
    except DatabaseError as exc:
        if "not a database" not in str(exc):  # a programming error: let it be seen as one
            raise
        raise error_for("corrupt", action, exc) from exc
