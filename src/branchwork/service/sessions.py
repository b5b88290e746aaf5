"""Use-cases of sessions: create, find, switch, archive, restore."""

from __future__ import annotations

import shutil
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, Conflict, InvalidInput, NotFound
from branchwork.domain.events import Archived, Note, Restored, SessionCreated, utc_now
from branchwork.domain.ids import new_id, short_id, slugify
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import replay
from branchwork.service.context import ServiceContext, require_active
from branchwork.service.projects import get_project, project_for_path, repo_path, session_at

CURRENT_KEY = "current_session"


def new_session(
    ctx: ServiceContext, project: Project, *, title: str | None = None, from_ref: str | None = None
) -> Session:
    """Create the session's branch from main (or `from_ref`) and its own worktree."""
    repo = repo_path(project)
    title = ctx.redactor(project.id).redact(title) if title else title
    ref = from_ref or project.main_branch
    base = gitops.resolve_commit(repo, ref)
    session_id = new_id()
    name = f"{short_id(session_id)}-{slugify(title or 'session')}"
    branch = f"{ctx.settings.branch_prefix}{name}"
    worktree = ctx.home / "worktrees" / project.name / name
    with gitops.repo_lock(ctx.lock_dir, repo):
        gitops.add_worktree(repo, worktree, branch, base)
    try:
        session = _insert(
            ctx, project, session_id, title or "untitled", branch, base, worktree, ref
        )
    except BaseException:
        _undo_worktree(ctx, repo, worktree, branch)
        raise
    _prepare_environment(ctx, project, session)
    return session


def _insert(
    ctx: ServiceContext,
    project: Project,
    session_id: str,
    title: str,
    branch: str,
    base: str,
    worktree: Path,
    ref: str,
) -> Session:
    now = utc_now()
    draft = Session(
        id=session_id,
        project_id=project.id,
        title=title,
        branch=branch,
        base_commit=base,
        worktree=str(worktree),
        status="active",
        created_at=now,
        last_activity=now,
        port=ctx.settings.port_base,
    )
    first = SessionCreated(
        project_id=project.id,
        title=title,
        branch=branch,
        base_commit=base,
        from_ref=ref,
        worktree=str(worktree),
    )
    session, _ = ctx.store.add_session(draft, first, port_block=ctx.settings.port_block)
    return session


def _undo_worktree(ctx: ServiceContext, repo: Path, worktree: Path, branch: str) -> None:
    with gitops.repo_lock(ctx.lock_dir, repo):
        gitops.remove_worktree(repo, worktree)
        gitops.delete_branch(repo, branch)


def _prepare_environment(ctx: ServiceContext, project: Project, session: Session) -> None:
    """Copy the configured untracked files in, then run the setup command (failure kept)."""
    from branchwork.service.commands import run_command

    copied = copy_untracked(Path(project.path), Path(session.worktree), project.config.copy_files)
    if copied:
        ctx.record(session, Note(text=f"copied from your checkout: {', '.join(copied)}"))
    if project.config.setup:
        result = run_command(ctx, session, project.config.setup, purpose="setup")
        if result.finished.status != "ok":
            ctx.record(
                session,
                Note(
                    level="warning",
                    text=f"setup command failed ({result.finished.status}); the session is "
                    "kept: fix the setup with `branchwork run` or the project configuration",
                ),
            )


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


