"""The state of one turn, shared by the loop's steps and the tool executor: its settings, its
live views (hooks), its mutable progress (`TurnRun`) and its outcome (`TurnResult`)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from branchwork.agent.approvals import Approver
from branchwork.agent.context import Conversation
from branchwork.agent.ports import SessionPort
from branchwork.agent.tools import ToolEnv
from branchwork.domain.events import Actor, Checkpoint, Event, Payload, TurnStatus
from branchwork.domain.ids import new_id
from branchwork.domain.messages import Usage
from branchwork.domain.models import ActionMode
from branchwork.domain.replay import Budget, Spent
from branchwork.providers.base import Model
from branchwork.providers.prices import PriceTable


@dataclass(frozen=True)
class Limits:
    """What a turn may spend: its steps, and the session's and the project's budgets (with what
    each had spent before the turn began)."""

    max_steps: int = 30
    session_budget: Budget = field(default_factory=Budget)
    session_spent: Spent = field(default_factory=Spent)
    project_budget: Budget = field(default_factory=Budget)
    project_spent: Spent = field(default_factory=Spent)


@dataclass(frozen=True)
class TurnSettings:
    """How a turn runs. `stuck_repeats`: a call (or text) repeated that many times ends the turn
    as stuck (the first repeat is answered with a note instead of being run again).
    `compact_at`: the share of the context budget the conversation may fill before older
    exchanges are summarised. `tools`: the tools offered (None: all), `first_step_tool`: the
    first model call must call a tool (small models answer from thin air otherwise),
    `evidence_in_summary`: a turn that had to stop ends with what the last tool returned after
    the model's own summary (a small model's summary alone is not to be trusted)."""

    mode: ActionMode = "auto-edit"
    limits: Limits = field(default_factory=Limits)
    context_tokens: int = 24_000
    max_output_tokens: int | None = None
    dangerous_patterns: tuple[str, ...] = ()
    stuck_repeats: int = 2
    compact_at: float = 0.8
    tools: tuple[str, ...] | None = None
    first_step_tool: bool = False
    evidence_in_summary: bool = False
    prices: PriceTable | None = None


@dataclass
class TurnHooks:
    """Live views of a turn (the CLI prints them; the API streams them). `on_step(n)` is called
    when the model is asked for step `n` (a front-end shows it is thinking)."""

    on_event: Callable[[Event], None] | None = None
    on_text: Callable[[str], None] | None = None
    on_reasoning: Callable[[str], None] | None = None
    on_output: Callable[[str], None] | None = None
    on_step: Callable[[int], None] | None = None


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    status: TurnStatus
    steps: int
    text: str
    usage: Usage
    checkpoint: Checkpoint | None
    detail: str = ""
    cost_usd: float | None = None
    duration_ms: int = 0


@dataclass
class TurnRun:
    """The mutable state of one turn, shared by the steps."""

    port: SessionPort
    model: Model
    settings: TurnSettings
    approver: Approver
    hooks: TurnHooks
    cancel: threading.Event
    turn_id: str = field(default_factory=new_id)
    message: str = ""
    system: str = ""
    conversation: Conversation = field(default_factory=lambda: Conversation([]))
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    started: float = field(default_factory=time.monotonic)
    text: str = ""
    last_denial: str = ""
    repeats: Counter[str] = field(default_factory=Counter)
    last_result: tuple[str, str] | None = None  # the last successful tool result (name, text)
    answers: dict[str, str] = field(default_factory=dict)
    opened: bool = False  # turn_started is recorded
    result: TurnResult | None = None  # set once turn_finished is recorded

    def record(self, payload: Payload, actor: Actor = "agent") -> Event:
        return self.port.record(payload, actor)

    def tool_env(self) -> ToolEnv:
        return ToolEnv(self.port, self.turn_id, self.cancel, self.hooks.on_output)

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def spend(self, usage: Usage, cost: float | None) -> None:
        self.usage = self.usage + usage
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def over_budget(self) -> str | None:
        """Which budget (the session's or the project's) the turn has reached, if any."""
        limits = self.settings.limits
        turn = Spent(
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cost_usd=self.cost_usd or 0.0,
        )
        for budget, before, whose in (
            (limits.session_budget, limits.session_spent, "the session's budget"),
            (limits.project_budget, limits.project_spent, "the project's budget"),
        ):
            reached = budget.exceeded(_plus(before, turn), extra_ms=self.elapsed_ms())
            if reached:
                return f"{whose}: {reached}"
        return None


def _plus(before: Spent, turn: Spent) -> Spent:
    return before.model_copy(
        update={
            "input_tokens": before.input_tokens + turn.input_tokens,
            "output_tokens": before.output_tokens + turn.output_tokens,
            "cost_usd": before.cost_usd + turn.cost_usd,
        }
    )


def signature(name: str, arguments: dict[str, Any]) -> str:
    """What makes two tool calls the same call."""
    return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"
