"""The state of one turn, shared by the loop's steps and the tool executor: its settings, its
live views (hooks), its mutable progress (`TurnRun`) and its outcome (`TurnResult`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from branchwork.agent.approvals import Approver
from branchwork.agent.context import Conversation
from branchwork.agent.ports import SessionPort
from branchwork.agent.tools import ToolEnv
from branchwork.domain.events import Actor, Checkpoint, Event, Payload, TurnStatus
from branchwork.domain.ids import new_id
from branchwork.domain.messages import Usage
from branchwork.domain.models import ActionMode
from branchwork.providers.base import Model


@dataclass(frozen=True)
class TurnSettings:
    mode: ActionMode = "auto-edit"
    max_steps: int = 30
    context_tokens: int = 24_000
    max_output_tokens: int | None = None
    dangerous_patterns: tuple[str, ...] = ()


@dataclass
class TurnHooks:
    """Live views of a turn (the CLI prints them; the API streams them)."""

    on_event: Callable[[Event], None] | None = None
    on_text: Callable[[str], None] | None = None
    on_reasoning: Callable[[str], None] | None = None
    on_output: Callable[[str], None] | None = None


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    status: TurnStatus
    steps: int
    text: str
    usage: Usage
    checkpoint: Checkpoint | None
    detail: str = ""


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
    text: str = ""
    last_denial: str = ""
    result: TurnResult | None = None

    def record(self, payload: Payload, actor: Actor = "agent") -> Event:
        return self.port.record(payload, actor)

    def tool_env(self) -> ToolEnv:
        return ToolEnv(self.port, self.turn_id, self.cancel, self.hooks.on_output)
