"""The API's request and response bodies (what /docs shows). Domain models (Project, Session,
events) are returned as they are; these are the shapes only the API has."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

import branchwork as bw


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(_In):
    source: str = Field(min_length=1, description="A local repository path, or a git URL.")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class SessionIn(_In):
    title: str | None = Field(default=None, max_length=500)
    mode: Literal["ask", "auto-edit", "autopilot"] | None = None
    model: str | None = Field(default=None, max_length=300)


class MessageIn(_In):
    text: str = Field(min_length=1, max_length=100_000)
    model: str | None = Field(default=None, max_length=300)
    mode: Literal["ask", "auto-edit", "autopilot"] | None = None
    max_steps: int | None = Field(default=None, ge=1, le=200)


class AnswerIn(_In):
    approved: bool
    reason: str = Field(default="", max_length=2000)


class CommandIn(_In):
    command: str = Field(min_length=1, max_length=20_000, description="A shell line.")
    timeout: float | None = Field(default=None, gt=0, le=86_400)


class FileIn(_In):
    content: str = Field(max_length=10_000_000)


class CheckpointIn(_In):
    message: str = Field(default="checkpoint", min_length=1, max_length=500)


class RevertIn(_In):
    to: str = Field(min_length=1, max_length=100, description="Sha prefix, -N, or base.")


class UserIn(_In):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "member", "maintainer", "admin"] = "member"
    project: str | None = Field(default=None, description="Project name or id; none: all.")


class GrantIn(_In):
    role: Literal["viewer", "member", "maintainer", "admin"] | None
    project: str | None = None


class LoginIn(_In):
    token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    user_id: str
    name: str
    admin: bool
    grants: dict[str, str]
    session_id: str | None = Field(description="Set for a share link: its only session.")


class LoginOut(Me):
    token: str = Field(
        description="The browser's token: the page keeps it (per origin) and sends it as a "
        "bearer header. Not a cookie: cookies are shared by every port of a host, so a "
        "session's dev server on 127.0.0.1:PORT would be sent it."
    )
    expires_at: str | None


class TokenOut(BaseModel):
    id: str
    kind: str
    token: str = Field(description="The secret: shown this once, stored only as a hash.")
    expires_at: str | None
    url: str | None = None


class UserOut(BaseModel):
    user: bw.User
    token: TokenOut | None = None


class SessionOut(BaseModel):
    """A session as lists show it."""

    model_config = ConfigDict(extra="allow")

    id: str
    short_id: str
    project_id: str
    title: str
    branch: str
    status: str
    activity: Literal["idle", "running", "needs_approval"]
    last_turn_status: str | None
    pending_approvals: int
    last_seq: int


def project_out(project: bw.Project) -> bw.Project:
    """The project as the API shows it: the URL it was cloned from without the user name and
    password or token it may carry (`https://ann:TOKEN@host/repo.git`), which are the server's
    credentials, not its readers'."""
    if not project.origin or "@" not in project.origin:
        return project
    parts = urlsplit(project.origin)
    if not parts.scheme or "@" not in parts.netloc:
        return project  # `git@host:repo` (scp-like): a user name for ssh, no secret
    netloc = parts.netloc.rsplit("@", 1)[1]
    shown = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return project.model_copy(update={"origin": shown})


class SessionDetailsOut(BaseModel):
    session: SessionOut
    project: bw.Project
    state: bw.SessionState
    answerable_approvals: list[str] = Field(
        description="Approval requests this server can answer now (its own background turns)."
    )


class TicketOut(BaseModel):
    session_id: str
    first_seq: int = Field(description="Seq of the turn's first event: stream from before it.")


class EventsPage(BaseModel):
    events: list[dict[str, Any]]
    last_seq: int = Field(description="Seq of the last event in this page (or `after`).")
    more: bool = Field(description="Whether more events follow: ask again with after=last_seq.")


class WriteOut(BaseModel):
    written: dict[str, Any]
    checkpoint: dict[str, Any] | None


class CommandOut(BaseModel):
    finished: dict[str, Any]
    checkpoint: dict[str, Any] | None


class DiffOut(BaseModel):
    against: str
    diff: str


class FileOut(BaseModel):
    path: str
    content: str


class CancelOut(BaseModel):
    cancel_requested: bool
