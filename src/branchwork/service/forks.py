"""Forks: a new session that goes on from a point of another one.

The fork's branch starts at the parent's commit at that point; its conversation is the parent's
up to that event, *linked* (the session row names parent and seq; nothing is copied) and read
through `conversation_tail` when the agent builds its context. The parent is never changed —
not even checkpointed: edits it has not checkpointed yet are not in the fork.
"""

from __future__ import annotations

from collections.abc import Sequence

from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import Event, Forked
from branchwork.domain.models import Session
from branchwork.domain.replay import replay
from branchwork.service import history, resolve, trials
from branchwork.service.base import Services
from branchwork.service.scope import open_scope
from branchwork.service.sessions import new_session
from branchwork.service.state import session_state


def fork_point(services: Services, parent: Session, at: str | None) -> tuple[int, str]:
    """The (seq, commit) a fork at `at` starts from: the newest event and head when None; an
    event's seq (the head as of that event); or a checkpoint (sha prefix, `-N`, `base`)."""
    store = services.store
    last = store.last_seq(parent.id)
    if at is None:
        return last, session_state(store, parent.id).head
    text = at.strip()
    if text.isdigit():
        seq = int(text)
        if not 1 <= seq <= last:
            raise InvalidInput(
                f"session {parent.short_id} has events 1 to {last}, not {seq}; "
                "`log` shows their seqs"
            )
        return seq, replay(store.events(parent.id, limit=seq)).head
    commit = history.resolve_checkpoint(services, parent, text)
    checkpoints = history.list_checkpoints(services, parent)
    seq = next((c.seq for c in checkpoints if c.commit == commit), 1)
    return seq, commit


def fork_session(
    services: Services,
    parent: Session,
    *,
    at: str | None = None,
    title: str | None = None,
    as_trial: bool = False,
) -> Session:
    """A new session from `parent` at `at`, its project's current one; with `as_trial`, a new
    trial of the parent's task (the parent must be a trial)."""
    parent_trial = services.store.tasks.trial_of_session(parent.id)
    if as_trial and parent_trial is None:
        raise InvalidInput(
            f"session {parent.short_id} is not a trial of a task; fork it without --trial"
        )
    seq, commit = fork_point(services, parent, at)
    project = resolve.project_of(services, parent)
    fork = new_session(
        services,
        project,
        title=title or f"fork of {parent.title}",
        from_ref=commit,
        mode=parent.mode,
        model=parent.model,
        fork_of=(parent.id, seq),
    )
    open_scope(services, fork, worktree=False).record(
        Forked(parent_id=parent.id, parent_seq=seq, commit=commit)
    )
    if as_trial and parent_trial is not None:
        task = services.store.tasks.task_by_id(parent_trial.task_id)
        trials.create_trial(
            services,
            task,
            model=parent_trial.model,
            prompt_variant=parent_trial.prompt_variant,
            session=fork,
        )
    return fork


def conversation_tail(
    services: Services, session: Session, kinds: Sequence[str], limit: int
) -> list[Event]:
    """The newest `limit` events of these kinds of the session's conversation: its own, after
    those of its parent up to the fork point (and of the parent's parent …). A session that
    compacted its conversation starts from its own compaction, which covered the parent's part.

    The inherited events are given seq 1 (the fork's first event) in this view: they come before
    all of the fork's own, and a compaction never cuts through them (`agent.compaction._cut`
    keeps or summarises entries of one seq whole), so its `through_seq` is always one of the
    fork's own seqs."""
    own = services.store.tail_events(session.id, kinds=kinds, limit=limit)
    if session.parent_id is None or len(own) >= limit:
        return own
    if session_state(services.store, session.id).compacted_through:
        return own
    parent = services.store.get_session(session.parent_id)
    inherited = _inherited(services, parent, session.parent_seq or 0, kinds, limit - len(own))
    return [e.model_copy(update={"seq": 1}) for e in inherited] + own


def _inherited(
    services: Services, parent: Session, through: int, kinds: Sequence[str], limit: int
) -> list[Event]:
    found = services.store.tail_events(parent.id, kinds=kinds, limit=limit, before_seq=through + 1)
    if parent.parent_id is None or len(found) >= limit:
        return found
    grand = services.store.get_session(parent.parent_id)
    more = _inherited(services, grand, parent.parent_seq or 0, kinds, limit - len(found))
    return more + found
