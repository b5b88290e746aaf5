"""The use-case context, and what the use cases share below them.

A use case starts with `open_scope`: the session, its project, its worktree (ensured once:
restored when it was evicted or deleted) and its redactor are resolved here, once, and handed
down as one frozen `SessionScope`; helpers take the scope, never an id to look up again.

Below the use cases live, here and only here: worktree restore, checkpoints, and recovery of
what a Branchwork process that died left behind: its commands (`close_dead_commands`), git's
lock files (`worktree_lock`), its files in the data dir's `tmp/` (`remove_stale_scratch`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

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
from branchwork.domain.replay import SessionState
from branchwork.domain.text import require_utf8
from branchwork.sandbox import remove_stale_outputs
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.sandbox.redact import Redactor
from branchwork.service.base import Services
from branchwork.service.resolve import project_of
from branchwork.service.state import session_state
from branchwork.store import file_write_error

GIT_LOCK_ATTEMPTS = 3  # a git step retried after a lock another git took meanwhile
STALE_OUTPUT_S = 10.0  # output files of dead writers older than this are removed

_SCRATCH_NAME = re.compile(r"^(?:[a-z]+-)+?(\d+)-")  # what scratch_prefix names

T = TypeVar("T")


@dataclass(frozen=True)
class SessionScope:
    """One use case's view of one session, resolved once."""

    services: Services
    session: Session
    project: Project
    redactor: Redactor
    # What one use case has learnt and keeps to itself (the search view's check, …).
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

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
    ensure_on_branch(scope)
    state = session_state(services.store, session.id)
    close_dead_commands(scope, state)
    record_unrecorded_checkpoints(scope, state)
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
    with repo_lock(scope.services, repo):
        if _restored_meanwhile(scope):
            return scope.with_session(scope.services.store.get_session(scope.session.id))
        if scope.worktree.exists():
            raise Conflict(f"{scope.worktree} exists but is not this session's worktree; move it")
        recreated = _ensure_branch(scope, repo)
        gitops.restore_worktree(repo, scope.worktree, scope.session.branch)
        pending = gitops.apply_saved(scope.worktree, parked_ref(scope.session.id))
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
    _unpark(restored, pending)
    return restored


def parked_ref(session_id: str) -> str:
    """Where an evicted worktree's uncommitted files wait (a ref, never a branch)."""
    return f"refs/branchwork/parked/{session_id}"


def parked_key(session_id: str) -> str:
    """The state key saying a session's worktree was evicted (when, why)."""
    return f"parked:{session_id}"


def _unpark(scope: SessionScope, pending: bool) -> None:
    store = scope.services.store
    if store.get_state(parked_key(scope.session.id)) is None and not pending:
        return
    store.set_state(parked_key(scope.session.id), None)
    extra = " with the uncommitted changes it had" if pending else ""
    scope.record(Note(text=f"worktree restored after its eviction{extra}; nothing was lost"))


def _restored_meanwhile(scope: SessionScope) -> bool:
    """Another process restored the worktree while this one waited for the lock."""
    if not (scope.worktree / ".git").is_file():
        return False
    current = scope.services.store.get_session(scope.session.id)
    return current.status == "active" and gitops.attached_branch(scope.worktree) is not None


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
    """Save the worktree's pending changes as a checkpoint (and its copied files aside), then
    remove it; returns the head."""
    if scope.worktree.exists():
        ensure_on_branch(scope)
        take_checkpoint(scope, "before archive", automatic=True)
        save_copies(scope)
    repo = Path(scope.project.path)
    with repo_lock(scope.services, repo):
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
    """Put the project's configured untracked files (such as `.env`) into the worktree: the
    session's own copies when it saved them (archive, eviction), else your checkout's."""
    patterns = scope.project.config.copy_files
    saved = saved_copies_dir(scope)
    if saved.is_dir():
        restored = copy_untracked(saved, scope.worktree, patterns)
        shutil.rmtree(saved, ignore_errors=True)
        if restored:
            scope.record(Note(text=f"restored the session's own copies: {', '.join(restored)}"))
            return
    copied = copy_untracked(Path(scope.project.path), scope.worktree, patterns)
    if copied:
        scope.record(Note(text=f"copied from your checkout: {', '.join(copied)}"))


def saved_copies_dir(scope: SessionScope) -> Path:
    """Where the session's copied files wait while its worktree is gone (mode 0700: they may
    hold secrets such as `.env`)."""
    return scope.services.home / "sessions" / scope.session.id / "copied"


