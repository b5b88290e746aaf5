"""The use-case context, and what the use cases share below them.

A use case starts with `open_scope`: the session, its project, its worktree (ensured once:
restored when it was evicted or deleted) and its redactor are resolved here, once, and handed
down as one frozen `SessionScope`; helpers take the scope, never an id to look up again.

Below the use cases live, here and only here: worktree restore, checkpoints, and recovery of
commands whose Branchwork process died (`close_dead_commands`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, Conflict, NotFound
from branchwork.domain.events import (
    Actor,
    Checkpoint,
    CommandStarted,
    Event,
    Interrupted,
    Note,
    Payload,
    Restored,
)
from branchwork.domain.models import Project, Session
from branchwork.sandbox.liveness import process_is_gone
from branchwork.sandbox.redact import Redactor
from branchwork.service.base import Services
from branchwork.service.resolve import project_of
from branchwork.service.state import session_state


@dataclass(frozen=True)
class SessionScope:
    """One use case's view of one session, resolved once."""

    services: Services
    session: Session
    project: Project
    redactor: Redactor

    @property
    def worktree(self) -> Path:
        return Path(self.session.worktree)

    def record(self, payload: Payload, actor: Actor = "system") -> Event:
        return self.services.recorder.record(self.session, payload, actor)

    def record_many(self, items: Sequence[tuple[Payload, Actor]]) -> list[Event]:
        return self.services.recorder.record_many(self.session, items)

    def with_session(self, session: Session) -> SessionScope:
        return replace(self, session=session)


def open_scope(services: Services, session: Session, *, worktree: bool = True) -> SessionScope:
    """The scope of a use case on `session`. With `worktree`, the session must be active; its
    worktree is restored if it went missing, and commands left open by a dead process are
    closed."""
    project = project_of(services, session)
    scope = SessionScope(services, session, project, services.recorder.redactor(project.id))
    if not worktree:
        return scope
    scope = ensure_worktree(scope)
    close_dead_commands(scope)
    return scope


def require_active(session: Session) -> None:
    if session.status != "active":
        raise Conflict(
            f"session {session.short_id} is {session.status}; restore it first "
            f"(`session restore {session.short_id}`)"
        )


def repo_path(project: Project) -> Path:
    """The project's repository, which must still be where it was registered."""
    path = Path(project.path)
    if not (path / ".git").exists():
        raise NotFound(
            f"the repository of project {project.name!r} is no longer at {path}; move it back, "
            f"or remove the project (`project remove {project.name} --force`) and add it again"
        )
    return path


# -- worktrees ----------------------------------------------------------------------------------


def ensure_worktree(scope: SessionScope) -> SessionScope:
    """An active session whose worktree vanished (evicted, deleted) gets it back, losslessly."""
    require_active(scope.session)
    if scope.worktree.exists():
        return scope
    try:
        return restore_worktree(scope)
    except BranchworkError as exc:
        raise Conflict(
            f"the worktree of session {scope.session.short_id} is missing and could not be "
            f"restored: {exc.message}"
        ) from exc


def restore_worktree(scope: SessionScope) -> SessionScope:
    """Recreate the worktree from the branch tip and make the session active again."""
    repo = repo_path(scope.project)
    with gitops.repo_lock(scope.services.lock_dir, repo):
        if scope.worktree.exists():
            raise Conflict(f"{scope.worktree} exists but is not this session's worktree; move it")
        recreated = _ensure_branch(scope, repo)
        gitops.restore_worktree(repo, scope.worktree, scope.session.branch)
    head = gitops.head_commit(scope.worktree)
    if recreated:
        scope.record(
            Note(
                level="warning",
                text=f"branch {scope.session.branch} was missing; recreated at {head[:12]}, "
                "its last recorded head",
            )
        )
    settings = scope.services.settings
    session = scope.services.recorder.set_status(
        scope.session,
        "active",
        Restored(head=head, worktree=scope.session.worktree),
        ports=(settings.port_base, settings.port_block),
    )
    restored = scope.with_session(session)
    copy_into_worktree(restored)
    return restored


