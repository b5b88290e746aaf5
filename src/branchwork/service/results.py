"""What the facade returns beyond the domain models: small frozen views for front-ends."""

from __future__ import annotations

from dataclasses import dataclass

from branchwork.domain.models import Project, Session
from branchwork.domain.replay import SessionState


@dataclass(frozen=True)
class SessionListing:
    """Sessions with what a list shows beside them: the projects' names and current sessions."""

    sessions: list[Session]
    project_names: dict[str, str]
    current_ids: frozenset[str]


@dataclass(frozen=True)
class SessionDetails:
    """One session with its project and the state its history adds up to."""

    session: Session
    project: Project
    state: SessionState


@dataclass(frozen=True)
class SessionSummary:
    """What a session list shows of a session while it works: `activity` is `running` (a turn
    or a command is open), `needs_approval` (its turn waits for a yes/no) or `idle`; a session
    is never `idle` while work still runs."""

    session: Session
    activity: str
    last_turn_status: str | None
    pending_approvals: int
    last_seq: int
    turns: int
