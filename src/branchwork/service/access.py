"""Users, tokens and who a request acts as (the server's authentication and authorization).

Tokens are random (256 bits, `secrets.token_urlsafe`), shown once and stored as their SHA-256.
Their kinds:

| kind | for | lives |
| --- | --- | --- |
| `user` | `Authorization: Bearer` of scripts and people (`branchwork user add`) | until revoked |
| `login` | the one-time link `serve --local` prints | 15 minutes, one use |
| `browser` | the cookie a browser gets for a login link | 7 days |
| `share` | a read-only link to one session | 30 days, or until revoked |

`authenticate` keeps what it found for a few seconds (`CACHE_S`), so that a stream of requests
does not read the users tables on each: a revoked token or a changed role takes effect within
that time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

from branchwork.domain.access import (
    ALL_PROJECTS,
    ROLES,
    IssuedToken,
    Principal,
    Role,
    TokenKind,
    User,
)
from branchwork.domain.errors import InvalidInput, NotFound, Unauthenticated
from branchwork.domain.ids import new_id
from branchwork.domain.models import Session
from branchwork.service.base import Services
from branchwork.store.users import TokenRow, UserStore

CACHE_S = 2.0
LOCAL_ADMIN = "local"
_PREFIX: dict[TokenKind, str] = {
    "user": "bwu_",
    "browser": "bwb_",
    "login": "bwl_",
    "share": "bws_",
}
LIFETIME: dict[TokenKind, timedelta | None] = {
    "user": None,
    "login": timedelta(minutes=15),
    "browser": timedelta(days=7),
    "share": timedelta(days=30),
}


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


class Access:
    """Users and tokens of one data directory."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._users = UserStore(services.store.executor)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal]] = {}

    # -- users ------------------------------------------------------------------------------

    def add_user(
        self, name: str, role: str = "member", project_id: str | None = None
    ) -> tuple[User, IssuedToken]:
        """A new user with `role` in the project (in every project when None), and their first
        token."""
        checked = check_role(role)
        if not name.strip() or len(name) > 200:
            raise InvalidInput("a user name must be 1 to 200 characters; give another name")
        grants = {project_id or ALL_PROJECTS: checked}
        user = User(id=new_id(), name=name.strip(), created_at=datetime.now(UTC), grants=grants)
        self._users.add_user(user)
        return user, self.issue(user.id, "user")

    def users(self) -> list[User]:
        return self._users.list_users()

    def user(self, key: str) -> User:
        found = self._users.find_user(key)
        if found is None:
            raise NotFound(f"no user {key!r}; `branchwork user list` shows them")
        return found

    def grant(self, key: str, project_id: str | None, role: str | None) -> User:
        """Set (or with None, take away) the user's role in a project (every project: None)."""
        user = self.user(key)
        self._users.set_grant(
            user.id, project_id or ALL_PROJECTS, check_role(role) if role else None
        )
        self._forget()
        return self.user(user.id)

    def new_token(self, key: str) -> IssuedToken:
        """Another token for the user (the old ones keep working until revoked)."""
        return self.issue(self.user(key).id, "user")

    def revoke_tokens(self, key: str) -> int:
        """Revoke every token of the user; returns how many were live."""
        user = self.user(key)
        count = sum(self._users.revoke_all(user.id, kind) for kind in _PREFIX)
        self._forget()
        return count

    # -- tokens -----------------------------------------------------------------------------

    def issue(self, user_id: str, kind: TokenKind, *, session_id: str | None = None) -> IssuedToken:
        secret = _PREFIX[kind] + secrets.token_urlsafe(32)
        lifetime = LIFETIME[kind]
        expires = None if lifetime is None else datetime.now(UTC) + lifetime
        token_id = new_id()
        self._users.add_token(
            token_id, hash_token(secret), kind, user_id, session_id=session_id, expires_at=expires
        )
        return IssuedToken(
            id=token_id,
            kind=kind,
            secret=secret,
            user_id=user_id,
            session_id=session_id,
            expires_at=expires,
        )

    def authenticate(self, secret: str) -> Principal:
        """Who the token acts as; `Unauthenticated` for an unknown, expired, revoked or
        one-time token."""
        digest = hash_token(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        principal = self._principal(self._users.token(digest))
        with self._lock:
            self._cache[digest] = (now, principal)
        return principal

    def _principal(self, row: TokenRow | None) -> Principal:
        if row is None or row.kind == "login" or not row.usable(datetime.now(UTC)):
            raise Unauthenticated(
                "the token is unknown, expired or revoked; ask an admin for a new one "
                "(`branchwork user token NAME`), or log in again"
            )
        user = self._users.find_user(row.user_id)
        if user is None:
            raise Unauthenticated("the token's user no longer exists; ask an admin for a token")
        if row.kind == "share":
            return self._share_principal(user, row)
        return Principal(user_id=user.id, name=user.name, token_id=row.id, grants=user.grants)

    def _share_principal(self, user: User, row: TokenRow) -> Principal:
        """A share link reads no more than its maker may still read: a maker who lost their
        role in the session's project (or the session itself) takes their links with them."""
        maker = Principal(user_id=user.id, name=user.name, token_id=row.id, grants=user.grants)
        try:
            project_id = self._services.store.get_session(row.session_id or "").project_id
        except NotFound:
            project_id = None
        if project_id is None or not maker.may(project_id, "viewer"):
            raise Unauthenticated(
                "this share link no longer works: whoever made it may no longer read the "
                "session; ask someone who may for a new link"
            )
        return Principal(
            user_id=user.id, name=user.name, token_id=row.id, session_id=row.session_id
        )

    def exchange_login(self, secret: str) -> IssuedToken:
        """A browser token for a one-time login token (which is used up)."""
        row = self._users.consume(hash_token(secret), "login")
        if row is None or not (row.expires_at is None or row.expires_at > datetime.now(UTC)):
            raise Unauthenticated(
                "this login link was used already or has expired; run `branchwork serve --local` "
                "again (or `branchwork user login NAME`) for a new one"
            )
        return self.issue(row.user_id, "browser")

    def login_link_token(self, key: str) -> IssuedToken:
        return self.issue(self.user(key).id, "login")

    def local_admin(self) -> IssuedToken:
        """A one-time login token of the single local admin (created on first use)."""
        found = self._users.find_user(LOCAL_ADMIN)
        if found is None:
            found, _ = self.add_user(LOCAL_ADMIN, "admin")
        return self.issue(found.id, "login")

    def share(self, principal: Principal, session: Session) -> IssuedToken:
        """A read-only token for one session, made by someone who may read it."""
        if not principal.may(session.project_id, "viewer", session_id=session.id):
            raise NotFound(f"no session {session.id!r}; `session list --all` shows them")
        if principal.session_id is not None:
            raise InvalidInput("a share link cannot make another; ask the session's owner")
        return self.issue(principal.user_id, "share", session_id=session.id)

    def revoke(self, principal: Principal, token_id: str) -> None:
        if not self._users.revoke(token_id, principal.user_id):
            raise NotFound(f"you have no token {token_id!r}; nothing was revoked")
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
