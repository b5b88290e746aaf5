"""Use-cases of sessions: create, switch, configure, archive, restore."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from branchwork import gitops
from branchwork.domain.errors import Conflict, InvalidInput
from branchwork.domain.events import (
    Archived,
    CommandFinished,
    CommandStarted,
    Note,
    SessionCreated,
    utc_now,
)
from branchwork.domain.ids import new_id, short_id, slugify
from branchwork.domain.models import ActionMode, Project, Session
from branchwork.domain.text import require_utf8
from branchwork.providers import check_model_spec, resolve_model
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service import pool
from branchwork.service.base import Services
from branchwork.service.commands import run_command
from branchwork.service.lifecycle import warn_if_over_quota
from branchwork.service.resolve import (
    find_session,
    forget_current,
    get_project,
    make_current,
    resolve_project,
    session_in,
)
from branchwork.service.scope import (
    SessionScope,
    copy_into_worktree,
    drop_worktree,
    open_scope,
    repo_lock,
    repo_path,
    require_active,
    restore_worktree,
    running_commands,
)

MODES: tuple[str, ...] = get_args(ActionMode)


def check_defaults(mode: str | None, model: str | None) -> tuple[ActionMode | None, str | None]:
    """A session's own mode and model, validated before anything is created: the model is
    built (not loaded), so a missing script file or API key is found now."""
    if mode is not None and mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if model is None:
        return mode, None  # type: ignore[return-value]
    checked = check_model_spec(model)
    resolve_model(checked)
    return mode, checked  # type: ignore[return-value]


def new_session(
    services: Services,
    project: Project,
    *,
    title: str | None = None,
    from_ref: str | None = None,
    mode: str | None = None,
    model: str | None = None,
    current: bool = True,
    fork_of: tuple[str, int] | None = None,
) -> Session:
    """Create the session's branch from main (or `from_ref`) and its own worktree; copy the
    configured untracked files in and run the setup command. Inputs are checked first: a bad
    one creates nothing. `fork_of`: the (session id, seq) whose conversation this one goes on
    from (see `forks.py`)."""
    mode, model = check_defaults(mode, model)
    require_utf8(title or "", "the title", "Branchwork records titles as UTF-8: write it so")
    repo = repo_path(project)
    ref = from_ref or project.main_branch
    tip = gitops.branch_tip(repo, ref) if ref == project.main_branch else None  # no subprocess
    base = tip or gitops.resolve_commit(repo, ref)
    draft = _draft(services, project, title or "untitled", base, mode, model)
    if fork_of is not None:
        draft = draft.model_copy(update={"parent_id": fork_of[0], "parent_seq": fork_of[1]})
    slot = pool.claim(services, project, base, Path(draft.worktree), draft.branch)
    if slot is None:
        with repo_lock(services, repo):
            gitops.add_worktree(repo, Path(draft.worktree), draft.branch, base)
    if slot is not None or ref == project.main_branch:
        pool.request_refill(services, project)  # replaces the one claimed, or fills the pool
    try:
        first = SessionCreated(
            project_id=project.id,
            title=draft.title,
            branch=draft.branch,
            base_commit=base,
            from_ref=ref,
            worktree=draft.worktree,
        )
        port_block = services.settings.port_block
        session = services.recorder.create_session(draft, first, port_block=port_block)
    except BaseException:
        _undo_worktree(services, repo, draft)
        raise
    if current:
        make_current(services, session)
    scope = open_scope(services, session)
    _prepare_environment(scope, slot.setup if slot else None)
    warn_if_over_quota(scope)
    return session


def _draft(
    services: Services,
    project: Project,
    title: str,
    base: str,
    mode: ActionMode | None,
    model: str | None,
) -> Session:
    session_id = new_id()
    title = services.recorder.redactor(project.id).redact(title)  # the branch name shows it
    name = f"{short_id(session_id)}-{slugify(title)}"
    now = utc_now()
    return Session(
        id=session_id,
        project_id=project.id,
        title=title,
        branch=f"{services.settings.branch_prefix}{name}",
        base_commit=base,
        worktree=str(services.home / "worktrees" / project.name / name),
        status="active",
        created_at=now,
        last_activity=now,
        port=services.settings.port_base,
        mode=mode,
        model=model,
    )


def _undo_worktree(services: Services, repo: Path, draft: Session) -> None:
    with repo_lock(services, repo):
        gitops.remove_worktree(repo, Path(draft.worktree))
        gitops.delete_branch(repo, draft.branch)


def _prepare_environment(scope: SessionScope, ran: pool.SetupRun | None = None) -> None:
    """Copy the configured untracked files in, then run the setup command (failure kept),
    unless it ran in the pooled worktree ahead of time: then that run is recorded."""
    copy_into_worktree(scope)
    setup = scope.project.config.setup
    if not setup:
        return
    if ran is not None and ran.command == setup:
        status = _record_pooled_setup(scope, ran)
    else:
        status = run_command(scope, setup, purpose="setup").finished.status
    if status != "ok":
        scope.record(
            Note(
                level="warning",
                text=f"setup command failed ({status}); the session is kept: "
                "fix the setup in the worktree (run) or in the project configuration",
            )
        )


def _record_pooled_setup(scope: SessionScope, ran: pool.SetupRun) -> str:
    """The setup that ran in the pooled worktree before this session claimed it, as command
    events (output kept as it was recorded then), with a note saying when it ran."""
    command_id = new_id()
    when = datetime.fromtimestamp(ran.ran_at, UTC).isoformat(timespec="seconds")
    scope.record_many(
        [
            (
                Note(text=f"the setup ran ahead of time in this pooled worktree, at {when}"),
                "system",
            ),
            (
                CommandStarted(
                    command_id=command_id,
                    command=ran.command,
                    cwd=scope.session.worktree,
                    timeout_s=pool.SETUP_TIMEOUT_S,
                    purpose="setup",
                    pid=os.getpid(),
                    host=this_host(),
                ),
                "system",
            ),
            (
                CommandFinished(
                    command_id=command_id,
                    status=ran.status,
                    exit_code=ran.exit_code,
                    duration_ms=ran.duration_ms,
                    output_bytes=ran.output_bytes,
                    output_head=ran.output_head,
                    output_tail=ran.output_tail,
                    truncated=ran.truncated,
                    output_blob=ran.output_blob,
                ),
                "system",
            ),
        ]
    )
    return ran.status


def set_defaults(
    services: Services, session: Session, *, mode: str | None = None, model: str | None = None
) -> Session:
    """Set the session's own mode and model (they override the project's)."""
    checked_mode, checked_model = check_defaults(mode, model)
    values = {k: v for k, v in {"mode": checked_mode, "model": checked_model}.items() if v}
    return services.store.update_session(session.id, **values) if values else session


def archive_session(services: Services, session: Session, *, force: bool = False) -> Session:
    """Checkpoint pending changes, remove the worktree; branch and history stay. Refused while
    a turn or a command runs in the session, unless `force`."""
    require_active(session)
    scope = open_scope(services, session, worktree=False)
    if not force:
        refuse_if_busy(scope)
    head = drop_worktree(scope)
    archived = Archived(head=head, worktree=session.worktree)
    forget_current(services, session)
    return services.recorder.set_status(session, "archived", archived)


def refuse_if_busy(scope: SessionScope) -> None:
    """A session is not archived under a running turn or command."""
    short = scope.session.short_id
    store = scope.services.store
    lease = store.get_lease(scope.session.id)
    if lease is not None and process_is_gone(int(lease["pid"]), lease["host"]):
        store.release_lease(scope.session.id, lease["holder"])  # its process died: not busy
        lease = None
    if lease is not None and lease["expires_at"] > utc_now():
        raise Conflict(
            f"a turn is running in session {short}; cancel it (`cancel {short}`) or wait for "
            "it, then archive"
        )
    running = running_commands(scope)
    if running:
        raise Conflict(
            f"`{running[0]}` is still running in session {short}; stop it (Ctrl-C where it "
            "runs) or wait for it, then archive (or force the archive)"
        )
    nested = gitops.nested_repositories(scope.worktree) if scope.worktree.is_dir() else []
    if nested:  # the checkpoint would hold a bare gitlink: its history and files would go
        raise Conflict(
            f"{nested[0]} in session {short} is a git repository of its own; its history and "
            "files would go with the worktree. Move it out, then archive (or force the archive)"
        )


def restore_session(services: Services, session: Session) -> Session:
    """Recreate the worktree from the branch tip and make the session active again."""
    if session.status == "active" and Path(session.worktree).exists():
        raise Conflict(f"session {session.short_id} is already active; nothing to restore")
    scope = restore_worktree(open_scope(services, session, worktree=False))
    return make_current(services, scope.session)


def session_for_chat(
    services: Services,
    cwd: Path,
    *,
    key: str | None = None,
    project_key: str | None = None,
    first_message: str | None = None,
    new: bool = False,
    model: str | None = None,
) -> Session:
    """The session a chat (or `ask`) continues: the one named, else the one the working
    directory means (see `resolve`), else a new one in that project, titled from the message.
    With `new`, always a new session. A new session is made only once the model the chat
    will use (`model`, else the project's, else the default) can be built."""
    if key and not new:
        return find_session(services, key)
    project = get_project(services, project_key) if project_key else None
    if not new:
        found = session_in(services, cwd, project)
        if found is not None:
            return found
    if project is None:
        project = resolve_project(services, None, cwd)
    resolve_model(model or project.config.model or services.settings.model)  # usable?
    return new_session(services, project, title=title_from(first_message or "chat"))


def title_from(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "chat"
    return first[:60].rstrip() or "chat"
