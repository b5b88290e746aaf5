"""Disk that stays bounded: `gc` (evict idle worktrees, remove finished ones, collect the index),
`du` (disk per project and session) and the per-project quota.

Rules (docs/lifecycle.md says why):
- only what lives in the data directory is ever removed; no branch is ever deleted;
- an *idle* active session (no event for `idle`, no file of its worktree changed since, no turn
  or command running, not the current directory) has its worktree *evicted*: its uncommitted
  files are kept as a commit under `refs/branchwork/parked/<id>` (not on its branch), its copied
  files are set aside, the directory is removed, a note says so. The next use restores it
  (`scope.ensure_worktree`): the branch tip, the uncommitted files, the copied files;
- an archived or merged session's worktree still on disk is removed the same way (lossless);
- pooled worktrees no longer at the tip of main are removed (the refiller makes new ones);
- the index keeps the views still used (each project's main, each active session's overlay and
  its base) and forgets the rest; contents no kept view or document uses are deleted.
`dry_run` reports all that and changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, InvalidInput
from branchwork.domain.events import Note, utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.sandbox.liveness import process_cwds, processes_in, this_host
from branchwork.service import mirror, pool, views
from branchwork.service.base import Services
from branchwork.service.scope import (
    SessionScope,
    ensure_on_branch,
    open_scope,
    parked_key,
    parked_ref,
    running_commands,
    save_copies,
)

DEFAULT_IDLE = "7d"
EVICTION_LEASE = timedelta(minutes=10)  # held only while a worktree goes; released after
USAGE_FRESH_S = 600.0  # a cached disk measure this recent is used for the quota check
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


@dataclass(frozen=True)
class SessionDisk:
    session_id: str
    short_id: str
    title: str
    status: str
    evicted: bool
    bytes: int


@dataclass(frozen=True)
class ProjectDisk:
    project: str
    sessions: list[SessionDisk]
    pool_bytes: int
    quota_bytes: int | None

    @property
    def total_bytes(self) -> int:
        return self.pool_bytes + sum(s.bytes for s in self.sessions)

    @property
    def over_quota(self) -> bool:
        return self.quota_bytes is not None and self.total_bytes >= self.quota_bytes


@dataclass(frozen=True)
class DiskUsage:
    """Disk used in the data directory: worktrees per project and session, and the index."""

    projects: list[ProjectDisk]
    index_bytes: int
    database_bytes: int


@dataclass(frozen=True)
class GcAction:
    """One thing `gc` does (or would do): `evict`, `remove` or `pool`, with why and how much."""

    action: str
    path: str
    bytes: int
    reason: str
    session_id: str | None = None


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    actions: list[GcAction] = field(default_factory=list)
    views_forgotten: int = 0
    contents_collected: int = 0
    index_bytes_before: int = 0
    index_bytes_after: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        worktrees = sum(a.bytes for a in self.actions)
        return worktrees + max(0, self.index_bytes_before - self.index_bytes_after)


# -- measuring ------------------------------------------------------------------------------


def parse_idle(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w` (or a number of days)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*", text)
    if found is None:
        raise InvalidInput(f"idle time {text!r} is not understood; give e.g. 7d, 12h or 30m")
    try:
        return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2) or "d"])
    except OverflowError:  # more days than a timedelta holds (or than a float)
        raise InvalidInput(
            f"idle time {text[:40]!r} is longer than anything can be idle; give e.g. 7d or 52w"
        ) from None


def tree_bytes(path: Path) -> int:
    """Disk blocks used under `path` (symlinks not followed, `path` itself included: a worktree
    replaced by a link to `/` is not a walk of the disk; files vanishing meanwhile are
    skipped)."""
    if path.is_symlink():
        return 0
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except FileNotFoundError:
            continue
    return total


def _file_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        total += candidate.stat().st_size if candidate.exists() else 0
    return total


def project_disk(services: Services, project: Project) -> ProjectDisk:
    """Measure the project's worktrees now (and remember the total for the quota check)."""
    sessions = []
    for session in services.store.list_sessions(project.id, include_archived=True):
        path = Path(session.worktree)
        size = tree_bytes(path) if path.is_dir() else 0
        evicted = services.store.get_state(parked_key(session.id)) is not None
        if size or evicted or session.status == "active":
            sessions.append(
                SessionDisk(
                    session.id, session.short_id, session.title, session.status, evicted, size
                )
            )
    slots = [Path(s.path) for s in pool.slots(services, project)]
    slots.append(mirror.mirror_path(services, project))
    pool_bytes = sum(tree_bytes(p) for p in slots if p.is_dir())
    quota = project.config.disk_quota_mb
    usage = ProjectDisk(project.name, sessions, pool_bytes, quota * 1024 * 1024 if quota else None)
    record = {"bytes": usage.total_bytes, "at": time.time()}
    services.store.set_state(f"disk:{project.id}", json.dumps(record))
    return usage


