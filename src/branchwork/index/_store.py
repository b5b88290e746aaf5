"""The index's own SQLite file: schema, connection settings and the write primitives.

The index uses the stdlib `sqlite3` directly, not the SQLAlchemy store: FTS5 and its trigram
tokenizer are SQLite-only, and the index is a per-machine cache of git content (everything in it
but the context documents can be rebuilt from git), so it never needs PostgreSQL.

Concurrency: WAL mode (readers never wait for the writer), a 30 s busy timeout, and writes in
short `BEGIN IMMEDIATE` transactions of a few hundred blobs, so two processes can index at once.
Every write that depends on "is this blob new?" is decided inside the transaction (`INSERT …
ON CONFLICT … RETURNING`), so two processes indexing the same content never store it twice.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from branchwork.domain.errors import StoreError
from branchwork.index._chunks import Chunk
from branchwork.index._git import TreeEntry
from branchwork.index._languages import language_of

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_S = 30.0
_MAX_VARS = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs(
    id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
    size INTEGER NOT NULL, lines INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunk_meta(
    id INTEGER PRIMARY KEY, blob_id INTEGER NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, owned_end INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_meta_blob ON chunk_meta(blob_id, start_line);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(content, tokenize='trigram');
CREATE TABLE IF NOT EXISTS parsed(
    blob_id INTEGER NOT NULL, language TEXT NOT NULL, idents TEXT NOT NULL,
    PRIMARY KEY(blob_id, language)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbols(
    blob_id INTEGER NOT NULL, language TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, name_line INTEGER NOT NULL,
    container TEXT);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_blob ON symbols(blob_id, language);
CREATE TABLE IF NOT EXISTS paths(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, language TEXT);
CREATE TABLE IF NOT EXISTS views(
    id INTEGER PRIMARY KEY, tree TEXT NOT NULL UNIQUE, repo TEXT NOT NULL,
    symlinks INTEGER NOT NULL, submodules INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS views_repo ON views(repo, created_at);
CREATE TABLE IF NOT EXISTS view_files(
    view_id INTEGER NOT NULL, path_id INTEGER NOT NULL, blob_id INTEGER NOT NULL,
    mode INTEGER NOT NULL, PRIMARY KEY(view_id, path_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS view_files_blob ON view_files(blob_id, view_id, path_id);
CREATE TABLE IF NOT EXISTS documents(
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, title TEXT NOT NULL, name TEXT NOT NULL,
    source_path TEXT NOT NULL, kind TEXT NOT NULL, blob_id INTEGER NOT NULL,
    added_at TEXT NOT NULL, UNIQUE(project_id, source_path));
CREATE INDEX IF NOT EXISTS documents_blob ON documents(blob_id);
CREATE TABLE IF NOT EXISTS overlays(
    view_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, base_id INTEGER NOT NULL,
    stamp TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS overlays_base ON overlays(base_id);
"""
OVERLAY_PREFIX = "overlay:"
_NOT_A_REPO = ""  # the `repo` of an overlay's view row: never the base of a diff listing


def visible(alias: str) -> str:
    """SQL: the rows of `view_files {alias}` that belong to the layered view `:top` over
    `:base` (a plain view is its own top and base): the top's rows, and the base's rows at
    paths the top does not shadow. A shadowing row with blob 0 deletes the path."""
    return _VISIBLE.replace("{v}", alias)


_VISIBLE = (
    "{v}.view_id IN (:top, :base) AND ({v}.view_id = :top OR NOT EXISTS "
    "(SELECT 1 FROM view_files o WHERE o.view_id = :top AND o.path_id = {v}.path_id))"
)


@dataclass(frozen=True, slots=True)
class SymbolRow:
    name: str
    kind: str
    start_line: int
    end_line: int
    name_line: int
    container: str | None


class KnownBlob(NamedTuple):
    id: int
    status: str  # "text" | "binary" | "huge"
    size: int


class Layers(NamedTuple):
    """What a query reads: a plain view (`top == base`), or an overlay over its base view."""

    top: int
    base: int

    def params(self, **more: Any) -> dict[str, Any]:
        return {"top": self.top, "base": self.base, **more}


class OverlayInfo(NamedTuple):
    view_id: int
    base_id: int
    base_tree: str
    stamp: str


class BaseView(NamedTuple):
    id: int
    tree: str
    symlinks: int
    submodules: int


