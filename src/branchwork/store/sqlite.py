"""The stdlib sqlite3 executor: the embedded default, with no SQLAlchemy import.

Each thread gets its own connection (WAL, `synchronous=NORMAL`, `foreign_keys=ON`,
`busy_timeout=30000`) in autocommit mode. A write transaction starts with `BEGIN IMMEDIATE`, so
it takes the write lock up front and never has to upgrade a read snapshot (which SQLite refuses
without waiting); a read is one statement, which SQLite runs on its own consistent snapshot.

The database file, before the first connection (`prepare_file`, also used by the SQLAlchemy
executor for a SQLite URL):
- a directory in its place, a path that cannot be reached or created: one-line `StoreError`;
- missing: created, under an exclusive `flock` of its directory, and at once given its header
  (`PRAGMA journal_mode=WAL` writes the first page), so a file Branchwork creates is empty only
  while that lock is held;
- zero-length: refused with `EmptyDatabase` unless `allow_empty` (for `branchwork doctor
  --rebuild`), after taking the same lock, so that a file another process is creating right now
  is waited for rather than mistaken for a lost one. Nothing is written to a refused file.

A data directory this user cannot write, or a full disk (decision): SQLite keeps a WAL
database's `-wal` and `-shm` files next to it and must create them even to read. A connection is
therefore opened read-write; when SQLite refuses that for want of write access or of room
(SQLITE_READONLY_*, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR_*, SQLITE_FULL: the `-shm` file
cannot be created or sized) it is opened `mode=ro`, which works while the `-wal`/`-shm` files
exist (another process has the database open; SQLite maps a read-only `-shm`); when no process
has it open (no `-wal` with frames, no mapped `-shm`), it is opened `immutable=1`: no locks and no
`-shm`, which is safe because then no process is writing the database. (A process with write
access that starts writing later is not seen by such a connection: the fallback serves reading a
data dir one cannot write, e.g. inspecting another user's, or looking around while the disk is
full, not sharing one.)
Reads work in every case; a write fails with `ReadOnlyDatabase` naming the directory to make
writable, or `OutOfSpace` when the disk is the reason, and closes the fallback connection so the
next call tries read-write again. `SqliteExecutor.mode` says how the newest connection was
opened.

Every driver error becomes a one-line `StoreError` (`store/errors.py`). A write that fails rolls
its transaction back (SQLite has often done it already after an I/O error; a connection whose
rollback fails too is closed and replaced), so what was committed before stays as it was.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Literal, NoReturn
from urllib.parse import quote

from branchwork.domain.errors import StoreError
from branchwork.store.errors import (
    Action,
    directory_in_place,
    empty_database,
    sqlite_error,
    unreachable,
)
from branchwork.store.executor import Params, Row

Mode = Literal["rw", "ro", "immutable"]

BUSY_TIMEOUT_S = 30
_PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",  # first: the others may have to wait
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_READ_ONLY_PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}",
    "PRAGMA foreign_keys=ON",
    "SELECT count(*) FROM sqlite_master",  # reads: fails here, not later, if this way cannot
)
_READ_ONLY_URIS: tuple[tuple[Mode, str], ...] = (
    ("ro", "?mode=ro"),
    ("immutable", "?mode=ro&immutable=1"),
)
_WAL_INDEX_PAGE = 32 * 1024

# Why a read-write connection may fail where a read-only one works: no write access to the file
# or its directory, or no room for the `-shm` file (a full disk, a file size limit).
_READ_ONLY_MAY_WORK = (
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
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

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        self._conn.executemany(_insert_sql(table, tuple(columns)), rows)


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


class SqliteExecutor:
    """Connections to one SQLite file, one per thread.

    The constructor checks the file and creates a missing one (`prepare_file`); `allow_empty`
    lets it initialise a zero-length file instead of refusing it.
    """

    dialect = "sqlite"

    def __init__(self, url: str, path: str, *, allow_empty: bool = False) -> None:
        if path in ("", ":memory:") or path.startswith("file:"):
            raise StoreError(
                f"database URL {url!r} names no file; use sqlite:///PATH (an in-memory "
                "database would not be shared between connections)"
            )
        self.url = url
        self.path = Path(path).expanduser()
        self.mode: Mode = "rw"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        self._generation = 0
        prepare_file(self.path, allow_empty=allow_empty)

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "generation", -1) == self._generation:
            conn: sqlite3.Connection = local.conn
            return conn
        conn, mode = _connect(self.path)
        with self._lock:
            self._open.append(conn)
            local.conn, local.generation, local.mode = conn, self._generation, mode
        self.mode = mode
        return conn

    @contextmanager
    def read(self) -> Iterator[SqliteTx]:
        conn = self._conn()
        with _translated("read", self.path):
            yield SqliteTx(conn)

    @contextmanager
    def write(self) -> Iterator[SqliteTx]:
        conn = self._conn()
        try:
            with _translated("written", self.path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield SqliteTx(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    self._roll_back(conn)
                    raise
        except StoreError:
            if self._local.mode != "rw":  # the next write tries read-write again
                self._discard(conn)
            raise

    def revision(self) -> str | None:
        conn = self._conn()
        with _translated("read", self.path):
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

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """End a failed write transaction; SQLite may have rolled it back already (after an
        I/O error or a full disk). A connection that cannot roll back is replaced."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._discard(conn)

    def _discard(self, conn: sqlite3.Connection) -> None:
        """Close this thread's connection; its next call opens a new one."""
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        self._local.generation = -1
        with suppress(sqlite3.Error):
            conn.close()


