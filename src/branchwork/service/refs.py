"""How callers name a session or a project: the object, its id or name, or None (the one the
working directory means)."""

from __future__ import annotations

from branchwork.domain.models import Project, Session

SessionRef = Session | str | None
ProjectRef = Project | str | None