@dataclass(frozen=True, slots=True)
class Listing:
    """What a new view holds: all its files, or the changes from a `base` view."""

    tree: str
    repo: str  # the common git dir
    files: Sequence[TreeEntry]  # regular files to record (all, or the added and modified)
    symlinks: int
    submodules: int
    base: int | None = None
    removed: Sequence[str] = ()  # paths of the base that are gone or changed


@dataclass(frozen=True, slots=True)
class OverlayRows:
    """Changes to an overlay: `(path, blob sha or None for a deleted path, mode)` rows, and the
    symlinks and submodules it adds to its base's counts (negative: removes)."""

    rows: Sequence[tuple[str, str | None, int]]
    replace: bool
    stamp: str
    symlinks: int = 0
    submodules: int = 0


class BaseViewGone(Exception):
    """The base view of an incremental listing was forgotten before the new view was saved."""


class Store:
    """One connection to the index file. Not thread-safe by itself: `CodeIndex` holds a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        with translate_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            _set_wal(self.conn)
            for pragma in (
                "synchronous=NORMAL",
                f"busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
                "cache_size=-65536",
                "mmap_size=268435456",
                "temp_store=MEMORY",
                "analysis_limit=400",  # keeps `PRAGMA optimize` to milliseconds
            ):
                self.conn.execute(f"PRAGMA {pragma}")
            self._create_schema()

    def _create_schema(self) -> None:
        with self.write():
            for statement in _SCHEMA.split(";"):  # not executescript: it would COMMIT early
                if statement.strip():
                    self.conn.execute(statement)
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"index database {self.path} has schema version {row[0]}, this Branchwork "
                    f"reads version {SCHEMA_VERSION}; upgrade Branchwork or move the file away "
                    "and index again"
                )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with translate_errors(self.path):
            self.conn.execute("PRAGMA optimize")  # statistics where the planner needs them
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (taken at once, so it never deadlocks on upgrade)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def optimize(self) -> None:
        """Merge the full-text index into one segment, refresh the planner's statistics, and
        move the (now large) write-ahead log into the database file."""
        with self.write():
            self.conn.execute("INSERT INTO chunks(chunks) VALUES('optimize')")
        self.conn.execute("PRAGMA optimize")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    # --- blobs -----------------------------------------------------------------------------

    def known_blobs(self, shas: Iterable[str]) -> dict[str, KnownBlob]:
        found: dict[str, KnownBlob] = {}
        for group in _groups(list(shas)):
            marks = ",".join("?" * len(group))
            sql = f"SELECT sha, id, status, size FROM blobs WHERE sha IN ({marks})"  # noqa: S608
            for sha, blob_id, status, size in self.conn.execute(sql, group):
                found[sha] = KnownBlob(blob_id, status, size)
        return found

    def parsed_pairs(self, blob_ids: Iterable[int]) -> set[tuple[int, str]]:
        pairs: set[tuple[int, str]] = set()
        for group in _groups(list(blob_ids)):
            marks = ",".join("?" * len(group))
            sql = f"SELECT blob_id, language FROM parsed WHERE blob_id IN ({marks})"  # noqa: S608
            pairs.update(self.conn.execute(sql, group))
        return pairs

    def save_blob(self, sha: str, status: str, size: int, lines: int) -> int | None:
        """Record a blob; return its id if this call stored it, None if it was already there.

        Only a blob recorded as too large may be stored again (the size limit was raised).
        """
        row = self.conn.execute(
            "INSERT INTO blobs(sha, status, size, lines) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(sha) DO UPDATE SET status=excluded.status, lines=excluded.lines "
            "WHERE blobs.status='huge' AND excluded.status!='huge' RETURNING id",
            (sha, status, size, lines),
        ).fetchone()
        return None if row is None else int(row[0])

    def blob_id(self, sha: str) -> int | None:
        row = self.conn.execute("SELECT id FROM blobs WHERE sha=?", (sha,)).fetchone()
        return None if row is None else int(row[0])

    def save_chunks(self, blobs: Sequence[tuple[int, Sequence[Chunk]]]) -> None:
        """Store the chunks of several blobs; call it last in a transaction (see below)."""
        rows = [(blob_id, chunk) for blob_id, chunks in blobs for chunk in chunks]
        if not rows:
            return
        (last,) = self.conn.execute("SELECT coalesce(max(id), 0) FROM chunk_meta").fetchone()
        numbered = list(enumerate(rows, start=last + 1))
        self.conn.executemany(
            "INSERT INTO chunk_meta(id, blob_id, start_line, end_line, owned_end) "
            "VALUES(?, ?, ?, ?, ?)",
            [(i, blob_id, c.start_line, c.end_line, c.owned_end) for i, (blob_id, c) in numbered],
        )
        # FTS5 flushes its pending terms whenever a statement opens a savepoint (an upsert does),
        # writing a tiny segment each time: inserting the text after every other write of the
        # transaction keeps it to one segment per batch (several times faster on big trees).
        self.conn.executemany(
            "INSERT INTO chunks(rowid, content) VALUES(?, ?)",
            [(i, c.text) for i, (_, c) in numbered],
        )

    def save_parse(
        self, blob_id: int, language: str, symbols: Sequence[SymbolRow], idents: str
    ) -> None:
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO parsed(blob_id, language, idents) VALUES(?, ?, ?)",
            (blob_id, language, idents),
        )
        if cursor.rowcount != 1:
            return  # another process parsed it meanwhile
        self.conn.executemany(
            "INSERT INTO symbols(blob_id, language, name, kind, start_line, end_line, name_line,"
            " container) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (blob_id, language, s.name, s.kind, s.start_line, s.end_line, s.name_line,
                 s.container)
                for s in symbols
            ],
        )  # fmt: skip

    # --- views -----------------------------------------------------------------------------

    def view_id(self, tree: str) -> int | None:
        row = self.conn.execute("SELECT id FROM views WHERE tree=?", (tree,)).fetchone()
        return None if row is None else int(row[0])

    def latest_view(self, repo: str) -> BaseView | None:
        """The view indexed last from the repository whose common git dir is `repo`."""
        row = self.conn.execute(
            "SELECT id, tree, symlinks, submodules FROM views WHERE repo = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            (repo,),
        ).fetchone()
        return None if row is None else BaseView(*row)

    def save_view(self, listing: Listing) -> int:
        """Remember which blob is at which path in a view; its blobs must be stored already.

        A listing relative to a base view copies the base's rows, then applies the changes.
        Raises `BaseViewGone` if that base was forgotten meanwhile (by another process).
        """
        with self.write():
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO views(tree, repo, symlinks, submodules, created_at) "
                "VALUES(?, ?, ?, ?, ?)",
                (listing.tree, listing.repo, listing.symlinks, listing.submodules, time.time()),
            )
            if cursor.rowcount != 1:
                return self.view_id(listing.tree) or 0
            view = int(cursor.lastrowid or 0)
            if listing.base is not None:
                self._copy_base(view, listing.base, listing.removed)
            self.conn.executemany(
                "INSERT OR IGNORE INTO paths(path, language) VALUES(?, ?)",
                [(f.path, language_of(f.path)) for f in listing.files],
            )
            self.conn.executemany(
                "INSERT INTO view_files(view_id, path_id, blob_id, mode) VALUES(?, "
                "(SELECT id FROM paths WHERE path=?), (SELECT id FROM blobs WHERE sha=?), ?)",
                [(view, f.path, f.sha, int(f.mode, 8)) for f in listing.files],
            )
            return view

    def _copy_base(self, view: int, base: int, removed: Sequence[str]) -> None:
        if self.conn.execute("SELECT 1 FROM views WHERE id = ?", (base,)).fetchone() is None:
            raise BaseViewGone
        self.conn.execute(
            "INSERT INTO view_files(view_id, path_id, blob_id, mode) "
            "SELECT ?, path_id, blob_id, mode FROM view_files WHERE view_id = ?",
            (view, base),
        )
        self.conn.executemany(
            "DELETE FROM view_files WHERE view_id = ? "
            "AND path_id = (SELECT id FROM paths WHERE path = ?)",
            [(view, path) for path in removed],
        )

    def huge_files(self, view_id: int, max_size: int) -> list[TreeEntry]:
        """Files of a view skipped as too large whose size is now within `max_size`."""
        rows = self.conn.execute(
            "SELECT p.path, v.mode, b.sha, b.size FROM view_files v "
            "JOIN blobs b ON b.id = v.blob_id JOIN paths p ON p.id = v.path_id "
            "WHERE v.view_id = ? AND b.status = 'huge' AND b.size <= ?",
            (view_id, max_size),
        )
        return [TreeEntry(path, f"{mode:06o}", sha, size) for path, mode, sha, size in rows]

    def view_counts(self, layers: Layers) -> tuple[dict[str, int], int, int]:
        """Files of a view by blob status, and its symlink and submodule counts."""
        by_status = dict(
            self.conn.execute(
                "SELECT b.status, count(*) FROM view_files v JOIN blobs b ON b.id=v.blob_id "  # noqa: S608
                f"WHERE {visible('v')} GROUP BY b.status",
                layers.params(),
            ).fetchall()
        )
        symlinks, submodules = self.conn.execute(
            "SELECT symlinks, submodules FROM views WHERE id=?", (layers.top,)
        ).fetchone()
        return by_status, int(symlinks), int(submodules)

    # --- layered views (overlays) ------------------------------------------------------------

    def layers(self, key: str) -> Layers | None:
        """The layers of a view key: a tree sha, or `overlay:NAME`."""
        if key.startswith(OVERLAY_PREFIX):
            info = self.overlay(key.removeprefix(OVERLAY_PREFIX))
            return None if info is None else Layers(info.view_id, info.base_id)
        view = self.view_id(key)
        return None if view is None else Layers(view, view)

    def overlay(self, name: str) -> OverlayInfo | None:
        row = self.conn.execute(
            "SELECT o.view_id, o.base_id, v.tree, o.stamp FROM overlays o "
            "JOIN views v ON v.id = o.base_id WHERE o.name = ?",
            (name,),
        ).fetchone()
        return None if row is None else OverlayInfo(*row)

    def overlay_names(self) -> list[str]:
        return [name for (name,) in self.conn.execute("SELECT name FROM overlays")]

    def view_trees(self) -> list[str]:
        """The trees of every plain view (overlays excluded)."""
        sql = "SELECT tree FROM views WHERE id NOT IN (SELECT view_id FROM overlays)"
        return [tree for (tree,) in self.conn.execute(sql)]

    def overlay_bases(self) -> set[str]:
        sql = "SELECT DISTINCT v.tree FROM overlays o JOIN views v ON v.id = o.base_id"
        return {tree for (tree,) in self.conn.execute(sql)}

    def save_overlay(self, name: str, base: BaseView, changes: OverlayRows) -> int:
        """Create or update the overlay `name` over `base` in one transaction: with
        `changes.replace` (or a new base) its rows are first dropped; then each change is
        upserted (blob None: the path is shadowed as deleted). Contents must be stored."""
        with self.write():
            view = self._overlay_row(name, base, changes.replace)
            self.conn.executemany(
                "INSERT OR IGNORE INTO paths(path, language) VALUES(?, ?)",
                [(path, language_of(path)) for path, _, _ in changes.rows],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO view_files(view_id, path_id, blob_id, mode) VALUES(?, "
                "(SELECT id FROM paths WHERE path=?), "
                "coalesce((SELECT id FROM blobs WHERE sha=?), 0), ?)",
                [(view, path, sha, mode) for path, sha, mode in changes.rows],
            )
            if changes.replace:  # targeted updates write regular files: counts unchanged
                self.conn.execute(
                    "UPDATE views SET symlinks = ?, submodules = ? WHERE id = ?",
                    (base.symlinks + changes.symlinks, base.submodules + changes.submodules, view),
                )
            stamp = (changes.stamp, view)
            self.conn.execute("UPDATE overlays SET stamp = ? WHERE view_id = ?", stamp)
            return view

    def _overlay_row(self, name: str, base: BaseView, replace: bool) -> int:
        found = self.conn.execute(
            "SELECT view_id, base_id FROM overlays WHERE name = ?", (name,)
        ).fetchone()
        if found is None:
            cursor = self.conn.execute(
                "INSERT INTO views(tree, repo, symlinks, submodules, created_at) "
                "VALUES(?, ?, 0, 0, ?)",
                (OVERLAY_PREFIX + name, _NOT_A_REPO, time.time()),
            )
            view = int(cursor.lastrowid or 0)
            self.conn.execute(
                "INSERT INTO overlays(view_id, name, base_id) VALUES(?, ?, ?)",
                (view, name, base.id),
            )
            return view
        view, base_id = int(found[0]), int(found[1])
        if replace or base_id != base.id:
            self.conn.execute("DELETE FROM view_files WHERE view_id = ?", (view,))
            self.conn.execute("UPDATE overlays SET base_id = ? WHERE view_id = ?", (base.id, view))
        return view

    def base_view(self, tree: str) -> BaseView | None:
        row = self.conn.execute(
            "SELECT id, tree, symlinks, submodules FROM views WHERE tree = ?", (tree,)
        ).fetchone()
        return None if row is None else BaseView(*row)

    def forget_view(self, tree: str) -> bool:
        """Drop a view's file list, and the overlays built on it (rebuilt when next used)."""
        with self.write():
            view = self.view_id(tree)
            if view is None:
                return False
            dependents = [
                v for (v,) in self.conn.execute(
                    "SELECT view_id FROM overlays WHERE base_id = ? OR view_id = ?", (view, view)
                )
            ]  # fmt: skip
            for dropped in {view, *dependents}:
                self.conn.execute("DELETE FROM view_files WHERE view_id=?", (dropped,))
                self.conn.execute("DELETE FROM views WHERE id=?", (dropped,))
                self.conn.execute("DELETE FROM overlays WHERE view_id=?", (dropped,))
            return True

    def unused_views(self, keep: set[str]) -> list[str]:
        """The view keys (trees, `overlay:NAME`) neither in `keep` nor the base of a kept
        overlay."""
        rows = self.conn.execute(
            "SELECT v.tree, o.name, b.tree FROM views v LEFT JOIN overlays o ON o.view_id = v.id "
            "LEFT JOIN views b ON b.id = o.base_id"
        ).fetchall()
        kept_bases = {base for tree, _, base in rows if tree in keep and base is not None}
        return [tree for tree, _, _ in rows if tree not in keep and tree not in kept_bases]

    def garbage_count(self, dropped: set[str]) -> int:
        """How many contents no view outside `dropped` and no document uses."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS dropped(tree TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM dropped")
        self.conn.executemany("INSERT INTO dropped VALUES(?)", [(t,) for t in dropped])
        (count,) = self.conn.execute(
            "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM view_files f "
            "JOIN views v ON v.id = f.view_id WHERE f.blob_id = b.id "
            "AND v.tree NOT IN (SELECT tree FROM dropped)) "
            "AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.blob_id = b.id)"
        ).fetchone()
        return int(count)

    def compact(self) -> None:
        """Give the pages freed by a collection back to the file system, when worth it."""
        (free,) = self.conn.execute("PRAGMA freelist_count").fetchone()
        (pages,) = self.conn.execute("PRAGMA page_count").fetchone()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if pages and free / pages > 0.1:
            self.conn.execute("VACUUM")

    def collect_garbage(self) -> int:
        """Delete blobs no view and no document refers to; return how many."""
        with self.write():
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS orphans(id INTEGER PRIMARY KEY)")
            self.conn.execute("DELETE FROM orphans")
            self.conn.execute(
                "INSERT INTO orphans SELECT id FROM blobs b WHERE NOT EXISTS "
                "(SELECT 1 FROM view_files v WHERE v.blob_id=b.id) AND NOT EXISTS "
                "(SELECT 1 FROM documents d WHERE d.blob_id=b.id)"
            )
            (count,) = self.conn.execute("SELECT count(*) FROM orphans").fetchone()
            for sql in (
                "DELETE FROM chunks WHERE rowid IN (SELECT m.id FROM chunk_meta m "
                "JOIN orphans o ON o.id=m.blob_id)",
                "DELETE FROM chunk_meta WHERE blob_id IN (SELECT id FROM orphans)",
                "DELETE FROM symbols WHERE blob_id IN (SELECT id FROM orphans)",
                "DELETE FROM parsed WHERE blob_id IN (SELECT id FROM orphans)",
                "DELETE FROM blobs WHERE id IN (SELECT id FROM orphans)",
                "DELETE FROM paths WHERE NOT EXISTS "
                "(SELECT 1 FROM view_files v WHERE v.path_id=paths.id)",
            ):
                self.conn.execute(sql)
            return int(count)


def _groups(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _MAX_VARS):
        yield items[start : start + _MAX_VARS]


def _set_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting for another connection that sets it on the same new file: SQLite
    answers that one "database is locked" at once, without its busy handler."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


@contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors into `StoreError` with what to do about them."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                f"index database {path} stayed locked by another process for "
                f"{BUSY_TIMEOUT_S:.0f} s; retry when the other indexing run has finished"
            ) from exc
        raise StoreError(f"index database {path} failed: {exc}; check the file and retry") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"index database {path} is unreadable ({exc}); move the file away and index again"
        ) from exc