def disk_usage(services: Services, project: Project | None = None) -> DiskUsage:
    chosen = [project] if project is not None else services.store.list_projects()
    return DiskUsage(
        projects=[project_disk(services, p) for p in chosen],
        index_bytes=_file_bytes(services.home / "index.sqlite"),
        database_bytes=_file_bytes(services.home / "branchwork.db"),
    )


def quota_warning(services: Services, project: Project) -> str | None:
    """What to say when the project's worktrees reach its quota (the last measure if recent,
    else a new one); None under the quota or without one."""
    quota = project.config.disk_quota_mb
    if quota is None:
        return None
    raw = services.store.get_state(f"disk:{project.id}")
    cached = json.loads(raw) if raw else None
    if cached is None or time.time() - float(cached["at"]) > USAGE_FRESH_S:
        used = project_disk(services, project).total_bytes
    else:
        used = int(cached["bytes"])
    if used < quota * 1024 * 1024:
        return None
    return (
        f"project {project.name} uses {used / 1e6:.0f} MB of disk in worktrees, its quota is "
        f"{quota} MB: run `branchwork gc` (idle worktrees are evicted, losslessly), archive "
        f"finished sessions, or raise the quota (`project config --disk-quota MB`)"
    )


def warn_if_over_quota(scope: SessionScope) -> None:
    warning = quota_warning(scope.services, scope.project)
    if warning is not None:
        scope.record(Note(level="warning", text=warning))


# -- eviction -------------------------------------------------------------------------------


def evict(scope: SessionScope, reason: str) -> int:
    """Remove the session's worktree losslessly (see the module); returns the bytes freed."""
    services, session = scope.services, scope.session
    size = tree_bytes(scope.worktree)
    if session.status == "active":
        ensure_on_branch(scope)
    repo = Path(scope.project.path)
    ref = parked_ref(session.id)
    pending = gitops.save_pending(scope.worktree, ref, scope.project.config.copy_files)
    save_copies(scope)
    with gitops.repo_lock(services.lock_dir, repo):
        gitops.remove_worktree(repo, scope.worktree)
    services.store.set_state(parked_key(session.id), json.dumps({"at": time.time(), "why": reason}))
    scope.record(Note(text=_eviction_note(scope, reason, ref if pending else None)))
    return size  # its index overlay is collected with the index (no kept view)


def _eviction_note(scope: SessionScope, reason: str, parked: str | None) -> str:
    """What the history says of an eviction: an active session's worktree comes back by
    itself; a finished one's does not, so where its uncommitted files went is spelled out."""
    if scope.session.status == "active":
        kept = " and its uncommitted changes" if parked else ""
        return (
            f"worktree evicted by gc ({reason}): the branch{kept} and the history are kept, "
            "and the worktree comes back by itself when the session is next used (files git "
            "ignores, such as build outputs, are not kept)"
        )
    files = (
        f" Its uncommitted files are kept under {parked} (`git checkout {parked} -- .` in a "
        f"checkout of {scope.session.branch} brings them back)."
        if parked
        else ""
    )
    return f"worktree removed by gc ({reason}); the branch and the history are kept.{files}"


