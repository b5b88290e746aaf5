"""The store: projects, sessions, the append-only event log, snapshots, blobs, leases, state;
tasks and trials in `tasks`.

Every method is one transaction (a streamed read is one short read per page). The SQL is in
`sql.py`, run by the executor `executor.connect` picks for the URL; rows become domain values
in `rows.py`. SQLAlchemy and Alembic are imported only to migrate, or for a URL that is not a
plain `sqlite:///` one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from branchwork._lazy import lazy_module
from branchwork.domain.errors import NotFound, StoreError
from branchwork.domain.events import Actor, Event, Payload, make_events
from branchwork.domain.ids import new_ids
from branchwork.domain.models import Project, Session, SessionStatus
from branchwork.store import migrate, rows, sql
from branchwork.store.executor import Executor, Row, Tx
from branchwork.store.proposals import REMOVE_FOR_PROJECT, ProposalStore
from branchwork.store.sqlite import SqliteExecutor
from branchwork.store.tasks import TaskRecords

if TYPE_CHECKING:
    from branchwork.store import alchemy
else:  # SQLAlchemy is imported only for a URL that is not a plain SQLite file
    alchemy = lazy_module("branchwork.store.alchemy")

_PLAIN_SQLITE = "sqlite:///"

Prepared = tuple[str, Payload, Actor]  # (payload JSON, payload, actor)

PAGE_SIZE = 1000  # events per read of a streamed log
_SEQ = sql.EVENT_COLUMNS.index("seq")
_SESSION_FIELDS = frozenset(("status", "worktree", "title", "mode", "model"))
T = TypeVar("T")


class Store:
    """Persistence behind one small interface."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor  # tests run raw SQL through it
        self.url = executor.url
        self._codec = rows.codec_for(executor.dialect)
        self.tasks = TaskRecords(executor, self._codec)
        self.proposals = ProposalStore(executor)  # proposals, reviews, comments (own module)

    @classmethod
    def open(cls, url: str, *, allow_empty: bool = False) -> Store:
        """Open the database at `url`, migrating it first when it is not at the newest schema.

        A missing SQLite file is created (with its directory). Anything else that cannot be used
        raises one `StoreError` whose message names the file, the problem and the remedy
        (`store/errors.py`): a directory in the file's place, a file that is not a SQLite
        database or is damaged (`DamagedDatabase`; the file is left untouched), a database from
        a newer Branchwork, a data directory that cannot be created or written.

        A zero-length file raises `EmptyDatabase` (its projects and sessions are lost; the
        remedy is `branchwork doctor --rebuild`, or deleting the file). `allow_empty=True` is
        that rebuild's way in: it initialises a zero-length file as a new, empty database, to be
        filled again from the projects' branches and worktrees. It changes nothing for a file
        that is not empty.

        A database in a directory this user cannot write opens read-only (reads work; a write
        raises `ReadOnlyDatabase`), see `store/sqlite.py`.
        """
        executor = _connect(url, allow_empty=allow_empty)
        try:
            if executor.revision() != migrate.HEAD_REVISION:
                migrate.upgrade(url)
        except BaseException:
            executor.close()
            raise
        return cls(executor)

    def close(self) -> None:
        """Release the connections (a later call opens new ones)."""
        self.executor.close()

    # -- projects ---------------------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        with self.executor.write() as tx:
            tx.run(sql.INSERT_PROJECT, rows.project_params(project, self._codec))

    def save_project(self, project: Project) -> None:
        with self.executor.write() as tx:
            tx.run(sql.UPDATE_PROJECT, rows.project_params(project, self._codec))

    def remove_project(self, project_id: str) -> None:
        """Forget a project with its sessions, their events, snapshots, leases and proposals."""
        with self.executor.write() as tx:
            for statement in (*REMOVE_FOR_PROJECT, *sql.REMOVE_PROJECT):
                tx.run(statement, {"pid": project_id})

    def find_project(self, key: str) -> Project | None:
        """A project by id or by name."""
        return self._one(sql.FIND_PROJECT, {"key": key}, self._project)

    def list_projects(self) -> list[Project]:
        with self.executor.read() as tx:
            found = tx.rows(sql.LIST_PROJECTS)
        return [self._project(r) for r in found]

    def project_containing(self, path: Path) -> Project | None:
        """The project registered at `path` or at its nearest ancestor (pass a resolved path)."""
        where, params = sql.in_list("path", "p", _ancestors(path))
        return self._one(sql.PROJECT_AT.format(paths=where), params, self._project)

    # -- sessions ---------------------------------------------------------------------------

    def add_session(
        self, session: Session, first: Payload, *, port_block: int
    ) -> tuple[Session, Event]:
        """Insert a session with a free port block and its first event, in one transaction.

        `session.port` is the lowest port to consider; blocks of `port_block` ports are handed
        out so that no two active sessions share one. The session returned is the one stored
        (its port, and its last activity the first event's time).
        """
        payload: list[Prepared] = [(first.model_dump_json(), first, "system")]
        with self.executor.write() as tx:
            port = _free_port(tx, session.port, port_block)
            session = session.model_copy(update={"port": port})
            tx.run(sql.INSERT_SESSION, rows.session_params(session, self._codec))
            (event,) = self._append(tx, session.id, payload)
        return session.model_copy(update={"last_activity": event.ts}), event

    def get_session(self, session_id: str) -> Session:
        found = self._one(sql.GET_SESSION, {"id": session_id}, self._session)
        if found is None:
            raise NotFound(f"no session {session_id!r}; `session list --all` shows them")
        return found

    def find_sessions(self, key: str) -> list[Session]:
        """Sessions by exact id (any case) or exact branch; failing those, by short-id prefix
        (at least 4 characters). Newest first."""
        params = {"key": key.lower(), "branch": key, "n": len(key)}
        query = sql.FIND_SESSIONS_OR_PREFIX if len(key) >= 4 else sql.FIND_SESSIONS_EXACT
        with self.executor.read() as tx:
            found = tx.rows(query, params)
        exact = [r for r in found if r[-1] == 0] or found
        return [self._session(r[:-1]) for r in exact]

    def session_containing(self, path: Path) -> Session | None:
        """The session whose worktree is `path` or its nearest ancestor (pass a resolved path),
        archived ones included."""
        where, params = sql.in_list("worktree", "p", _ancestors(path))
        return self._one(sql.SESSION_AT.format(paths=where), params, self._session)

    def list_sessions(
        self, project_id: str | None = None, *, include_archived: bool = False
    ) -> list[Session]:
        """Sessions, newest first: of one project or all, active ones or all."""
        conditions = []
        if project_id:
            conditions.append("project_id = :pid")
        if not include_archived:
            conditions.append("status = 'active'")
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        with self.executor.read() as tx:
            found = tx.rows(sql.LIST_SESSIONS.format(where=where), {"pid": project_id})
        return [self._session(r) for r in found]

    def update_session(self, session_id: str, **values: Any) -> Session:
        if not set(values) <= _SESSION_FIELDS:
            raise StoreError(
                f"cannot update session fields {sorted(set(values) - _SESSION_FIELDS)}"
            )
        if not values:
            return self.get_session(session_id)
        assignments = ", ".join(f"{name} = :{name}" for name in sorted(values))
        with self.executor.write() as tx:
            found = tx.rows(
                sql.UPDATE_SESSION.format(assignments=assignments), {**values, "id": session_id}
            )
        if not found:
            return self.get_session(session_id)  # raises NotFound
        return self._session(found[0])

    def set_status(
        self,
        session_id: str,
        status: SessionStatus,
        payload: Payload,
        *,
        ports: tuple[int, int] | None = None,
    ) -> tuple[Session, Event]:
        """Change a session's status and record why, atomically; returns both.

        `ports` (base, block) hands the session a port block free among active sessions, for a
        session that becomes active again.
        """
        item: list[Prepared] = [(payload.model_dump_json(), payload, "system")]
        with self.executor.write() as tx:
            if ports is None:
                tx.run(sql.SET_STATUS, {"id": session_id, "status": status})
            else:
                port = _free_port(tx, *ports, exclude=session_id)
                tx.run(sql.SET_STATUS_AND_PORT, {"id": session_id, "status": status, "port": port})
            (event,) = self._append(tx, session_id, item)
            (row,) = tx.rows(sql.GET_SESSION, {"id": session_id})
        return self._session(row), event

    # -- events -----------------------------------------------------------------------------

    def append(self, session_id: str, items: Sequence[tuple[Payload, Actor]]) -> list[Event]:
        """Append events in one transaction; their seqs are the session's next ones, in order,
        without gaps (whatever other processes append at the same time)."""
        if not items:
            return []
        prepared = [(p.model_dump_json(), p, actor) for p, actor in items]
        with self.executor.write() as tx:
            return self._append(tx, session_id, prepared)

    def events(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events after `after_seq` in ascending seq, at most `limit` of them."""
        pages = self._pages(session_id, after_seq, kinds, limit or None)
        return [self._event(r, session_id) for page in pages for r in page]

    def iter_events(
        self, session_id: str, *, after_seq: int = 0, kinds: Sequence[str] | None = None
    ) -> Iterator[Event]:
        """Like `events`, streamed: one read per page of `PAGE_SIZE` events."""
        for page in self._pages(session_id, after_seq, kinds):
            for row in page:
                yield self._event(row, session_id)

    def iter_event_dicts(
        self, session_id: str, *, after_seq: int = 0, kinds: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """`Event.to_json_dict()` of each event, streamed, built without model validation."""
        for page in self._pages(session_id, after_seq, kinds):
            yield from rows.event_dicts(page, session_id, self._codec)

    def iter_event_lines(
        self, session_id: str, *, after_seq: int = 0, kinds: Sequence[str] | None = None
    ) -> Iterator[tuple[int, str]]:
        """Each event's seq and the event as one line of JSON (`Event.to_json_dict()` once
        parsed), streamed: the stored payload text is passed through, not parsed."""
        for page in self._pages(session_id, after_seq, kinds):
            yield from rows.event_lines(page, session_id, self._codec)

    def tail_events(
        self,
        session_id: str,
        *,
        limit: int,
        kinds: Sequence[str] | None = None,
        before_seq: int | None = None,
    ) -> list[Event]:
        """The newest `limit` matching events (before `before_seq`), in ascending seq."""
        kinds_sql, params = _kinds_filter(kinds)
        before = "" if before_seq is None else " AND seq < :before"
        query = sql.EVENTS_TAIL.format(before=before, kinds=kinds_sql)
        params.update(sid=session_id, before=before_seq, limit=limit)
        with self.executor.read() as tx:
            found = tx.rows(query, params)
        return [self._event(r, session_id) for r in reversed(found)]

    def last_seq(self, session_id: str) -> int:
        with self.executor.read() as tx:
            found = tx.rows(sql.LAST_SEQ, {"sid": session_id})
        return int(found[0][0]) if found else 0

    def session_marks(self) -> list[tuple[str, str, int, str]]:
        """(id, project id, last seq, status) of every session: one cheap read that tells a
        watcher which logs grew (in any process) since it last looked."""
        with self.executor.read() as tx:
            found = tx.rows(sql.SESSION_MARKS)
        return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in found]

    # -- snapshots --------------------------------------------------------------------------

    def get_snapshot(self, session_id: str, name: str) -> tuple[int, str] | None:
        """The snapshot `name` of a session, (the seq it covers, its data), or None."""
        with self.executor.read() as tx:
            found = tx.rows(sql.GET_SNAPSHOT, {"sid": session_id, "name": name})
        return (int(found[0][0]), str(found[0][1])) if found else None

    def put_snapshot(self, session_id: str, name: str, seq: int, data: str) -> None:
        """Save a snapshot covering events up to `seq`; an older one never replaces a newer one."""
        with self.executor.write() as tx:
            tx.run(sql.PUT_SNAPSHOT, {"sid": session_id, "name": name, "seq": seq, "data": data})

    # -- blobs ------------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store bytes once, addressed by their SHA-256; returns the hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        params = {"sha256": digest, "size": len(data), "data": data}
        with self.executor.write() as tx:
            tx.run(sql.PUT_BLOB, {**params, "now": self._codec.param(_utc_now())})
        return digest

    def get_blob(self, digest: str) -> bytes:
        with self.executor.read() as tx:
            found = tx.rows(sql.GET_BLOB, {"sha256": digest})
        if not found:
            raise NotFound(f"no blob {digest}; it may belong to another data directory")
        return bytes(found[0][0])

    # -- small state ------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        with self.executor.read() as tx:
            found = tx.rows(sql.GET_STATE, {"key": key})
        return str(found[0][0]) if found else None

    def set_state(self, key: str, value: str | None) -> None:
        with self.executor.write() as tx:
            if value is None:
                tx.run(sql.DELETE_STATE, {"key": key})
            else:
                tx.run(sql.PUT_STATE, {"key": key, "value": value})

    # -- leases (one turn at a time per session) ---------------------------------------------

    def acquire_lease(
        self, session_id: str, holder: str, *, pid: int, host: str, ttl: timedelta
    ) -> dict[str, Any] | None:
        """Take the session's lease; returns the current holder's row when someone else has it.

        A lease whose time ran out is taken over by the caller (the service checks the holder's
        liveness and releases a dead holder's lease first).
        """
        now = _utc_now()
        with self.executor.write() as tx:
            found = tx.rows(sql.GET_LEASE, {"sid": session_id})
            current = self._lease(found[0]) if found else None
            if current and current["expires_at"] > now and current["holder"] != holder:
                return current
            tx.run(sql.DELETE_LEASE, {"sid": session_id})
            tx.run(sql.INSERT_LEASE, self._lease_params(session_id, holder, pid, host, now, ttl))
        return None

    def renew_lease(self, session_id: str, holder: str, ttl: timedelta) -> None:
        expires = self._codec.param(_utc_now() + ttl)
        with self.executor.write() as tx:
            tx.run(sql.RENEW_LEASE, {"sid": session_id, "holder": holder, "expires": expires})

    def request_cancel(self, session_id: str) -> bool:
        """Ask the turn holding the session's lease to stop; False when no turn is running."""
        params = {"sid": session_id, "yes": True, "now": self._codec.param(_utc_now())}
        with self.executor.write() as tx:
            return tx.run(sql.REQUEST_CANCEL, params) > 0

    def cancel_requested(self, session_id: str, holder: str) -> bool:
        with self.executor.read() as tx:
            found = tx.rows(sql.CANCEL_REQUESTED, {"sid": session_id, "holder": holder})
        return bool(found and found[0][0])

    def release_lease(self, session_id: str, holder: str | None = None) -> None:
        with self.executor.write() as tx:
            if holder is None:
                tx.run(sql.DELETE_LEASE, {"sid": session_id})
            else:
                tx.run(sql.DELETE_LEASE_OF, {"sid": session_id, "holder": holder})

    def get_lease(self, session_id: str) -> dict[str, Any] | None:
        return self._one(sql.GET_LEASE, {"sid": session_id}, self._lease)

    # -- helpers ----------------------------------------------------------------------------

    def _one(self, query: str, params: dict[str, Any], convert: Callable[[Row], T]) -> T | None:
        with self.executor.read() as tx:
            found = tx.rows(query, params)
        return convert(found[0]) if found else None

    def _project(self, row: Row) -> Project:
        return rows.project_from_row(row, self._codec)

    def _session(self, row: Row) -> Session:
        return rows.session_from_row(row, self._codec)

    def _lease(self, row: Row) -> dict[str, Any]:
        return rows.lease_from_row(row, self._codec)

    def _event(self, row: Row, session_id: str) -> Event:
        return rows.event_from_row(row, session_id, self._codec)

    def _lease_params(
        self, session_id: str, holder: str, pid: int, host: str, now: Any, ttl: timedelta
    ) -> dict[str, Any]:
        return {
            "sid": session_id,
            "holder": holder,
            "pid": pid,
            "host": host,
            "now": self._codec.param(now),
            "expires": self._codec.param(now + ttl),
            "no": False,
        }

    def _append(self, tx: Tx, session_id: str, items: Sequence[Prepared]) -> list[Event]:
        """Take the next seqs, then insert the events with one `executemany`."""
        now = _utc_now()
        ts = self._codec.param(now)
        taken = tx.rows(sql.TAKE_SEQS, {"n": len(items), "now": ts, "sid": session_id})
        if not taken:
            raise NotFound(f"no session {session_id!r}; `session list --all` shows them")
        first = int(taken[0][0]) - len(items) + 1
        made = make_events(  # validated from dicts: pydantic-core does it faster than construct
            [
                {"id": id_, "session_id": session_id, "seq": seq, "ts": now, "actor": actor,
                 "payload": payload}
                for id_, (seq, (_, payload, actor)) in zip(
                    new_ids(len(items)), enumerate(items, first), strict=True
                )
            ]
        )  # fmt: skip
        rows = [
            (e.id, session_id, e.seq, e.payload.kind, ts, e.actor, e.schema_version, item[0])
            for e, item in zip(made, items, strict=True)
        ]
        tx.insert("events", sql.EVENT_INSERT, rows)
        return made

    def _pages(
        self,
        session_id: str,
        after_seq: int,
        kinds: Sequence[str] | None,
        limit: int | None = None,
    ) -> Iterator[list[Row]]:
        """The matching event rows in ascending seq, one short read per page (keyset on seq)."""
        kinds_sql, params = _kinds_filter(kinds)
        query = sql.EVENTS_AFTER.format(kinds=kinds_sql)
        params["sid"] = session_id
        after, left = after_seq, limit
        while left is None or left > 0:
            size = PAGE_SIZE if left is None else min(PAGE_SIZE, left)
            with self.executor.read() as tx:
                page = tx.rows(query, {**params, "after": after, "limit": size})
            if page:
                yield page
            if len(page) < size:
                return
            after, left = page[-1][_SEQ], None if left is None else left - size


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _kinds_filter(kinds: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    if not kinds:
        return "", {}
    where, params = sql.in_list("kind", "k", list(kinds))
    return f" AND {where}", params


def _ancestors(path: Path) -> list[str]:
    return [str(path), *(str(p) for p in path.parents)]


def _free_port(tx: Tx, base: int, block: int, *, exclude: str = "") -> int:
    used = {int(r[0]) for r in tx.rows(sql.USED_PORTS, {"exclude": exclude})}
    port = base
    while port in used:
        port += block
    return port


def _connect(url: str, *, allow_empty: bool = False) -> Executor:
    """The executor for `url`: stdlib sqlite3 for a plain `sqlite:///PATH`, SQLAlchemy for
    every other URL (PostgreSQL, or an explicit driver such as `sqlite+pysqlite:///PATH`)."""
    if url.startswith(_PLAIN_SQLITE) and "?" not in url:
        return SqliteExecutor(url, url[len(_PLAIN_SQLITE) :], allow_empty=allow_empty)
    return alchemy.AlchemyExecutor(url, allow_empty=allow_empty)
