"""Resume after a crash: close a turn that a dead process left open."""

from __future__ import annotations

from branchwork.agent.ports import SessionPort
from branchwork.domain.events import (
    Actor,
    Event,
    Interrupted,
    Payload,
    ToolCall,
    ToolResult,
    TurnFinished,
)

RECENT_CALLS = 200


def recover_interrupted(port: SessionPort) -> list[Event]:
    """If the log has an open turn, give its unanswered tool calls a synthetic "interrupted"
    result and end the turn as interrupted. Returns the events it appended."""
    state = port.state()
    if state.open_turn is None:
        return []
    calls = port.recent_events(["tool_call"], RECENT_CALLS)
    names = {e.payload.call_id: e.payload.name for e in calls if isinstance(e.payload, ToolCall)}
    items: list[tuple[Payload, Actor]] = []
    for call_id in state.open_calls:
        result = ToolResult(
            call_id=call_id,
            name=names.get(call_id, "unknown"),
            output="interrupted: the process running this tool stopped before it finished",
            is_error=True,
            turn_id=state.open_turn,
        )
        items.append((result, "system"))
    reason = "the process running this turn stopped before the turn finished"
    items.append((Interrupted(reason=reason, turn_id=state.open_turn), "system"))
    items.append((TurnFinished(turn_id=state.open_turn, status="interrupted", steps=0), "system"))
    return port.record_many(items)
