"""A session's state as a pure fold over its events."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from branchwork.domain.events import (
    ApprovalDecided,
    ApprovalRequested,
    Archived,
    BudgetSet,
    Checkpoint,
    CommandFinished,
    CommandStarted,
    Compacted,
    Event,
    Interrupted,
    ModelCall,
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
STATE_VERSION = 3


class TodoItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    done: bool


class Spent(BaseModel):
    """What the session's model calls and turns used, summed."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = Field(default=False, description="some tokens were estimated")
    cost_usd: float = 0.0
    priced: bool = Field(default=True, description="every call had a known price")
    model_calls: int = 0
    model_ms: int = 0
    turn_ms: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Spent) -> Spent:
        """Both together (the cost is fully known only when it was for both)."""
        return Spent(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            estimated=self.estimated or other.estimated,
            cost_usd=self.cost_usd + other.cost_usd,
            priced=self.priced and other.priced,
            model_calls=self.model_calls + other.model_calls,
            model_ms=self.model_ms + other.model_ms,
            turn_ms=self.turn_ms + other.turn_ms,
        )


class Budget(BaseModel):
    """Limits on what a session may spend (None: no limit)."""

    model_config = ConfigDict(frozen=True)

    tokens: int | None = None
    cost_usd: float | None = None
    seconds: float | None = None

    def exceeded(self, spent: Spent, *, extra_ms: int = 0) -> str | None:
        """Which limit `spent` (plus `extra_ms` of a running turn) reached, said in words."""
        if self.tokens is not None and spent.tokens >= self.tokens:
            return f"{spent.tokens:,} tokens used of a budget of {self.tokens:,}"
        if self.cost_usd is not None and spent.cost_usd >= self.cost_usd:
            return f"${spent.cost_usd:.4f} spent of a budget of ${self.cost_usd:.4f}"
        seconds = (spent.turn_ms + extra_ms) / 1000
        if self.seconds is not None and seconds >= self.seconds:
            return f"{seconds:.0f} s of turns of a budget of {self.seconds:.0f} s"
        return None


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
    usage: Spent = Field(default_factory=Spent)
    budget: Budget = Field(default_factory=Budget)
    last_turn_status: str | None = None
    compacted_through: int = Field(default=0, description="seq the newest compaction covers")
    pending_approvals: tuple[str, ...] = Field(
        default=(), description="approval requests of the open turn not yet decided"
    )


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
    elif isinstance(p, ApprovalRequested | ApprovalDecided):
        update.update(pending_approvals=_approvals_update(state.pending_approvals, p))
    elif isinstance(p, ModelCall | BudgetSet | Compacted):
        update.update(_spending_update(state, p))
    return state.model_copy(update=update)


def _spending_update(
    state: SessionState, p: ModelCall | BudgetSet | Compacted
) -> dict[str, object]:
    if isinstance(p, BudgetSet):
        return {"budget": Budget(tokens=p.tokens, cost_usd=p.cost_usd, seconds=p.seconds)}
    if isinstance(p, Compacted):
        return {"compacted_through": p.through_seq}
    spent = state.usage
    return {
        "usage": spent.model_copy(
            update={
                "input_tokens": spent.input_tokens + p.input_tokens,
                "output_tokens": spent.output_tokens + p.output_tokens,
                "cached_tokens": spent.cached_tokens + p.cached_tokens,
                "estimated": spent.estimated or p.usage_source == "estimated",
                "cost_usd": spent.cost_usd + (p.cost_usd or 0.0),
                "priced": spent.priced and p.cost_usd is not None,
                "model_calls": spent.model_calls + 1,
                "model_ms": spent.model_ms + p.latency_ms,
            }
        )
    }


def _upsert_todo(todos: tuple[TodoItem, ...], p: TodoUpdated) -> tuple[TodoItem, ...]:
    item = TodoItem(id=p.item_id, text=p.text, done=p.done)
    if any(t.id == p.item_id for t in todos):
        return tuple(item if t.id == p.item_id else t for t in todos)
    return (*todos, item)


def _turn_update(state: SessionState, p: TurnStarted | TurnFinished) -> dict[str, object]:
    if isinstance(p, TurnStarted):
        return {"open_turn": p.turn_id, "turns": state.turns + 1}
    spent = state.usage.model_copy(update={"turn_ms": state.usage.turn_ms + p.duration_ms})
    return {
        "open_turn": None,
        "open_calls": (),
        "pending_approvals": (),
        "last_turn_status": p.status,
        "usage": spent,
    }


def _approvals_update(
    pending: tuple[str, ...], p: ApprovalRequested | ApprovalDecided
) -> tuple[str, ...]:
    if isinstance(p, ApprovalRequested):
        return (*pending, p.request_id)
    return tuple(r for r in pending if r != p.request_id)


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