def find_session(ctx: ServiceContext, key: str) -> Session:
    """A session by full id, short id (or a unique prefix of it), or branch name."""
    wanted = key.strip().lower()
    sessions = ctx.store.list_sessions(include_archived=True)
    exact = [s for s in sessions if s.id.lower() == wanted or s.branch.lower() == wanted]
    matches = exact or [s for s in sessions if len(wanted) >= 4 and s.short_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no session {key!r}; run `branchwork session list --all` to see them")
    raise InvalidInput(f"{key!r} matches {len(matches)} sessions; give more of the id")


def resolve_session(ctx: ServiceContext, key: str | None, cwd: Path) -> Session:
    """The named session; else the one whose worktree holds `cwd` (you are in it); else the
    current one; else the newest of the cwd's project."""
    if key:
        return find_session(ctx, key)
    inside = session_at(ctx, cwd)
    if inside is not None:
        return inside
    current = ctx.store.get_state(CURRENT_KEY)
    if current:
        try:
            return ctx.store.get_session(current)
        except NotFound:
            ctx.store.set_state(CURRENT_KEY, None)
    project = project_for_path(ctx, cwd)
    if project:
        newest = ctx.store.list_sessions(project.id)
        if newest:
            return newest[0]
    raise NotFound(
        "no session given and none current; run `branchwork session new`, or pick one with "
        "`branchwork session switch ID`"
    )


def switch_session(ctx: ServiceContext, session: Session) -> Session:
    ctx.store.set_state(CURRENT_KEY, session.id)
    return session


def archive_session(ctx: ServiceContext, session: Session, *, force: bool = False) -> Session:
    """Checkpoint pending changes, remove the worktree; branch and history stay. Refused while
    a turn or a command runs in the session, unless `force`."""
    require_active(session)
    if not force:
        _refuse_if_busy(ctx, session)
    project = get_project(ctx, session.project_id)
    head = drop_worktree(ctx, project, session)
    ctx.store.set_status(session.id, "archived", Archived(head=head, worktree=session.worktree))
    return ctx.store.get_session(session.id)


def _refuse_if_busy(ctx: ServiceContext, session: Session) -> None:
    """A session is not archived under a running turn or command."""
    from branchwork.service.commands import running_commands

    lease = ctx.store.get_lease(session.id)
    if lease is not None and lease["expires_at"] > utc_now():
        raise Conflict(
            f"a turn is running in session {session.short_id}; stop it with "
            f"`branchwork cancel {session.short_id}` or wait for it, then archive"
        )
    running = running_commands(ctx, session)
    if running:
        raise Conflict(
            f"`{running[0]}` is still running in session {session.short_id}; stop it (Ctrl-C "
            "where it runs) or wait for it, then archive (or archive --force)"
        )


def drop_worktree(ctx: ServiceContext, project: Project, session: Session) -> str:
    """Save the worktree's pending changes as a checkpoint, then remove it; returns the head."""
    from branchwork.service.history import take_checkpoint

    worktree = Path(session.worktree)
    if worktree.exists():
        take_checkpoint(ctx, session, "before archive", automatic=True)
    repo = Path(project.path)
    with gitops.repo_lock(ctx.lock_dir, repo):
        head = gitops.run_git(["rev-parse", session.branch], repo).strip()
        gitops.remove_worktree(repo, worktree)
    return head


def restore_session(ctx: ServiceContext, session: Session) -> Session:
    """Recreate the worktree from the branch tip and make the session active again."""
    if session.status == "active" and Path(session.worktree).exists():
        raise Conflict(f"session {session.short_id} is already active; nothing to restore")
    project = get_project(ctx, session.project_id)
    repo = repo_path(project)
    with gitops.repo_lock(ctx.lock_dir, repo):
        if Path(session.worktree).exists():
            raise Conflict(f"{session.worktree} exists but is not this session's worktree; move it")
        recreated = _ensure_branch(ctx, session, repo)
        gitops.restore_worktree(repo, Path(session.worktree), session.branch)
    head = gitops.head_commit(Path(session.worktree))
    if recreated:
        ctx.record(
            session,
            Note(
                level="warning",
                text=f"branch {session.branch} was missing; "
                f"recreated at {head[:12]}, its last recorded head",
            ),
        )
    ports = (ctx.settings.port_base, ctx.settings.port_block)
    restored_event = Restored(head=head, worktree=session.worktree)
    ctx.store.set_status(session.id, "active", restored_event, ports=ports)
    restored = ctx.store.get_session(session.id)
    _reapply_copies(ctx, project, restored)
    return restored


def _ensure_branch(ctx: ServiceContext, session: Session, repo: Path) -> bool:
    """Recreate a deleted session branch at the last head the history recorded; True if so."""
    if gitops.branch_exists(repo, session.branch):
        return False
    head = _last_recorded_head(ctx, session)
    if head is None or not gitops.commit_exists(repo, head):
        raise Conflict(
            f"branch {session.branch} no longer exists and its last commit is gone; "
            "the session's files cannot be restored (its history stays readable)"
        )
    gitops.run_git(["branch", session.branch, head], repo)
    return True


def _last_recorded_head(ctx: ServiceContext, session: Session) -> str | None:
    kinds = ["session_created", "checkpoint", "reverted", "archived", "restored"]
    events = ctx.store.events(session.id, kinds=kinds)
    return replay(events).head or None if events else None


def _reapply_copies(ctx: ServiceContext, project: Project, session: Session) -> None:
    copied = copy_untracked(Path(project.path), Path(session.worktree), project.config.copy_files)
    if copied:
        ctx.record(session, Note(text=f"copied from your checkout: {', '.join(copied)}"))


def ensure_worktree(ctx: ServiceContext, session: Session) -> Session:
    """An active session whose worktree vanished (evicted, deleted) gets it back, losslessly."""
    session = ctx.store.get_session(session.id)  # the caller's copy may predate an archive
    require_active(session)
    if Path(session.worktree).exists():
        return session
    try:
        return restore_session(ctx, session)
    except BranchworkError as exc:
        raise Conflict(
            f"the worktree of session {session.short_id} is missing and could not be "
            f"restored: {exc.message}"
        ) from exc
