"""Checkpoints, diffs, revert, and reading the event log (streamed, never loaded whole)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from branchwork import gitops
from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import Checkpoint, Event, Reverted
from branchwork.domain.models import CheckpointInfo, Session
from branchwork.service.base import Services
from branchwork.service.scope import (
    SessionScope,
    git_step,
    scratch_dir,
    take_checkpoint,
    worktree_lock,
)

FOLLOW_POLL_S = 0.3
T = TypeVar("T")


def list_checkpoints(services: Services, session: Session) -> list[CheckpointInfo]:
    found: list[CheckpointInfo] = []
    for event in services.store.iter_events(session.id, kinds=["checkpoint", "reverted"]):
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


def resolve_checkpoint(services: Services, session: Session, ref: str) -> str:
    """A checkpoint given as a (prefix of a) commit sha, `base`, or `-N` (N checkpoints back)."""
    if ref == "base":
        return session.base_commit
    commits = [c.commit for c in list_checkpoints(services, session)]
    if ref.startswith("-") and ref[1:].isdigit():
        back = int(ref[1:])
        if 0 < back <= len(commits):
            return commits[-back - 1] if back < len(commits) else session.base_commit
    matches = [c for c in commits if len(ref) >= 4 and c.startswith(ref.lower())]
    if len(set(matches)) == 1:
        return matches[0]
    raise InvalidInput(
        f"{ref!r} is not a checkpoint of session {session.short_id}; give a sha prefix, -N or "
        f"`base` (the session's checkpoint events list them)"
    )


def session_diff(scope: SessionScope, against: str = "base") -> str:
    """What the session changed, uncommitted edits included, against main, base or a checkpoint."""
    project = scope.project
    if against == "main":
        ref = gitops.resolve_commit(Path(project.path), project.main_branch)
    else:
        ref = resolve_checkpoint(scope.services, scope.session, against)
    scratch = scratch_dir(scope.services)
    return gitops.diff(scope.worktree, ref, exclude=project.config.copy_files, scratch=scratch)


def revert(scope: SessionScope, to: str) -> Reverted:
    """Restore the files of a checkpoint as a new checkpoint; history is never rewritten."""
    target = resolve_checkpoint(scope.services, scope.session, to)
    take_checkpoint(scope, "before revert", automatic=True)
    exclude = scope.project.config.copy_files
    with worktree_lock(scope):
        message = f"revert to {target[:12]}"
        info = git_step(scope, lambda: gitops.revert_to(scope.worktree, target, message, exclude))
        commit = info.commit if info else gitops.head_commit(scope.worktree)
        payload = Reverted(to_checkpoint=target, commit=commit, files=info.files if info else [])
        event = scope.record(payload, "user")
    assert isinstance(event.payload, Reverted)
    return event.payload


@dataclass(frozen=True)
class LogQuery:
    """Which events of a log to read: of these kinds (all when None), after this seq; with
    `follow`, then those any process appends, until `stop_after` seconds pass."""

    kinds: Sequence[str] | None = None
    after_seq: int = 0
    follow: bool = False
    stop_after: float | None = None


def stream_events(services: Services, session: Session, query: LogQuery) -> Iterator[Event]:
    """The session's events in order, streamed from the store (memory stays bounded)."""

    def read(after: int) -> Iterator[Event]:
        return services.store.iter_events(session.id, kinds=query.kinds, after_seq=after)

    return _stream(services, session, read, lambda e: e.seq, query)


def stream_event_dicts(
    services: Services, session: Session, query: LogQuery
) -> Iterator[dict[str, Any]]:
    """`stream_events` as JSON-ready dicts (`Event.to_json_dict()`), built without models."""

    def read(after: int) -> Iterator[dict[str, Any]]:
        return services.store.iter_event_dicts(session.id, kinds=query.kinds, after_seq=after)

    return _stream(services, session, read, lambda e: int(e["seq"]), query)


def stream_event_lines(services: Services, session: Session, query: LogQuery) -> Iterator[str]:
    """`stream_events` as lines of JSON, the stored payloads passed through: `log --json`."""

    def read(after: int) -> Iterator[tuple[int, str]]:
        return services.store.iter_event_lines(session.id, kinds=query.kinds, after_seq=after)

    return (line for _, line in _stream(services, session, read, lambda p: p[0], query))


def _stream(
    services: Services,
    session: Session,
    read: Callable[[int], Iterator[T]],
    seq_of: Callable[[T], int],
    query: LogQuery,
) -> Iterator[T]:
    end = services.store.last_seq(session.id)
    newest = query.after_seq
    for item in read(query.after_seq):
        newest = seq_of(item)
        yield item
    if not query.follow:
        return
    deadline = None if query.stop_after is None else time.monotonic() + query.stop_after
    seen = max(end, newest)
    while deadline is None or time.monotonic() < deadline:
        last = services.store.last_seq(session.id)
        if last <= seen:
            time.sleep(FOLLOW_POLL_S)
            continue
        for item in read(seen):
            if seq_of(item) > last:
                break  # appended meanwhile: read on the next round, once
            yield item
        seen = last
