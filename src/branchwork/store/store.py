"""The store: projects, sessions, the append-only event log, blobs, leases and small state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Row, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from branchwork.domain.errors import NotFound, StoreError
from branchwork.domain.events import Actor, Event, Payload, parse_event, utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, ProjectConfig, Session, SessionStatus
from branchwork.store import migrate
from branchwork.store.engine import make_engine, read_transaction, write_transaction
from branchwork.store.tables import blobs, events, leases, projects, sessions, state


class Store:
    """Persistence behind one small interface; every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        engine = make_engine(url)
        migrate.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- projects ---------------------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(insert(projects).values(**_project_row(project)))

    def save_project(self, project: Project) -> None:
        row = _project_row(project)
        with write_transaction(self.engine) as conn:
            conn.execute(update(projects).where(projects.c.id == project.id).values(**row))

    def remove_project(self, project_id: str) -> None:
        with write_transaction(self.engine) as conn:
            session_ids = select(sessions.c.id).where(sessions.c.project_id == project_id)
            conn.execute(delete(leases).where(leases.c.session_id.in_(session_ids)))
            conn.execute(delete(events).where(events.c.session_id.in_(session_ids)))
            conn.execute(delete(sessions).where(sessions.c.project_id == project_id))
            conn.execute(delete(projects).where(projects.c.id == project_id))

    def find_project(self, key: str) -> Project | None:
        """A project by id or by name."""
        query = select(projects).where((projects.c.id == key) | (projects.c.name == key))
        with read_transaction(self.engine) as conn:
            row = conn.execute(query).first()
        return _project_from_row(row) if row else None

    def list_projects(self) -> list[Project]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(projects).order_by(projects.c.name)).all()
        return [_project_from_row(r) for r in rows]

    # -- sessions ---------------------------------------------------------------------------

    def add_session(
        self, session: Session, first: Payload, *, port_block: int
    ) -> tuple[Session, Event]:
        """Insert a session with a free port block and its first event, in one transaction.

        `session.port` is the lowest port to consider; blocks of `port_block` ports are handed
        out so that no two active sessions share one.
        """
        with write_transaction(self.engine) as conn:
            port = _free_port(conn, session.port, port_block)
            session = session.model_copy(update={"port": port})
            conn.execute(insert(sessions).values(**session.model_dump(), last_seq=0))
            event = _append(conn, session.id, first, "system")
        return session, event

    def get_session(self, session_id: str) -> Session:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
        if row is None:
            raise NotFound(
                f"no session {session_id!r}; run `branchwork session list --all` to see them"
            )
        return _session_from_row(row)

    def list_sessions(
        self, project_id: str | None = None, *, include_archived: bool = False
    ) -> list[Session]:
        query = select(sessions).order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        if project_id:
            query = query.where(sessions.c.project_id == project_id)
        if not include_archived:
            query = query.where(sessions.c.status == "active")
        with read_transaction(self.engine) as conn:
            return [_session_from_row(r) for r in conn.execute(query).all()]

    def update_session(self, session_id: str, **values: Any) -> Session:
        allowed = {"status", "worktree", "title", "mode", "model"}
        if not set(values) <= allowed:
            raise StoreError(f"cannot update session fields {sorted(set(values) - allowed)}")
        with write_transaction(self.engine) as conn:
            conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))
        return self.get_session(session_id)

    def set_status(
        self,
        session_id: str,
        status: SessionStatus,
        payload: Payload,
        *,
        ports: tuple[int, int] | None = None,
    ) -> Event:
        """Change a session's status and record why, atomically.

        `ports` (base, block) hands the session a port block free among active sessions, for a
        session that becomes active again.
        """
        with write_transaction(self.engine) as conn:
            values: dict[str, Any] = {"status": status}
            if ports is not None:
                values["port"] = _free_port(conn, *ports, exclude=session_id)
            conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))
            return _append(conn, session_id, payload, "system")

    # -- events -----------------------------------------------------------------------------

    def append(self, session_id: str, payload: Payload, actor: Actor = "system") -> Event:
        """Append one event; its `seq` is the next one of the session, without gaps."""
        with write_transaction(self.engine) as conn:
            return _append(conn, session_id, payload, actor)

    def events(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        query = (
            select(events)
            .where(events.c.session_id == session_id, events.c.seq > after_seq)
            .order_by(events.c.seq)
        )
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        if limit:
            query = query.limit(limit)
        with read_transaction(self.engine) as conn:
            return [_event_from_row(r) for r in conn.execute(query).all()]

    def last_seq(self, session_id: str) -> int:
        with read_transaction(self.engine) as conn:
            value = conn.execute(
                select(sessions.c.last_seq).where(sessions.c.id == session_id)
            ).scalar()
        return int(value or 0)

    # -- blobs ------------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store bytes once, addressed by their SHA-256; returns the hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        with write_transaction(self.engine) as conn:
            exists = conn.execute(select(blobs.c.size).where(blobs.c.sha256 == digest)).first()
            if exists is None:
                conn.execute(
                    insert(blobs).values(
                        sha256=digest, size=len(data), data=data, created_at=utc_now()
                    )
                )
        return digest

    def get_blob(self, digest: str) -> bytes:
        with read_transaction(self.engine) as conn:
            data = conn.execute(select(blobs.c.data).where(blobs.c.sha256 == digest)).scalar()
        if data is None:
            raise NotFound(f"no blob {digest}; it may belong to another data directory")
        return bytes(data)

    # -- small state ------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        with read_transaction(self.engine) as conn:
            value = conn.execute(select(state.c.value).where(state.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_state(self, key: str, value: str | None) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(state).where(state.c.key == key))
            if value is not None:
                conn.execute(insert(state).values(key=key, value=value))

    # -- leases (one turn at a time per session) ---------------------------------------------

    def acquire_lease(
        self, session_id: str, holder: str, *, pid: int, host: str, ttl: timedelta
    ) -> dict[str, Any] | None:
        """Take the session's lease; returns the current holder's row when someone else has it.

        A lease whose time ran out, or whose holder is `stale` per `lease_is_stale`, is taken
        over by the caller (the service checks liveness before calling `break_lease`).
        """
        now = utc_now()
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(leases).where(leases.c.session_id == session_id)).first()
            if row is not None and row.expires_at > now and row.holder != holder:
                return dict(row._mapping)
            conn.execute(delete(leases).where(leases.c.session_id == session_id))
            conn.execute(
                insert(leases).values(
                    session_id=session_id,
                    holder=holder,
                    pid=pid,
                    host=host,
                    acquired_at=now,
                    expires_at=now + ttl,
                )
            )
        return None

    def renew_lease(self, session_id: str, holder: str, ttl: timedelta) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(leases)
                .where(leases.c.session_id == session_id, leases.c.holder == holder)
                .values(expires_at=utc_now() + ttl)
            )

    def request_cancel(self, session_id: str) -> bool:
        """Ask the turn holding the session's lease to stop; False when no turn is running."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(leases)
                .where(leases.c.session_id == session_id, leases.c.expires_at > utc_now())
                .values(cancel_requested=True)
            )
        return bool(result.rowcount)

    def cancel_requested(self, session_id: str, holder: str) -> bool:
        query = select(leases.c.cancel_requested).where(
            leases.c.session_id == session_id, leases.c.holder == holder
        )
        with read_transaction(self.engine) as conn:
            return bool(conn.execute(query).scalar())

    def release_lease(self, session_id: str, holder: str | None = None) -> None:
        query = delete(leases).where(leases.c.session_id == session_id)
        if holder is not None:
            query = query.where(leases.c.holder == holder)
        with write_transaction(self.engine) as conn:
            conn.execute(query)

    def get_lease(self, session_id: str) -> dict[str, Any] | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(leases).where(leases.c.session_id == session_id)).first()
        return dict(row._mapping) if row else None


# Built once: executing a constant statement with parameters skips SQL compilation.
_NEXT_SEQ = (
    update(sessions)
    .where(sessions.c.id == bindparam("sid"))
    .values(last_seq=sessions.c.last_seq + 1, last_activity=bindparam("now"))
    .returning(sessions.c.last_seq)
)
_INSERT_EVENT = insert(events)


def _append(conn: Connection, session_id: str, payload: Payload, actor: Actor) -> Event:
    now = utc_now()
    seq = conn.execute(_NEXT_SEQ, {"sid": session_id, "now": now}).scalar()
    if seq is None:
        raise NotFound(f"no session {session_id!r}; run `branchwork session list --all`")
    event = Event(
        id=new_id(), session_id=session_id, seq=int(seq), ts=now, actor=actor, payload=payload
    )
    row = {
        "id": event.id,
        "session_id": session_id,
        "seq": event.seq,
        "kind": event.kind,
        "ts": now,
        "actor": actor,
        "schema_version": event.schema_version,
        "payload": payload.model_dump_json(),
    }
    conn.execute(_INSERT_EVENT, row)
    return event


def _free_port(conn: Connection, base: int, block: int, *, exclude: str = "") -> int:
    query = select(sessions.c.port).where(sessions.c.status == "active", sessions.c.id != exclude)
    used = {int(p) for p in conn.execute(query).scalars().all()}
    port = base
    while port in used:
        port += block
    return port


def _project_row(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "path": project.path,
        "origin": project.origin,
        "main_branch": project.main_branch,
        "created_at": project.created_at,
        "config": project.config.model_dump_json(),
        "env": json.dumps(project.env),
        "secret_names": json.dumps(project.secret_names),
    }


def _project_from_row(row: Row[Any]) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        path=row.path,
        origin=row.origin,
        main_branch=row.main_branch,
        created_at=row.created_at,
        config=ProjectConfig.model_validate_json(row.config),
        env=json.loads(row.env),
        secret_names=json.loads(row.secret_names),
    )


def _session_from_row(row: Row[Any]) -> Session:
    data = dict(row._mapping)
    data.pop("last_seq", None)
    return Session.model_validate(data)


def _event_from_row(row: Row[Any]) -> Event:
    return parse_event(
        {
            "id": row.id,
            "session_id": row.session_id,
            "seq": row.seq,
            "ts": row.ts,
            "actor": row.actor,
            "schema_version": row.schema_version,
            "payload": json.loads(row.payload),
        }
    )
