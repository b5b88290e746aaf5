"""A session's state as a pure fold over its events."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from branchwork.domain.events import (
    Archived,
    Checkpoint,
    CommandFinished,
    CommandStarted,
    Event,
    Interrupted,
    Restored,
    Reverted,
    SessionCreated,
    TodoUpdated,
    ToolCall,
    ToolResult,
    TurnFinished,
    TurnStarted,
)

# Bumped whenever the fold below changes, so that stored snapshots of the old fold are not used.
STATE_VERSION = 1


class TodoItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    done: bool


class SessionState(BaseModel):
    """What a session's history adds up to; equal logs give equal states."""

    model_config = ConfigDict(frozen=True)

    last_seq: int = 0
    archived: bool = False
    base_commit: str = ""
    head: str = ""
    checkpoints: tuple[str, ...] = ()
    todos: tuple[TodoItem, ...] = ()
    open_turn: str | None = None
    open_calls: tuple[str, ...] = Field(default=(), description="tool calls without a result")
    open_commands: tuple[str, ...] = Field(default=(), description="commands not finished")
    turns: int = 0
    commands: int = 0
    failed_commands: int = 0


def _apply(state: SessionState, event: Event) -> SessionState:
    p = event.payload
    update: dict[str, object] = {"last_seq": event.seq}
    if isinstance(p, SessionCreated):
        update.update(base_commit=p.base_commit, head=p.base_commit)
    elif isinstance(p, Checkpoint | Reverted):
        update.update(head=p.commit, checkpoints=(*state.checkpoints, p.commit))
    elif isinstance(p, Archived | Restored):
        update.update(archived=isinstance(p, Archived), head=p.head)
    elif isinstance(p, TodoUpdated):
        update.update(todos=_upsert_todo(state.todos, p))
    elif isinstance(p, TurnStarted | TurnFinished):
        update.update(_turn_update(state, p))
    elif isinstance(p, ToolCall | ToolResult):
        update.update(open_calls=_calls_update(state.open_calls, p))
    elif isinstance(p, CommandStarted):
        update.update(open_commands=(*state.open_commands, p.command_id))
    elif isinstance(p, CommandFinished):
        update.update(
            commands=state.commands + 1,
            failed_commands=state.failed_commands + (p.status != "ok"),
            open_commands=tuple(c for c in state.open_commands if c != p.command_id),
        )
    elif isinstance(p, Interrupted) and p.call_id:
        update.update(open_commands=tuple(c for c in state.open_commands if c != p.call_id))
    return state.model_copy(update=update)


def _upsert_todo(todos: tuple[TodoItem, ...], p: TodoUpdated) -> tuple[TodoItem, ...]:
    item = TodoItem(id=p.item_id, text=p.text, done=p.done)
    if any(t.id == p.item_id for t in todos):
        return tuple(item if t.id == p.item_id else t for t in todos)
    return (*todos, item)


def _turn_update(state: SessionState, p: TurnStarted | TurnFinished) -> dict[str, object]:
    if isinstance(p, TurnStarted):
        return {"open_turn": p.turn_id, "turns": state.turns + 1}
    return {"open_turn": None, "open_calls": ()}


def _calls_update(open_calls: tuple[str, ...], p: ToolCall | ToolResult) -> tuple[str, ...]:
    if isinstance(p, ToolCall):
        return (*open_calls, p.call_id)
    return tuple(c for c in open_calls if c != p.call_id)


def replay(events: Iterable[Event], state: SessionState | None = None) -> SessionState:
    """Fold `events` (in seq order) onto `state` (default: the empty state)."""
    current = state or SessionState()
    for event in events:
        current = _apply(current, event)
    return current
