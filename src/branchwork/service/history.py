"""Checkpoints, diffs, revert, and reading the event log."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import Checkpoint, Event, Reverted
from branchwork.domain.models import CheckpointInfo, Session
from branchwork.domain.replay import SessionState, replay
from branchwork.service.context import ServiceContext
from branchwork.service.projects import get_project
from branchwork.service.sessions import ensure_worktree


def _exclude(ctx: ServiceContext, session: Session) -> list[str]:
    return get_project(ctx, session.project_id).config.copy_files


def take_checkpoint(
    ctx: ServiceContext, session: Session, message: str, *, automatic: bool = False
) -> Checkpoint | None:
    """Commit the worktree's state to the session branch; None when nothing changed."""
    session = ensure_worktree(ctx, session)
    message = ctx.redactor(session.project_id).redact(message)  # commit messages are shared
    info = gitops.checkpoint(Path(session.worktree), message, _exclude(ctx, session))
    if info is None:
        return None
    payload = Checkpoint(
        commit=info.commit,
        parent=info.parent,
        message=message,
        files=info.files,
        automatic=automatic,
    )
    event = ctx.record(session, payload, "user" if not automatic else "system")
    assert isinstance(event.payload, Checkpoint)
    return event.payload


def list_checkpoints(ctx: ServiceContext, session: Session) -> list[CheckpointInfo]:
    found: list[CheckpointInfo] = []
    for event in ctx.store.events(session.id, kinds=["checkpoint", "reverted"]):
        p = event.payload
        if isinstance(p, Checkpoint):
            found.append(
                CheckpointInfo(commit=p.commit, message=p.message, files=p.files, seq=event.seq)
            )
        elif isinstance(p, Reverted):
            message = f"revert to {p.to_checkpoint[:12]}"
            found.append(
                CheckpointInfo(commit=p.commit, message=message, files=p.files, seq=event.seq)
            )
    return _without_repeats(found)


def _without_repeats(found: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """A revert that changed nothing names the commit it stood on: listed once, so `-N`
    counts real states."""
    kept: list[CheckpointInfo] = []
    for info in found:
        if not kept or kept[-1].commit != info.commit:
            kept.append(info)
    return kept


def resolve_checkpoint(ctx: ServiceContext, session: Session, ref: str) -> str:
    """A checkpoint given as a (prefix of a) commit sha, `base`, or `-N` (N checkpoints back)."""
    if ref == "base":
        return session.base_commit
    commits = [c.commit for c in list_checkpoints(ctx, session)]
    if ref.startswith("-") and ref[1:].isdigit():
        back = int(ref[1:])
        if 0 < back <= len(commits):
            return commits[-back - 1] if back < len(commits) else session.base_commit
    matches = [c for c in commits if len(ref) >= 4 and c.startswith(ref.lower())]
    if len(set(matches)) == 1:
        return matches[0]
    raise InvalidInput(
        f"{ref!r} is not a checkpoint of session {session.short_id}; "
        f"see `branchwork log {session.short_id} --kind checkpoint` or use `base`"
    )


def session_diff(ctx: ServiceContext, session: Session, against: str = "base") -> str:
    """What the session changed, uncommitted edits included, against main, base or a checkpoint."""
    session = ensure_worktree(ctx, session)
    project = get_project(ctx, session.project_id)
    if against == "main":
        ref = gitops.resolve_commit(Path(project.path), project.main_branch)
    else:
        ref = resolve_checkpoint(ctx, session, against)
    return gitops.diff(Path(session.worktree), ref, exclude=_exclude(ctx, session))


def revert(ctx: ServiceContext, session: Session, to: str) -> Reverted:
    """Restore the files of a checkpoint as a new checkpoint; history is never rewritten."""
    session = ensure_worktree(ctx, session)
    target = resolve_checkpoint(ctx, session, to)
    take_checkpoint(ctx, session, "before revert", automatic=True)
    worktree = Path(session.worktree)
    info = gitops.revert_to(worktree, target, f"revert to {target[:12]}", _exclude(ctx, session))
    commit = info.commit if info else gitops.head_commit(worktree)
    payload = Reverted(to_checkpoint=target, commit=commit, files=info.files if info else [])
    event = ctx.record(session, payload, "user")
    assert isinstance(event.payload, Reverted)
    return event.payload


def read_events(
    ctx: ServiceContext,
    session: Session,
    *,
    kinds: Sequence[str] | None = None,
    after_seq: int = 0,
) -> list[Event]:
    return ctx.store.events(session.id, kinds=kinds, after_seq=after_seq)


def follow_events(
    ctx: ServiceContext,
    session: Session,
    *,
    kinds: Sequence[str] | None = None,
    after_seq: int = 0,
    poll: float = 0.3,
    stop_after: float | None = None,
) -> Iterator[Event]:
    """Yield events as they are appended (by any process), until `stop_after` seconds pass."""
    deadline = None if stop_after is None else time.monotonic() + stop_after
    seen = after_seq
    while deadline is None or time.monotonic() < deadline:
        fresh = ctx.store.events(session.id, after_seq=seen)
        for event in fresh:
            seen = event.seq
            if not kinds or event.kind in kinds:
                yield event
        if not fresh:
            time.sleep(poll)


def session_state(ctx: ServiceContext, session: Session) -> SessionState:
    return replay(ctx.store.events(session.id))