def save_copies(scope: SessionScope) -> list[str]:
    """Keep the worktree's copied files (never committed) so that a restore brings the
    session's edits back, not the checkout's version."""
    patterns = scope.project.config.copy_files
    saved = saved_copies_dir(scope)
    if not patterns or not scope.worktree.exists():
        return []
    saved.mkdir(parents=True, exist_ok=True)
    os.chmod(saved.parent, 0o700)
    return copy_untracked(scope.worktree, saved, patterns)


# -- the worktree's git state --------------------------------------------------------------------


@contextmanager
def worktree_lock(scope: SessionScope) -> Iterator[None]:
    """Serialize what changes the worktree's git index and HEAD (checkpoints, revert, force-add,
    repairs) across threads and processes. Holding it, no git of ours runs in the worktree, so
    git lock files left by a git that was killed are recovered here, at once, each recorded in
    a note (`gitops.recover_locks` has the rule, and waits for a person's git)."""
    lock = gitops.file_lock(scope.services.lock_dir / f"session-{scope.session.id}.lock")
    with in_data_dir(scope.services, lock):
        recover_git_locks(scope)
        yield


def repo_lock(services: Services, repo: Path) -> AbstractContextManager[None]:
    """`gitops.repo_lock` of `repo`, its lock file in the data dir (see `in_data_dir`)."""
    return in_data_dir(services, gitops.repo_lock(services.lock_dir, repo))


