"""Which project and which session a request means: decided here, for every front-end and for
the Python API.

A **session** is, in this order:

1. the one named: full id, short id (or a prefix of four or more characters), or branch name;
2. the session whose worktree holds the working directory (you stand in it);
3. the current session *of the project of the working directory* (`session switch` sets it;
   "current" is per project), when it is active (archiving it clears it);
4. that project's newest active session.

A request never lands on another project's session unless that session is named. When the
working directory belongs to no project, the request is refused with how to choose.

A **project** is the one named (name or id), else the project of the working directory: its
checkout, its clone, or the worktree of one of its sessions.
"""

from __future__ import annotations

from pathlib import Path

from branchwork.domain.errors import Conflict, InvalidInput, NotFound
from branchwork.domain.models import Project, Session
from branchwork.service.base import Services

CURRENT_PREFIX = "current_session:"


def get_project(services: Services, key: str) -> Project:
    """A project by name or id."""
    project = services.store.find_project(key)
    if project is None:
        known = ", ".join(p.name for p in services.store.list_projects()) or "none yet"
        raise NotFound(f"no project {key!r} (known: {known}); register it first with `project add`")
    return project


def project_at(services: Services, path: Path) -> Project | None:
    """The project whose checkout, clone or session worktree holds `path`."""
    path = path.resolve()
    inside = services.store.session_containing(path)  # a worktree may lie inside another repo
    if inside is not None:
        return services.store.find_project(inside.project_id)
    return services.store.project_containing(path)


def resolve_project(services: Services, key: str | None, cwd: Path) -> Project:
    if key:
        return get_project(services, key)
    found = project_at(services, cwd)
    if found is None:
        raise NotFound(
            f"{cwd} belongs to no project; name the project, or work from inside its checkout "
            "(`project list` shows them, `project add PATH` registers one)"
        )
    return found


def find_session(services: Services, key: str) -> Session:
    """A session by full id, branch, or short id (or a unique prefix of it)."""
    matches = services.store.find_sessions(key.strip())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no session {key!r}; `session list --all` shows them")
    raise InvalidInput(f"{key!r} matches {len(matches)} sessions; give more of the id")


def session_in(services: Services, cwd: Path, project: Project | None = None) -> Session | None:
    """Rules 2–4 of the module docstring: the session the working directory means, or None when
    its project has none. Raises when the directory belongs to no project."""
    if project is None:
        inside = session_in_worktree(services, cwd)
        if inside is not None:
            return inside
        project = resolve_project(services, None, cwd)
    return current_session(services, project) or newest_session(services, project)


def session_in_worktree(services: Services, cwd: Path) -> Session | None:
    """The session whose worktree holds `cwd`."""
    return services.store.session_containing(cwd.resolve())


def resolve_session(services: Services, key: str | None, cwd: Path) -> Session:
    if key:
        return find_session(services, key)
    inside = session_in_worktree(services, cwd)
    if inside is not None:
        return inside
    project = project_at(services, cwd)
    if project is None:
        raise NotFound(
            f"{cwd} belongs to no project; name the session (`session list --all` shows "
            "them), or work from inside a project's checkout"
        )
    found = current_session(services, project) or newest_session(services, project)
    if found is None:
        raise NotFound(
            f"project {project.name!r} has no active session; start one (`session new`) or "
            "name an archived one to restore"
        )
    return found


def current_session(services: Services, project: Project) -> Session | None:
    """The project's current session, if it is active."""
    current = services.store.get_state(CURRENT_PREFIX + project.id)
    if not current:
        return None
    try:
        session = services.store.get_session(current)
    except NotFound:
        services.store.set_state(CURRENT_PREFIX + project.id, None)
        return None
    return session if session.status == "active" else None


def newest_session(services: Services, project: Project) -> Session | None:
    active = services.store.list_sessions(project.id)
    return active[0] if active else None


def make_current(services: Services, session: Session) -> Session:
    """Make `session` the current one of its project (an archived one must be restored)."""
    if session.status != "active":
        raise Conflict(
            f"session {session.short_id} is {session.status}; restore it "
            f"(`session restore {session.short_id}`), which also makes it current"
        )
    services.store.set_state(CURRENT_PREFIX + session.project_id, session.id)
    return session


def forget_current(services: Services, session: Session) -> None:
    """`session` is no longer its project's current session (it was archived)."""
    key = CURRENT_PREFIX + session.project_id
    if services.store.get_state(key) == session.id:
        services.store.set_state(key, None)


def project_of(services: Services, session: Session) -> Project:
    return get_project(services, session.project_id)
