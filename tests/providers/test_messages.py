"""The normalized message model."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from branchwork.domain.messages import (
    AssistantTurn,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolResultTurn,
    Usage,
    UserTurn,
)


def test_conversation_round_trips_through_json_by_role() -> None:
    request = ModelRequest(
        system="be brief",
        messages=[
            UserTurn(text="hi"),
            AssistantTurn(tool_calls=[ToolCallPart(call_id="c1", name="ls", arguments={"a": 1})]),
            ToolResultTurn(call_id="c1", name="ls", content="x.py", is_error=False),
        ],
    )
    again = ModelRequest.model_validate_json(request.model_dump_json())
    assert again == request
    assert [m.role for m in again.messages] == ["user", "assistant", "tool"]


def test_message_union_rejects_an_unknown_role() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Message).validate_python({"role": "system", "text": "x"})


def test_messages_are_frozen() -> None:
    turn = UserTurn(text="hi")
    with pytest.raises(ValidationError):
        turn.text = "changed"  # type: ignore[misc]


def test_response_becomes_the_assistant_turn_of_the_next_request() -> None:
    call = ToolCallPart(call_id="c", name="t", arguments={})
    response = ModelResponse(
        text="ok", reasoning="because", tool_calls=[call], provider_details={"k": [1]}
    )
    turn = response.as_turn()
    assert turn == AssistantTurn(
        text="ok", reasoning="because", tool_calls=[call], provider_details={"k": [1]}
    )


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=1, output_tokens=2) + Usage(input_tokens=10, output_tokens=20)
    assert total == Usage(input_tokens=11, output_tokens=22)
