"""Closing a turn that did not end normally: one a dead process left open (found by the next
turn), and one that raised in this process (closed at once, by `run_turn`)."""

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
from branchwork.domain.replay import SessionState

RECENT_CALLS = 200


def recover_interrupted(port: SessionPort) -> list[Event]:
    """If the log has an open turn, give its unanswered tool calls a synthetic "interrupted"
    result and end the turn as interrupted. Returns the events it appended."""
    state = port.state()
    if state.open_turn is None:
        return []
    said = "interrupted: the process running this tool stopped before it finished"
    items = _results_of_open_calls(port, state, said)
    reason = "the process running this turn stopped before the turn finished"
    items.append((Interrupted(reason=reason, turn_id=state.open_turn), "system"))
    items.append((TurnFinished(turn_id=state.open_turn, status="interrupted", steps=0), "system"))
    return port.record_many(items)


def close_raised_turn(port: SessionPort, finished: TurnFinished) -> list[Event]:
    """End the turn `finished` names, which raised in this process: its unanswered tool calls
    get a result saying why, then `finished` (its status and detail say what happened).
    Nothing when that turn is not the open one (it ended, or never started)."""
    state = port.state()
    if state.open_turn != finished.turn_id:
        return []
    items = _results_of_open_calls(port, state, f"not finished: {finished.detail}")
    items.append((finished, "system"))
    return port.record_many(items)


def _results_of_open_calls(
    port: SessionPort, state: SessionState, output: str
) -> list[tuple[Payload, Actor]]:
    calls = port.recent_events(["tool_call"], RECENT_CALLS)
    names = {e.payload.call_id: e.payload.name for e in calls if isinstance(e.payload, ToolCall)}
    return [
        (
            ToolResult(
                call_id=call_id,
                name=names.get(call_id, "unknown"),
                output=output,
                is_error=True,
                turn_id=state.open_turn,
            ),
            "system",
        )
        for call_id in state.open_calls
    ]
