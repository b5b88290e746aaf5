"""Who may do what: users, their roles per project, and the principal a request acts as.

Roles are ordered; each includes the ones before it:

| role | may |
| --- | --- |
| viewer | read projects, sessions, events, diffs, files |
| member | + create sessions, chat, run commands, write files, revert, answer the agent's |
| | approvals, open a terminal |
| maintainer | + approve and merge proposals, archive and restore sessions, configure the project |
| admin | + manage users, their roles and projects |

A grant on project `*` holds for every project, those added later included. A share link is a
principal scoped to one session that may only read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "member", "maintainer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "member", "maintainer", "admin")
TokenKind = Literal["user", "browser", "login", "share"]
ALL_PROJECTS = "*"


def role_rank(role: Role) -> int:
    return ROLES.index(role)


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    created_at: datetime
    grants: dict[str, Role] = Field(
        default_factory=dict, description="Role per project id (`*`: every project)."
    )


class Principal(BaseModel):
    """Who a request acts as: a user (through one of their tokens), or a share link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    name: str
    token_id: str
    grants: dict[str, Role] = Field(default_factory=dict)
    session_id: str | None = Field(default=None, description="A share link's only session.")

    def role_in(self, project_id: str) -> Role | None:
        """The highest role this principal holds in the project (a share link: none)."""
        if self.session_id is not None:
            return None
        found = [r for k, r in self.grants.items() if k in (project_id, ALL_PROJECTS)]
        return max(found, key=ROLES.index) if found else None

    def may(self, project_id: str, role: Role, *, session_id: str | None = None) -> bool:
        """Whether it may act with `role` in the project (on `session_id`, for a share link)."""
        if self.session_id is not None:
            return role == "viewer" and session_id == self.session_id
        held = self.role_in(project_id)
        return held is not None and role_rank(held) >= role_rank(role)

    @property
    def is_admin(self) -> bool:
        """An admin of every project: may add users and projects."""
        return self.session_id is None and self.grants.get(ALL_PROJECTS) == "admin"


class IssuedToken(BaseModel):
    """A token as it is handed out, once: the secret itself is never stored (only its hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: TokenKind
    secret: str
    user_id: str
    session_id: str | None = None
    expires_at: datetime | None = None
