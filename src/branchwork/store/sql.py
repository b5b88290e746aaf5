"""The store's SQL, written once as text with named `:param` parameters.

Both executors run these strings unchanged: stdlib `sqlite3` binds `:name` itself, SQLAlchemy
through `text()`. Only portable SQL is used (SQLite 3.35+ and PostgreSQL): `RETURNING`,
`ON CONFLICT … DO UPDATE`, `substr`/`length`/`lower`. Lists are bound one parameter per item
(`in_list`), so no executor needs an expanding parameter. Column lists are spelled once here and
the row converters in `rows.py` read the columns in this order.
"""

# The strings below are built only from this module's constants (S608 sees f-strings); every
# value a caller supplies is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PROJECT_COLUMNS = (
    "id",
    "name",
    "path",
    "origin",
    "main_branch",
    "created_at",
    "config",
    "env",
    "secret_names",
)
SESSION_COLUMNS = (
    "id",
    "project_id",
    "title",
    "branch",
    "base_commit",
    "worktree",
    "status",
    "created_at",
    "last_activity",
    "port",
    "mode",
    "model",
    "parent_id",
    "parent_seq",
)
EVENT_COLUMNS = ("id", "seq", "kind", "ts", "actor", "schema_version", "payload")
LEASE_COLUMNS = (
    "session_id",
    "holder",
    "pid",
    "host",
    "acquired_at",
    "expires_at",
    "cancel_requested",
)


def _cols(names: Sequence[str]) -> str:
    return ", ".join(names)


def _params(names: Sequence[str]) -> str:
    return ", ".join(f":{n}" for n in names)


