"""Recovering projects and sessions when the database was lost (emptied, damaged, moved aside).

Git is the source of truth for files (DESIGN.md): every session has its branch
(`<prefix><short id>-<slug>`), and a live one its worktree in the data directory. From those,
`rebuild` registers the projects again and gives every session branch a session record:
active when its worktree is there, archived otherwise. The short id (and so the branch name) is
kept; the event histories are not recoverable from git: each rebuilt session starts with its
`session_created` event and a note saying what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, GitError
from branchwork.domain.events import Note, SessionCreated, utc_now
from branchwork.domain.ids import new_id, short_id
from branchwork.domain.models import Project, Session, SessionStatus
from branchwork.service.base import Services
from branchwork.service.projects import add_project

REBUILT_NOTE = (
    "rebuilt from its branch after the database was lost: the files and the branch are "
    "intact, the history before this point is gone"
)


@dataclass
class RebuildReport:
    """What `rebuild` registered again (projects by name, sessions by short id)."""

    projects: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def rebuild(services: Services) -> RebuildReport:
    report = RebuildReport()
    for name, repo in _repositories(services):
        project = _project(services, name, repo, report)
        if project is not None:
            _sessions(services, project, report)
    return report


def _repositories(services: Services) -> list[tuple[str, Path]]:
    """(project name, repository root) of every worktree left in the data directory."""
    found: dict[str, Path] = {}
    root = services.home / "worktrees"
    for worktree in sorted(root.glob("*/*")) if root.is_dir() else []:
        repo = _repository_of(worktree)
        if repo is not None:
            found.setdefault(worktree.parent.name, repo)
    return sorted(found.items())


def _repository_of(worktree: Path) -> Path | None:
    try:
        common = Path(gitops.run_git(["rev-parse", "--git-common-dir"], worktree).strip())
    except GitError:
        return None
    common = common if common.is_absolute() else (worktree / common).resolve()
    return common.parent if common.name == ".git" else None


def _project(services: Services, name: str, repo: Path, report: RebuildReport) -> Project | None:
    known = services.store.project_containing(repo)
    if known is not None:
        return known
    try:
        project = add_project(services, str(repo), name)
    except BranchworkError as exc:
        report.skipped.append(f"{repo}: {exc.message}")
        return None
    report.projects.append(project.name)
    return project


def _sessions(services: Services, project: Project, report: RebuildReport) -> None:
    repo, prefix = Path(project.path), services.settings.branch_prefix
    known = {s.branch for s in services.store.list_sessions(project.id, include_archived=True)}
    for branch in gitops.branches(repo, prefix):
        short, _, slug = branch.removeprefix(prefix).partition("-")
        if branch in known or len(short) != 8 or not slug:
            continue
        session = _record(services, project, branch, short, slug)
        report.sessions.append(session.short_id)


def _record(services: Services, project: Project, branch: str, short: str, slug: str) -> Session:
    repo = Path(project.path)
    worktree = services.home / "worktrees" / project.name / f"{short}-{slug}"
    status: SessionStatus = "active" if (worktree / ".git").is_file() else "archived"
    base = gitops.merge_base(repo, branch, project.main_branch)
    session_id = new_id()[:18] + short.upper()  # keeps the short id the branch names
    assert short_id(session_id) == short
    now = utc_now()
    draft = Session(
        id=session_id,
        project_id=project.id,
        title=slug.replace("-", " "),
        branch=branch,
        base_commit=base,
        worktree=str(worktree),
        status=status,
        created_at=now,
        last_activity=now,
        port=services.settings.port_base,
    )
    first = SessionCreated(
        project_id=project.id,
        title=draft.title,
        branch=branch,
        base_commit=base,
        from_ref=project.main_branch,
        worktree=str(worktree),
    )
    session = services.recorder.create_session(
        draft, first, port_block=services.settings.port_block
    )
    services.recorder.record(session, Note(level="warning", text=REBUILT_NOTE))
    return session