def _idle_reason(scope: SessionScope, idle: timedelta) -> str | None:
    """Why the session may be evicted, or None (with the reason it may not, in `skip`)."""
    now = utc_now()
    if now - scope.session.last_activity < idle:
        return None
    newest = max(
        (_mtime(scope.worktree / p) for p in gitops.changed_paths(scope.worktree)), default=0.0
    )
    if time.time() - newest < idle.total_seconds():
        return None
    days = (now - scope.session.last_activity).total_seconds() / 86_400
    return f"idle for {days:.0f} days"


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _busy(scope: SessionScope, cwds: list[tuple[int, Path]]) -> str | None:
    """Why the worktree must stay now: a command runs in it, or a process (a person's shell,
    an editor, a terminal) has its current directory in it."""
    if running_commands(scope):
        return "a command is running"
    worktree = scope.worktree.resolve()
    if Path.cwd().resolve().is_relative_to(worktree):
        return "it is the current directory"
    inside = processes_in(worktree, cwds)
    if inside:
        return f"process {inside[0]} works in it"
    return None


def _nested_repository(scope: SessionScope) -> str | None:
    """A git repository inside the worktree (a clone made there, a submodule) would lose its
    history and files with the directory: the parked commit holds it as a bare gitlink."""
    try:
        nested = gitops.nested_repositories(scope.worktree)
    except BranchworkError:
        return None  # the eviction says what is wrong with the worktree
    if not nested:
        return None
    return (
        f"{nested[0]} is a git repository of its own (its history would not be kept); move "
        "it out of the worktree, and gc can evict it"
    )


def _turn_free(scope: SessionScope) -> bool:
    """No turn holds the session's lease now (a look only: see `_turn_lease`)."""
    lease = scope.services.store.get_lease(scope.session.id)
    return lease is None or lease["expires_at"] <= utc_now()


@contextlib.contextmanager
def _turn_lease(scope: SessionScope) -> Iterator[bool]:
    """Hold the session's turn lease while its worktree goes (True), so that no turn and no
    merge starts in it meanwhile; False when one took it since gc looked."""
    store, session_id = scope.services.store, scope.session.id
    holder = new_id()
    taken = store.acquire_lease(
        session_id, holder, pid=os.getpid(), host=this_host(), ttl=EVICTION_LEASE
    )
    try:
        yield taken is None
    finally:
        if taken is None:
            store.release_lease(session_id, holder)


# -- gc -------------------------------------------------------------------------------------


def collect(
    services: Services,
    *,
    idle: timedelta,
    dry_run: bool,
    project: Project | None = None,
) -> GcReport:
    """Evict idle worktrees, remove finished and stale ones, collect the index (see module)."""
    chosen = [project] if project is not None else services.store.list_projects()
    actions: list[GcAction] = []
    skipped: list[str] = []
    cwds = process_cwds()  # once: every worktree is looked at with the same
    for each in chosen:
        for session in services.store.list_sessions(each.id, include_archived=True):
            found = _session_action(services, session, idle, dry_run, (skipped, cwds))
            if found is not None:
                actions.append(found)
        actions.extend(_pool_actions(services, each, dry_run))
    before = _file_bytes(services.home / "index.sqlite")
    gone = {a.session_id for a in actions if a.session_id is not None}
    forgotten, collected = _collect_index(services, dry_run, gone)
    after = _file_bytes(services.home / "index.sqlite")
    return GcReport(dry_run, actions, forgotten, collected, before, after, skipped)