def in_list(column: str, prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`column IN (:prefix0, :prefix1, …)` and its parameters."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return f"{column} IN ({_params(list(params))})", params


# -- projects ----------------------------------------------------------------------------------

INSERT_PROJECT = (
    f"INSERT INTO projects ({_cols(PROJECT_COLUMNS)}) VALUES ({_params(PROJECT_COLUMNS)})"
)
UPDATE_PROJECT = (
    "UPDATE projects SET "
    + ", ".join(f"{c} = :{c}" for c in PROJECT_COLUMNS if c != "id")
    + " WHERE id = :id"
)
FIND_PROJECT = (
    f"SELECT {_cols(PROJECT_COLUMNS)} FROM projects WHERE id = :key OR name = :key "
    "ORDER BY CASE WHEN id = :key THEN 0 ELSE 1 END LIMIT 1"
)
LIST_PROJECTS = f"SELECT {_cols(PROJECT_COLUMNS)} FROM projects ORDER BY name"
# {paths}: `path IN (…)` over the ancestors of a directory; the deepest registered one wins.
PROJECT_AT = (
    f"SELECT {_cols(PROJECT_COLUMNS)} FROM projects WHERE {{paths}} "
    "ORDER BY length(path) DESC LIMIT 1"
)
_PROJECT_SESSIONS = "SELECT id FROM sessions WHERE project_id = :pid"
_PROJECT_TASKS = "SELECT id FROM tasks WHERE project_id = :pid"
REMOVE_PROJECT = (
    f"DELETE FROM task_comments WHERE task_id IN ({_PROJECT_TASKS})",
    f"DELETE FROM trials WHERE task_id IN ({_PROJECT_TASKS})",
    "DELETE FROM tasks WHERE project_id = :pid",
    f"DELETE FROM leases WHERE session_id IN ({_PROJECT_SESSIONS})",
    f"DELETE FROM snapshots WHERE session_id IN ({_PROJECT_SESSIONS})",
    f"DELETE FROM events WHERE session_id IN ({_PROJECT_SESSIONS})",
    "DELETE FROM sessions WHERE project_id = :pid",
    "DELETE FROM projects WHERE id = :pid",
)

# -- sessions ----------------------------------------------------------------------------------

_SESSION_SELECT = f"SELECT {_cols(SESSION_COLUMNS)} FROM sessions"
INSERT_SESSION = (
    f"INSERT INTO sessions ({_cols(SESSION_COLUMNS)}, last_seq) "
    f"VALUES ({_params(SESSION_COLUMNS)}, 0)"
)
GET_SESSION = f"{_SESSION_SELECT} WHERE id = :id"
_NEWEST_FIRST = "ORDER BY created_at DESC, id DESC"
# {where}: zero or more conditions joined by AND, see `Store.list_sessions`.
LIST_SESSIONS = f"{_SESSION_SELECT}{{where}} {_NEWEST_FIRST}"
# The extra last column is 0 for an exact id or branch match, 1 for a short-id prefix match.
_FIND_SESSIONS = (
    f"SELECT {_cols(SESSION_COLUMNS)}, "
    "CASE WHEN lower(id) = :key OR branch = :branch THEN 0 ELSE 1 END FROM sessions "
    "WHERE lower(id) = :key OR branch = :branch"
)
FIND_SESSIONS_EXACT = f"{_FIND_SESSIONS} {_NEWEST_FIRST}"
# The short id is the last 8 characters of the id, lowercased (`domain.ids.short_id`).
FIND_SESSIONS_OR_PREFIX = (
    f"{_FIND_SESSIONS} OR lower(substr(id, length(id) - 7, :n)) = :key {_NEWEST_FIRST}"
)
# {paths}: `worktree IN (…)` over the ancestors of a directory.
SESSION_AT = (
    f"{_SESSION_SELECT} WHERE {{paths}} "
    "ORDER BY length(worktree) DESC, created_at DESC, id DESC LIMIT 1"
)
# {assignments}: `field = :field, …` over the fields `Store.update_session` allows.
UPDATE_SESSION = (
    f"UPDATE sessions SET {{assignments}} WHERE id = :id RETURNING {_cols(SESSION_COLUMNS)}"
)
SET_STATUS = "UPDATE sessions SET status = :status WHERE id = :id"
SET_STATUS_AND_PORT = "UPDATE sessions SET status = :status, port = :port WHERE id = :id"
USED_PORTS = "SELECT port FROM sessions WHERE status = 'active' AND id <> :exclude"

# -- events ------------------------------------------------------------------------------------

# Takes `n` seqs at once: the returned value is the last of them. Run first in the write
# transaction, it also takes the session's row, so concurrent appends queue up behind it.
TAKE_SEQS = (
    "UPDATE sessions SET last_seq = last_seq + :n, last_activity = :now "
    "WHERE id = :sid RETURNING last_seq"
)
# An event row, in the order `Tx.insert` takes it.
EVENT_INSERT = ("id", "session_id", "seq", "kind", "ts", "actor", "schema_version", "payload")
LAST_SEQ = "SELECT last_seq FROM sessions WHERE id = :sid"
SESSION_MARKS = "SELECT id, project_id, last_seq, status FROM sessions"
_EVENT_SELECT = f"SELECT {_cols(EVENT_COLUMNS)} FROM events WHERE session_id = :sid"
# {kinds}: empty or ` AND kind IN (…)`. A page of the log in ascending seq (keyset on seq).
EVENTS_AFTER = f"{_EVENT_SELECT} AND seq > :after{{kinds}} ORDER BY seq LIMIT :limit"
# {before}: empty or ` AND seq < :before`. The newest events, newest first.
EVENTS_TAIL = f"{_EVENT_SELECT}{{before}}{{kinds}} ORDER BY seq DESC LIMIT :limit"

# -- snapshots ---------------------------------------------------------------------------------

GET_SNAPSHOT = "SELECT seq, data FROM snapshots WHERE session_id = :sid AND name = :name"
PUT_SNAPSHOT = (
    "INSERT INTO snapshots (session_id, name, seq, data) VALUES (:sid, :name, :seq, :data) "
    "ON CONFLICT (session_id, name) DO UPDATE SET seq = excluded.seq, data = excluded.data "
    "WHERE excluded.seq >= snapshots.seq"
)

# -- blobs and small state ---------------------------------------------------------------------

PUT_BLOB = (
    "INSERT INTO blobs (sha256, size, data, created_at) VALUES (:sha256, :size, :data, :now) "
    "ON CONFLICT (sha256) DO NOTHING"
)
GET_BLOB = "SELECT data FROM blobs WHERE sha256 = :sha256"
GET_STATE = "SELECT value FROM state WHERE key = :key"
PUT_STATE = (
    "INSERT INTO state (key, value) VALUES (:key, :value) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
DELETE_STATE = "DELETE FROM state WHERE key = :key"

# -- leases ------------------------------------------------------------------------------------

GET_LEASE = f"SELECT {_cols(LEASE_COLUMNS)} FROM leases WHERE session_id = :sid"
DELETE_LEASE = "DELETE FROM leases WHERE session_id = :sid"
DELETE_LEASE_OF = "DELETE FROM leases WHERE session_id = :sid AND holder = :holder"
INSERT_LEASE = (
    f"INSERT INTO leases ({_cols(LEASE_COLUMNS)}) "
    "VALUES (:sid, :holder, :pid, :host, :now, :expires, :no)"
)
RENEW_LEASE = "UPDATE leases SET expires_at = :expires WHERE session_id = :sid AND holder = :holder"
REQUEST_CANCEL = (
    "UPDATE leases SET cancel_requested = :yes WHERE session_id = :sid AND expires_at > :now"
)
CANCEL_REQUESTED = (
    "SELECT cancel_requested FROM leases WHERE session_id = :sid AND holder = :holder"
)
