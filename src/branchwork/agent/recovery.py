"""Resume after a crash: close a turn that a dead process left open."""

from __future__ import annotations

from branchwork.agent.ports import SessionPort
from branchwork.domain.events import Event, Interrupted, ToolCall, ToolResult, TurnFinished
from branchwork.domain.replay import replay


def recover_interrupted(port: SessionPort) -> list[Event]:
    """If the log has an open turn, give its unanswered tool calls a synthetic "interrupted"
    result and end the turn as interrupted. Returns the events it appended."""
    history = port.history()
    state = replay(history)
    if state.open_turn is None:
        return []
    names = {e.payload.call_id: e.payload.name for e in history if isinstance(e.payload, ToolCall)}
    appended: list[Event] = []
    for call_id in state.open_calls:
        result = ToolResult(
            call_id=call_id,
            name=names.get(call_id, "unknown"),
            output="interrupted: the process running this tool stopped before it finished",
            is_error=True,
            turn_id=state.open_turn,
        )
        appended.append(port.record(result, "system"))
    reason = "the process running this turn stopped before the turn finished"
    appended.append(port.record(Interrupted(reason=reason, turn_id=state.open_turn), "system"))
    finished = TurnFinished(turn_id=state.open_turn, status="interrupted", steps=0)
    appended.append(port.record(finished, "system"))
    return appended