def _session_action(
    services: Services,
    session: Session,
    idle: timedelta,
    dry_run: bool,
    found: tuple[list[str], list[tuple[int, Path]]],
) -> GcAction | None:
    """Evict the worktree of an idle active session, remove that of a finished one; neither
    while it is in use (`found`: the reasons for keeping worktrees, the processes' current
    directories)."""
    skipped, cwds = found
    path = Path(session.worktree)
    if not path.is_dir() or not path.resolve().is_relative_to(services.home.resolve()):
        return None  # nothing on disk, or not ours to remove
    scope = open_scope(services, session, worktree=False)
    busy = _busy(scope, cwds) if _turn_free(scope) else "a turn is running"
    action, reason = "remove", f"the session is {session.status}"
    if busy is None and session.status == "active":  # no git status under a turn
        action, reason = "evict", _idle_reason(scope, idle) or ""
        if not reason:
            return None
    busy = busy or _nested_repository(scope)  # only for a worktree that would go
    if busy is not None:
        skipped.append(f"{session.short_id}: {busy}")
        return None
    if dry_run:
        return _act(scope, action, reason, dry_run=True)
    return _under_lease(scope, action, reason, found)


def _under_lease(
    scope: SessionScope, action: str, reason: str, found: tuple[list[str], list[tuple[int, Path]]]
) -> GcAction | None:
    """Take the lease (held only while an idle worktree goes), look again, then act."""
    skipped, cwds = found
    with _turn_lease(scope) as free:
        busy = _busy(scope, cwds) if free else "a turn started"
        if busy is not None:
            skipped.append(f"{scope.session.short_id}: {busy}")
            return None
        return _act(scope, action, reason, dry_run=False)


def _act(scope: SessionScope, action: str, reason: str, *, dry_run: bool) -> GcAction:
    path = scope.worktree
    size = tree_bytes(path) if dry_run else _apply(scope, reason)
    return GcAction(action, str(path), size, reason, scope.session.id)


def _apply(scope: SessionScope, reason: str) -> int:
    try:
        return evict(scope, reason)
    except BranchworkError as exc:
        return _failed(scope, exc)


def _failed(scope: SessionScope, exc: BranchworkError) -> int:
    scope.record(Note(level="warning", text=f"gc could not evict the worktree: {exc.message}"))
    return 0


def _pool_actions(services: Services, project: Project, dry_run: bool) -> Iterator[GcAction]:
    """Pooled worktrees not at the tip of main (or a pool no longer wanted)."""
    try:
        tip = gitops.resolve_commit(Path(project.path), project.main_branch)
    except BranchworkError:
        return
    wanted = pool.enabled(services, project)
    stale = [s for s in pool.slots(services, project) if s.commit != tip or not wanted]
    for slot in stale:
        path = Path(slot.path)
        size = tree_bytes(path) if path.is_dir() else 0
        yield GcAction("pool", slot.path, size, "pooled worktree of an older main")
    if stale and not dry_run:
        pool.remove_slots(services, project, {s.path for s in stale})
    checkout = mirror.mirror_path(services, project)
    if not wanted and checkout.is_dir():
        yield GcAction("pool", str(checkout), tree_bytes(checkout), "main's mirror, pool off")
        if not dry_run:
            mirror.remove(services, project)


def _collect_index(services: Services, dry_run: bool, gone: set[str]) -> tuple[int, int]:
    """Forget the index views no one uses (`gone`: sessions whose worktree goes), then delete
    the contents no kept view uses."""
    if not (services.home / "index.sqlite").exists():
        return 0, 0
    keep = _views_in_use(services, gone)
    index = services.code_index()
    return index.collect_unused(keep, dry_run=dry_run)


def _views_in_use(services: Services, gone: set[str]) -> set[str]:
    keep: set[str] = set()
    for project in services.store.list_projects():
        try:
            keep.add(gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], project.path))
        except BranchworkError:
            continue  # a repository gone: nothing of it is kept
        for session in services.store.list_sessions(project.id):
            if Path(session.worktree).is_dir() and session.id not in gone:
                keep.add(views.view_key(session.id))
    return keep