@contextmanager
def in_data_dir(services: Services, lock: AbstractContextManager[None]) -> Iterator[None]:
    """Hold `lock`, a file lock kept in the data dir's `locks/`: one this user cannot make
    there (a read-only data dir, a full disk) is said as the data directory's problem."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock)
        except OSError as exc:
            said = file_write_error(exc, "a lock file", data_dir=services.home)
            if said is None:
                raise
            raise said from exc
        yield


def recover_git_locks(scope: SessionScope) -> None:
    """Remove the git lock files no running git holds; record each in a note. Only under
    `worktree_lock`."""
    repo = Path(scope.project.path)
    removed = gitops.recover_locks(scope.worktree, scope.session.branch, repo)
    if removed:
        scope.record_many([(_lock_note(lock), "system") for lock in removed])


def _lock_note(lock: gitops.GitLock) -> Note:
    return Note(
        level="warning",
        text=f"removed a stale git {lock.name} left by a git process that was killed ({lock.path})",
    )


def git_step(scope: SessionScope, step: Callable[[], T]) -> T:
    """Run `step` (git commands that lock the worktree's index or refs) under `worktree_lock`:
    when git finds a lock taken (a git that is not ours started meanwhile), the lock is
    recovered or waited for, and the step retried."""
    for _ in range(GIT_LOCK_ATTEMPTS - 1):
        try:
            return step()
        except gitops.GitLocked:
            recover_git_locks(scope)
    return step()


def ensure_on_branch(scope: SessionScope) -> None:
    """The worktree's HEAD must be on the session's branch: a deleted branch is recreated at the
    last head the history recorded, a detached HEAD (or another branch) is put back; the
    files stay as they are, the next checkpoint records them. Recorded when it happens."""
    branch = scope.session.branch
    if gitops.attached_branch(scope.worktree) == branch:
        return
    with worktree_lock(scope):
        if gitops.attached_branch(scope.worktree) == branch:
            return
        _put_back_on_branch(scope, branch)


def _put_back_on_branch(scope: SessionScope, branch: str) -> None:
    repo = Path(scope.project.path)
    detached_at = gitops.head_commit(scope.worktree)
    if gitops.branch_exists(repo, branch):
        git_step(scope, lambda: gitops.reattach(scope.worktree, branch, at=None))
        text = f"HEAD had left branch {branch} (it was at {detached_at[:12]}); put back on it"
    else:
        recorded = session_state(scope.services.store, scope.session.id).head
        at = recorded if recorded and gitops.commit_exists(repo, recorded) else detached_at
        git_step(scope, lambda: gitops.reattach(scope.worktree, branch, at=at))
        text = f"branch {branch} was deleted; recreated at {at[:12]}, its last recorded head"
    scope.record(Note(level="warning", text=text))


# -- checkpoints --------------------------------------------------------------------------------


def record_unrecorded_checkpoints(scope: SessionScope, state: SessionState) -> None:
    """A process killed between `git commit` and recording its checkpoint leaves the branch
    ahead of the history: the commits are recorded now (the checkpoint is completed), said in
    a note, so that the branch and the history agree again."""
    tip = gitops.branch_tip(scope.worktree, scope.session.branch)
    if tip is None or not state.head or tip == state.head:
        return
    with worktree_lock(scope):  # the state again: the commit may have been recorded meanwhile
        recorded = session_state(scope.services.store, scope.session.id).head
        missing = gitops.commits_between(scope.worktree, recorded, tip)
        if not missing:
            return
        items: list[tuple[Payload, Actor]] = [(_checkpoint_of(scope, c), "system") for c in missing]
        text = f"recorded {len(missing)} checkpoint(s) a stopped process had committed"
        items.append((Note(level="warning", text=text), "system"))
        scope.record_many(items)


def _checkpoint_of(scope: SessionScope, info: gitops.CommitInfo) -> Checkpoint:
    message = gitops.run_git(["log", "-1", "--format=%B", info.commit], scope.worktree).strip()
    return Checkpoint(
        commit=info.commit,
        parent=info.parent,
        message=message,
        files=info.files,
        automatic=True,
    )


def take_checkpoint(
    scope: SessionScope, message: str, *, automatic: bool = False
) -> Checkpoint | None:
    """Commit the worktree's state to the session branch; None when nothing changed."""
    # Before the commit: a message the history cannot hold left a commit without its event.
    require_utf8(message, "the checkpoint message", "Branchwork records messages as UTF-8")
    message = scope.redactor.redact(message)  # commit messages are shared with the repository
    with worktree_lock(scope):  # commit and record together: no one sees one without the other
        exclude = scope.project.config.copy_files
        info = git_step(scope, lambda: gitops.checkpoint(scope.worktree, message, exclude))
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


# -- the data dir's tmp/ -----------------------------------------------------------------------


def scratch_dir(services: Services) -> Path:
    """Where files wait before they are put in place (new file contents, temporary git
    indexes, diff inputs): in the data dir, on the worktrees' file system. Every entry is
    named `<what>-<pid>-<random>` after the process that made it (`scratch_prefix`)."""
    return services.home / "tmp"


def scratch_prefix(what: str) -> str:
    return f"{what}-{os.getpid()}-"


def remove_stale_scratch(services: Services) -> int:
    """Remove what processes that are gone left in `scratch_dir` (killed during a write, a
    diff or a snapshot); a live process's entries stay. Returns how many went."""
    try:
        entries = list(os.scandir(scratch_dir(services)))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        match = _SCRATCH_NAME.match(entry.name)
        if match is None or not process_is_gone(int(match.group(1)), this_host()):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed


# -- commands whose process died ----------------------------------------------------------------


def output_dir(services: Services) -> Path:
    """Where running commands write their whole output (cleaned when its writer died)."""
    path = services.home / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pidfile(services: Services, command_id: str) -> Path:
    """Where a running command's process group is noted, so that a later process can stop what
    a crashed Branchwork left running."""
    return services.home / "running" / command_id


def open_commands(scope: SessionScope, state: SessionState | None = None) -> list[CommandStarted]:
    """The commands of the session that started and did not finish (nor were closed)."""
    state = state or session_state(scope.services.store, scope.session.id)
    open_ids = set(state.open_commands)
    if not open_ids:
        return []
    started = scope.services.store.iter_events(scope.session.id, kinds=["command_started"])
    return [
        e.payload
        for e in started
        if isinstance(e.payload, CommandStarted) and e.payload.command_id in open_ids
    ]


def recover(services: Services, session: Session) -> None:
    """What any look at a session does first: commands left open by a process that died are
    closed as interrupted, so that no reader sees them as still running."""
    if session.status == "active":
        close_dead_commands(open_scope(services, session, worktree=False))


def running_commands(scope: SessionScope) -> list[str]:
    """The command lines still running in the session (their Branchwork process is alive)."""
    return [p.command for p in open_commands(scope) if not process_is_gone(p.pid, p.host)]


def close_dead_commands(scope: SessionScope, state: SessionState | None = None) -> list[str]:
    """Record as interrupted the commands whose Branchwork process died before they finished
    (a crash, a kill -9), and stop what they left running; live ones are left alone."""
    remove_stale_outputs(output_dir(scope.services), older_than_s=STALE_OUTPUT_S)
    remove_stale_scratch(scope.services)
    closed = []
    for started in open_commands(scope, state):
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
