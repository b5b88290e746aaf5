"""Users, their grants (a role per project) and their tokens, stored by hash only.

A token's secret never reaches the database: `token_hash` is its SHA-256 (tokens are 256 random
bits, so a fast hash is the right one: there is nothing to brute-force). Every method is one
transaction, like the rest of the store.
"""

# ruff: noqa: S105, S608 (SQL text of this module; every value is a bound parameter)

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from branchwork.domain.access import Role, TokenKind, User
from branchwork.domain.errors import AlreadyExists
from branchwork.store import rows
from branchwork.store.executor import Executor, Row, Tx

_USER_COLUMNS = "id, name, created_at"
INSERT_USER = "INSERT INTO users (id, name, created_at) VALUES (:id, :name, :created_at)"
FIND_USER = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :key OR name = :key"
LIST_USERS = f"SELECT {_USER_COLUMNS} FROM users ORDER BY name"
COUNT_USERS = "SELECT count(*) FROM users"
GRANTS_OF = "SELECT project_id, role FROM grants WHERE user_id = :uid"
ALL_GRANTS = "SELECT user_id, project_id, role FROM grants"
PUT_GRANT = (
    "INSERT INTO grants (user_id, project_id, role) VALUES (:uid, :pid, :role) "
    "ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role"
)
DELETE_GRANT = "DELETE FROM grants WHERE user_id = :uid AND project_id = :pid"
_TOKEN_COLUMNS = "id, kind, user_id, session_id, expires_at, revoked"
INSERT_TOKEN = (
    "INSERT INTO tokens (id, token_hash, kind, user_id, session_id, created_at, expires_at, "
    "revoked) VALUES (:id, :hash, :kind, :uid, :sid, :created_at, :expires_at, :no)"
)
TOKEN_BY_HASH = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = :hash"
CONSUME_TOKEN = (
    "UPDATE tokens SET revoked = :yes WHERE token_hash = :hash AND kind = :kind "
    f"AND revoked = :no RETURNING {_TOKEN_COLUMNS}"
)
REVOKE_TOKEN = "UPDATE tokens SET revoked = :yes WHERE id = :id AND user_id = :uid"
REVOKE_USER_TOKENS = "UPDATE tokens SET revoked = :yes WHERE user_id = :uid AND kind = :kind"


@dataclass(frozen=True)
class TokenRow:
    id: str
    kind: TokenKind
    user_id: str
    session_id: str | None
    expires_at: datetime | None
    revoked: bool

    def usable(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


class UserStore:
    """The users, grants and tokens tables, over the store's executor."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._codec = rows.codec_for(executor.dialect)

    def add_user(self, user: User) -> None:
        params = {
            "id": user.id,
            "name": user.name,
            "created_at": self._codec.param(user.created_at),
        }
        with self._executor.write() as tx:
            if tx.rows(FIND_USER, {"key": user.name}):
                raise AlreadyExists(
                    f"a user named {user.name!r} exists; choose another name, or give them a "
                    "new token with `branchwork user token NAME`"
                )
            tx.run(INSERT_USER, params)
            for project_id, role in user.grants.items():
                tx.run(PUT_GRANT, {"uid": user.id, "pid": project_id, "role": role})

    def find_user(self, key: str) -> User | None:
        """A user by id or name, with their grants."""
        with self._executor.read() as tx:
            found = tx.rows(FIND_USER, {"key": key})
            return self._user(tx, found[0]) if found else None

    def list_users(self) -> list[User]:
        with self._executor.read() as tx:
            found = tx.rows(LIST_USERS)
            grants = tx.rows(ALL_GRANTS)
        by_user: dict[str, dict[str, Role]] = {}
        for user_id, project_id, role in grants:
            by_user.setdefault(user_id, {})[project_id] = role
        return [self._make_user(r, by_user.get(r[0], {})) for r in found]

    def count_users(self) -> int:
        with self._executor.read() as tx:
            return int(tx.rows(COUNT_USERS)[0][0])

    def set_grant(self, user_id: str, project_id: str, role: Role | None) -> None:
        """Give the user `role` in the project (None: take their role there away)."""
        params = {"uid": user_id, "pid": project_id, "role": role}
        with self._executor.write() as tx:
            tx.run(DELETE_GRANT if role is None else PUT_GRANT, params)

    def add_token(
        self,
        token_id: str,
        token_hash: str,
        kind: TokenKind,
        user_id: str,
        *,
        session_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        params = {
            "id": token_id,
            "hash": token_hash,
            "kind": kind,
            "uid": user_id,
            "sid": session_id,
            "created_at": self._codec.param(datetime.now(UTC)),
            "expires_at": None if expires_at is None else self._codec.param(expires_at),
            "no": False,
        }
        with self._executor.write() as tx:
            tx.run(INSERT_TOKEN, params)

    def token(self, token_hash: str) -> TokenRow | None:
        with self._executor.read() as tx:
            found = tx.rows(TOKEN_BY_HASH, {"hash": token_hash})
        return self._token(found[0]) if found else None

    def consume(self, token_hash: str, kind: TokenKind) -> TokenRow | None:
        """Use a one-time token: revoked in the same statement that reads it, so that two
        requests racing with it cannot both succeed. None when unknown or used already."""
        params = {"hash": token_hash, "kind": kind, "yes": True, "no": False}
        with self._executor.write() as tx:
            found = tx.rows(CONSUME_TOKEN, params)
        return self._token(found[0]) if found else None

    def revoke(self, token_id: str, user_id: str) -> bool:
        with self._executor.write() as tx:
            return tx.run(REVOKE_TOKEN, {"id": token_id, "uid": user_id, "yes": True}) > 0

    def revoke_all(self, user_id: str, kind: TokenKind) -> int:
        with self._executor.write() as tx:
            return tx.run(REVOKE_USER_TOKENS, {"uid": user_id, "kind": kind, "yes": True})

    def _user(self, tx: Tx, row: Row) -> User:
        grants = {pid: role for pid, role in tx.rows(GRANTS_OF, {"uid": row[0]})}
        return self._make_user(row, grants)

    def _make_user(self, row: Row, grants: dict[str, Any]) -> User:
        return User(id=row[0], name=row[1], created_at=self._codec.value(row[2]), grants=grants)

    def _token(self, row: Row) -> TokenRow:
        id_, kind, user_id, session_id, expires_at, revoked = row
        expires = None if expires_at is None else self._codec.value(expires_at)
        return TokenRow(id_, kind, user_id, session_id, expires, bool(revoked))
