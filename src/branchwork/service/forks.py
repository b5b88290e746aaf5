"""Forks: a new session that goes on from a point of another one.

The fork's branch starts at the parent's commit at that point; its conversation is the parent's
up to that event, *linked* (the session row names parent and seq; nothing is copied) and read
through `conversation_tail` when the agent builds its context. The parent is never changed —
not even checkpointed: edits it has not checkpointed yet are not in the fork.

A fork point inside a turn leaves tool calls without their results in the inherited part: the
fork's own log answers each of them first ("not run in this fork"), so that its conversation
stays well formed.
"""

from __future__ import annotations

from collections.abc import Sequence

from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import Actor, Event, Forked, Note, Payload, ToolCall, ToolResult
from branchwork.domain.models import Session
from branchwork.domain.replay import SessionState, replay
from branchwork.domain.tasks import Trial
from branchwork.service import history, resolve, trials
from branchwork.service.base import Services
from branchwork.service.scope import open_scope
from branchwork.service.sessions import new_session
from branchwork.service.state import session_state


def fork_point(services: Services, parent: Session, at: str | None) -> tuple[int, str]:
    """The (seq, commit) a fork at `at` starts from: the newest event and head when None; an
    event's seq (`N` or `seq:N`; the head as of that event); or a checkpoint (sha prefix, `-N`,
    `base`). A number that is both a seq and a checkpoint's sha prefix is refused as
    ambiguous."""
    last = services.store.last_seq(parent.id)
    if at is None:
        return last, session_state(services.store, parent.id).head
    text = at.strip()
    explicit = text.startswith("seq:")
    number = text.removeprefix("seq:")
    digits = number.isascii() and number.isdigit()
    if digits and (explicit or _is_seq(number, last)):
        return _at_seq(services, parent, int(number), last, text)
    try:
        return _at_checkpoint(services, parent, text)
    except InvalidInput:
        if not digits:
            raise
        raise InvalidInput(
            f"session {parent.short_id} has events 1 to {last} and no checkpoint {text!r}; "
            "`log` shows their seqs"
        ) from None


def _is_seq(number: str, last: int) -> bool:
    return len(number) <= 9 and 1 <= int(number) <= last


def _at_seq(services: Services, parent: Session, seq: int, last: int, text: str) -> tuple[int, str]:
    if not 1 <= seq <= last:
        raise InvalidInput(
            f"session {parent.short_id} has events 1 to {last}, not {seq}; `log` shows their seqs"
        )
    if len(text) >= 4:  # a sha prefix too?
        try:
            history.resolve_checkpoint(services, parent, text)
        except InvalidInput:
            pass
        else:
            raise InvalidInput(
                f"{text!r} is both an event seq and a checkpoint of session {parent.short_id}; "
                f"say seq:{text} or give more of the sha"
            )
    return seq, replay(services.store.events(parent.id, limit=seq)).head


def _at_checkpoint(services: Services, parent: Session, text: str) -> tuple[int, str]:
    commit = history.resolve_checkpoint(services, parent, text)
    checkpoints = history.list_checkpoints(services, parent)
    return next((c.seq for c in checkpoints if c.commit == commit), 1), commit


def fork_session(
    services: Services,
    parent: Session,
    *,
    at: str | None = None,
    title: str | None = None,
    as_trial: bool = False,
    current: bool = True,
) -> Session:
    """A new session from `parent` at `at`, its project's current one (unless not `current`:
    a fork made from the browser leaves the CLI's current session alone); with `as_trial`, a
    new trial of the parent's task (the parent must be a trial, its task open)."""
    parent_trial = _parent_trial(services, parent, as_trial)
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
        current=current,
    )
    scope = open_scope(services, fork, worktree=False)
    items: list[tuple[Payload, Actor]] = [
        (Forked(parent_id=parent.id, parent_seq=seq, commit=commit), "system")
    ]
    items.extend(_answers(services, parent, seq))
    scope.record_many(items)
    if parent_trial is not None:
        task = services.store.tasks.task_by_id(parent_trial.task_id)
        trials.create_trial(
            services,
            task,
            model=parent_trial.model,
            prompt_variant=parent_trial.prompt_variant,
            session=fork,
        )
    return services.store.get_session(fork.id)


def _parent_trial(services: Services, parent: Session, as_trial: bool) -> Trial | None:
    if not as_trial:
        return None
    found = services.store.tasks.trial_of_session(parent.id)
    if found is None:
        raise InvalidInput(
            f"session {parent.short_id} is not a trial of a task; fork it without --trial"
        )
    trials.require_open(services, services.store.tasks.task_by_id(found.task_id))
    return found


def _answers(services: Services, parent: Session, seq: int) -> list[tuple[Payload, Actor]]:
    """Results for the tool calls the inherited part leaves unanswered (a fork inside a turn)."""
    state: SessionState = replay(services.store.events(parent.id, limit=seq))
    if not state.open_calls:
        return []
    calls = services.store.tail_events(
        parent.id, kinds=["tool_call"], limit=200, before_seq=seq + 1
    )
    names = {e.payload.call_id: e.payload.name for e in calls if isinstance(e.payload, ToolCall)}
    why = f"not run in this fork: it begins at event {seq} of session {parent.short_id}"
    items: list[tuple[Payload, Actor]] = [
        (ToolResult(call_id=c, name=names.get(c, "unknown"), output=why, is_error=True), "system")
        for c in state.open_calls
    ]
    items.append((Note(text=f"forked inside a turn of {parent.short_id}; {why}"), "system"))
    return items


def origin_base(services: Services, session: Session) -> str:
    """The commit the session's line of work started from: its base, or for a fork the base of
    the session it (ultimately) forks."""
    while session.parent_id is not None:
        session = services.store.get_session(session.parent_id)
    return session.base_commit


def conversation_tail(
    services: Services, session: Session, kinds: Sequence[str] | None, limit: int
) -> list[Event]:
    """The newest `limit` events of these kinds (all with None) of the session's conversation:
    its own, after those of its parent up to the fork point (and of the parent's parent …). A
    session that compacted its conversation starts from its own compaction, which covered the
    parent's part; a parent's compaction before the fork point stands for what it summarised.

    The inherited events are given seq 1 (the fork's first event) in this view: they come before
    all of the fork's own, and a compaction never cuts through them (`agent.compaction._cut`
    keeps or summarises entries of one seq whole), so its `through_seq` is always one of the
    fork's own seqs."""
    own = services.store.tail_events(session.id, kinds=kinds, limit=limit)
    if session.parent_id is None or len(own) >= limit:
        return own
    if kinds is not None and session_state(services.store, session.id).compacted_through:
        return own
    parent = services.store.get_session(session.parent_id)
    inherited = _inherited(services, parent, session.parent_seq or 0, kinds, limit - len(own))
    return [e.model_copy(update={"seq": 1}) for e in inherited] + own


def _inherited(
    services: Services,
    parent: Session,
    through: int,
    kinds: Sequence[str] | None,
    limit: int,
) -> list[Event]:
    store = services.store
    found = store.tail_events(parent.id, kinds=kinds, limit=limit, before_seq=through + 1)
    if kinds is not None:
        compacted = store.tail_events(
            parent.id, kinds=["compacted"], limit=1, before_seq=through + 1
        )
        if compacted:
            summary = compacted[0]
            cut = getattr(summary.payload, "through_seq", 0)
            return [summary, *(e for e in found if e.seq > cut)]
    if parent.parent_id is None or len(found) >= limit:
        return found
    grand = store.get_session(parent.parent_id)
    more = _inherited(services, grand, parent.parent_seq or 0, kinds, limit - len(found))
    return more + found