def _ensure_branch(scope: SessionScope, repo: Path) -> bool:
    """Recreate a deleted session branch at the last head the history recorded; True if so."""
    branch = scope.session.branch
    if gitops.branch_exists(repo, branch):
        return False
    head = session_state(scope.services.store, scope.session.id).head
    if not head or not gitops.commit_exists(repo, head):
        raise Conflict(
            f"branch {branch} no longer exists and its last commit is gone; "
            "the session's files cannot be restored (its history stays readable)"
        )
    gitops.run_git(["branch", branch, head], repo)
    return True


def drop_worktree(scope: SessionScope) -> str:
    """Save the worktree's pending changes as a checkpoint, then remove it; returns the head."""
    if scope.worktree.exists():
        take_checkpoint(scope, "before archive", automatic=True)
    repo = Path(scope.project.path)
    with gitops.repo_lock(scope.services.lock_dir, repo):
        head = gitops.run_git(["rev-parse", scope.session.branch], repo).strip()
        gitops.remove_worktree(repo, scope.worktree)
    return head


def copy_untracked(source: Path, dest: Path, patterns: list[str]) -> list[str]:
    """Copy files matching the glob patterns from the user's checkout; never outside it."""
    copied: list[str] = []
    for pattern in patterns:
        for path in sorted(source.glob(pattern)):
            real = path.resolve()
            if not path.is_file() or not real.is_relative_to(source) or ".git" in path.parts:
                continue
            relative = path.relative_to(source)
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real, target)
            copied.append(relative.as_posix())
    return copied


def copy_into_worktree(scope: SessionScope) -> None:
    """Copy the project's configured untracked files (such as `.env`) into the worktree."""
    patterns = scope.project.config.copy_files
    copied = copy_untracked(Path(scope.project.path), scope.worktree, patterns)
    if copied:
        scope.record(Note(text=f"copied from your checkout: {', '.join(copied)}"))


# -- checkpoints --------------------------------------------------------------------------------


def take_checkpoint(
    scope: SessionScope, message: str, *, automatic: bool = False
) -> Checkpoint | None:
    """Commit the worktree's state to the session branch; None when nothing changed."""
    message = scope.redactor.redact(message)  # commit messages are shared with the repository
    info = gitops.checkpoint(scope.worktree, message, scope.project.config.copy_files)
    if info is None:
        return None
    payload = Checkpoint(
        commit=info.commit,
        parent=info.parent,
        message=message,
        files=info.files,
        automatic=automatic,
    )
    event = scope.record(payload, "system" if automatic else "user")
    assert isinstance(event.payload, Checkpoint)
    return event.payload


# -- commands whose process died ----------------------------------------------------------------


def pidfile(services: Services, command_id: str) -> Path:
    """Where a running command's process group is noted, so that a later process can stop what
    a crashed Branchwork left running."""
    return services.home / "running" / command_id


def open_commands(scope: SessionScope) -> list[CommandStarted]:
    """The commands of the session that started and did not finish (nor were closed)."""
    open_ids = set(session_state(scope.services.store, scope.session.id).open_commands)
    if not open_ids:
        return []
    started = scope.services.store.iter_events(scope.session.id, kinds=["command_started"])
    return [
        e.payload
        for e in started
        if isinstance(e.payload, CommandStarted) and e.payload.command_id in open_ids
    ]


def running_commands(scope: SessionScope) -> list[str]:
    """The command lines still running in the session (their Branchwork process is alive)."""
    return [p.command for p in open_commands(scope) if not process_is_gone(p.pid, p.host)]


def close_dead_commands(scope: SessionScope) -> list[str]:
    """Record as interrupted the commands whose Branchwork process died before they finished
    (a crash, a kill -9), and stop what they left running; live ones are left alone."""
    closed = []
    for started in open_commands(scope):
        if process_is_gone(started.pid, started.host):
            _kill_orphan(scope.services, started.command_id)
            reason = f"`{started.command}` did not finish: the process running it stopped"
            scope.record(Interrupted(reason=reason, call_id=started.command_id))
            closed.append(started.command_id)
    return closed


def _kill_orphan(services: Services, command_id: str) -> None:
    path = pidfile(services, command_id)
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        os.killpg(int(path.read_text()), signal.SIGKILL)
    path.unlink(missing_ok=True)