def prepare_file(path: Path, *, allow_empty: bool = False) -> None:
    """Check the database file before the first connection, and create it when missing.

    Raises `DatabaseFileError` for a directory in its place, `EmptyDatabase` for a zero-length
    file (unless `allow_empty`: then it is initialised as a new database), another `StoreError`
    when the path cannot be reached or created. A file that is already a database costs one
    `stat`.
    """
    if _state(path) == "file":
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unreachable(path, exc) from exc
    with _creation_lock(path.parent):
        state = _state(path)
        if state == "file":
            return
        if state == "empty" and not allow_empty:
            raise empty_database(path)
        with _translated("opened", path):
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:  # WAL is a property of the file: setting it writes the header page
                conn.execute("PRAGMA journal_mode=WAL").fetchall()
            finally:
                conn.close()


def _state(path: Path) -> Literal["missing", "empty", "file"]:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise unreachable(path, exc) from exc
    if stat.S_ISDIR(found.st_mode):
        raise directory_in_place(path)
    return "empty" if found.st_size == 0 else "file"


@contextmanager
def _creation_lock(directory: Path) -> Iterator[None]:
    """An exclusive `flock` of `directory` (no lock file left behind): serializes creating the
    database file with deciding that a zero-length one is not being created right now. Where
    the directory cannot be locked, the window it closes is the few microseconds between
    creating the file and writing its header."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _connect(path: Path) -> tuple[sqlite3.Connection, Mode]:
    """A connection to the database file: read-write, else read-only (see the module doc)."""
    try:
        return _open(path, _PRAGMAS), "rw"
    except sqlite3.Error as exc:
        if not _read_only_may_work(exc):
            _raise(exc, "opened", path)
        first = exc
    target = "file:" + quote(str(path.absolute()))
    for mode, query in _READ_ONLY_URIS:
        if mode == "immutable" and _in_use(path):
            break  # someone may be writing: an immutable view could be stale or torn
        try:
            return _open(target + query, _READ_ONLY_PRAGMAS, uri=True), mode
        except sqlite3.Error as exc:
            if not _read_only_may_work(exc):
                _raise(exc, "opened", path)
    _raise(first, "opened", path)


def _open(target: Path | str, pragmas: Sequence[str], *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=uri
    )
    try:
        for pragma in pragmas:
            conn.execute(pragma).fetchall()
    except BaseException:
        conn.close()
        raise
    return conn


def _read_only_may_work(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF in _READ_ONLY_MAY_WORK


def _in_use(path: Path) -> bool:
    """A process has the database open, or crashed with commits only in its `-wal`: the `-wal`
    holds frames, or the `-shm` is mapped (a live one has at least one 32 KiB wal-index page).
    Smaller ones are what a failed read-write open leaves behind (SQLite creates them, then
    cannot size the `-shm` on a full disk)."""
    for suffix, in_use in (("-wal", 1), ("-shm", _WAL_INDEX_PAGE)):
        try:
            if os.stat(f"{path}{suffix}").st_size >= in_use:
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return True  # cannot tell: assume it is
    return False


def _raise(exc: sqlite3.Error, action: Action, path: Path) -> NoReturn:
    error = sqlite_error(exc, action, path)
    if error is None:
        raise exc
    raise error from exc


@contextmanager
def _translated(action: Action, path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        _raise(exc, action, path)
