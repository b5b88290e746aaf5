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
