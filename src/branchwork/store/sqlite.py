"""The stdlib sqlite3 executor: the embedded default, with no SQLAlchemy import.

Each thread gets its own connection (WAL, `synchronous=NORMAL`, `foreign_keys=ON`,
`busy_timeout=30000`) in autocommit mode. A write transaction starts with `BEGIN IMMEDIATE`, so
it takes the write lock up front and never has to upgrade a read snapshot (which SQLite refuses
without waiting); a read is one statement, which SQLite runs on its own consistent snapshot.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from branchwork.domain.errors import StoreError
from branchwork.store.executor import Action, Params, Row, error_for

BUSY_TIMEOUT_S = 30
_PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",  # first: the others may have to wait
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


class SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        return self._conn.execute(sql, params or {}).fetchall()

    def run(self, sql: str, params: Params | None = None) -> int:
        return self._conn.execute(sql, params or {}).rowcount

    def many(self, sql: str, params: Sequence[Params]) -> None:
        self._conn.executemany(sql, params)


class SqliteExecutor:
    """Connections to one SQLite file, one per thread."""

    dialect = "sqlite"

    def __init__(self, url: str, path: str) -> None:
        if path in ("", ":memory:") or path.startswith("file:"):
            raise StoreError(
                f"database URL {url!r} names no file; use sqlite:///PATH (an in-memory "
                "database would not be shared between connections)"
            )
        self.url = url
        self.path = Path(path).expanduser()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._generation = 0

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "generation", -1) == self._generation:
            conn: sqlite3.Connection = local.conn
            return conn
        conn = _connect(self.path)
        with self._lock:
            self._open.append(conn)
            local.conn, local.generation = conn, self._generation
        return conn

    @contextmanager
    def read(self) -> Iterator[SqliteTx]:
        conn = self._conn()
        with _translated("read"):
            yield SqliteTx(conn)

    @contextmanager
    def write(self) -> Iterator[SqliteTx]:
        conn = self._conn()
        with _translated("written"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def revision(self) -> str | None:
        conn = self._conn()
        with _translated("read"):
            try:
                found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        return str(found[0][0]) if found else None

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            connections, self._open = self._open, []
        for conn in connections:
            conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error_for("unavailable", "opened", exc) from exc
    with _translated("opened"):
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            for pragma in _PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def _translated(action: Action) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise error_for("refused", action, exc) from exc
    except sqlite3.OperationalError as exc:
        raise error_for("unavailable", action, exc) from exc
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # a programming error: let it be seen as one
            raise
        raise error_for("corrupt", action, exc) from exc
