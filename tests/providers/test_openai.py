"""The OpenAI provider: request mapping, stream processing and error mapping.

Streams and errors come over real HTTP from a loopback server replaying recorded responses.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest

from branchwork.domain.errors import Cancelled, ProviderError
from branchwork.domain.messages import (
    AssistantTurn,
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    TextDelta,
    ToolCallPart,
    ToolResultTurn,
    ToolSpec,
    UserTurn,
)
from branchwork.providers import ProviderOptions, complete, resolve_model
from branchwork.providers.base import Model
from branchwork.providers.openai import _map_messages, _map_tools

from ._loopback import LoopbackServer

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}},
)


def _model(server: LoopbackServer, key: str | None = None) -> Model:
    options = ProviderOptions(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    return resolve_model("openai:gpt-test", env={}, options=options)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test-0001",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _tool_delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": index, **fields}]}


TOOL_CALL_STREAM: list[tuple[str | None, Any]] = [
    (None, _chunk({"role": "assistant", "reasoning_content": "Need the file. "})),
    (None, _chunk({"content": "Reading "})),
    (None, _chunk({"content": "it."})),
    (
        None,
        _chunk(
            _tool_delta(
                0, id="call_a", type="function", function={"name": "read_file", "arguments": ""}
            )
        ),
    ),
    (None, _chunk(_tool_delta(0, function={"arguments": '{"pa'}))),
    (
        None,
        _chunk(
            _tool_delta(1, id="call_b", type="function", function={"name": "ls", "arguments": "{}"})
        ),
    ),
    (None, _chunk(_tool_delta(0, function={"arguments": 'th": "README.md"}'}))),
    (None, _chunk({}, finish="tool_calls")),
    (
        None,
        {
            **_chunk({}),
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        },
    ),
    (None, "[DONE]"),
]


def test_messages_map_to_chat_completions_roles() -> None:
    call = ToolCallPart(call_id="c1", name="read_file", arguments={"path": "a.py"})
    mapped = _map_messages(
        "be brief",
        [
            UserTurn(text="hi"),
            AssistantTurn(text="", reasoning="hidden", tool_calls=[call]),
            ToolResultTurn(call_id="c1", name="read_file", content="nope", is_error=True),
            AssistantTurn(text="done"),
        ],
    )
    assert mapped == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "Error: nope"},
        {"role": "assistant", "content": "done"},
    ]


def test_unparsed_arguments_are_sent_back_as_they_came() -> None:
    call = ToolCallPart(call_id="c", name="t", raw_arguments="{broken")
    (message,) = json.loads(json.dumps(_map_messages("", [AssistantTurn(tool_calls=[call])])))
    assert message["tool_calls"][0]["function"]["arguments"] == "{broken"


def test_tools_map_to_function_tools() -> None:
    assert _map_tools([READ_FILE]) == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": READ_FILE.parameters,
            },
        }
    ]


def test_streamed_tool_call_fragments_are_joined_by_index(loopback: LoopbackServer) -> None:
    loopback.reply_sse(TOOL_CALL_STREAM)
    request = ModelRequest(messages=[UserTurn(text="read")], tools=[READ_FILE], max_tokens=50)
    items = list(_model(loopback).stream(request))

    assert [i.text for i in items if isinstance(i, TextDelta)] == ["Reading ", "it."]
    assert [i.text for i in items if isinstance(i, ReasoningDelta)] == ["Need the file. "]
    response = items[-1]
    assert isinstance(response, ModelResponse)
    assert response.text == "Reading it."
    assert response.reasoning == "Need the file. "
    assert [(c.call_id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_a", "read_file", {"path": "README.md"}),
        ("call_b", "ls", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 7)
    assert response.model == "gpt-test-0001"

    sent = loopback.requests[0].json()
    assert loopback.requests[0].path == "/v1/chat/completions"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 50 and "max_completion_tokens" not in sent
    assert sent["tools"][0]["function"]["name"] == "read_file"


def test_invalid_argument_json_is_kept_raw(loopback: LoopbackServer) -> None:
    loopback.reply_sse(
        [
            (None, _chunk(_tool_delta(0, id="c", function={"name": "t", "arguments": "{oops"}))),
            (None, _chunk({}, finish="tool_calls")),
            (None, "[DONE]"),
        ]
    )
    call = complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")])).tool_calls[0]
    assert (call.arguments, call.raw_arguments) == ({}, "{oops")


def test_a_server_that_ignores_include_usage_gives_zero_usage(loopback: LoopbackServer) -> None:
    loopback.reply_sse([(None, _chunk({"content": "hi"}, finish="stop")), (None, "[DONE]")])
    response = complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")]))
    assert (response.text, response.usage.input_tokens, response.finish_reason) == (
        "hi",
        0,
        "stop",
    )


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (408, True), (400, False), (404, False)]
)
def test_http_errors_become_provider_errors(
    loopback: LoopbackServer, status: int, retryable: bool
) -> None:
    loopback.reply_json(status, {"error": {"message": f"status {status} said no", "type": "x"}})
    with pytest.raises(ProviderError) as caught:
        complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")]))
    error = caught.value
    assert (error.status, error.retryable) == (status, retryable)
    assert f"status {status} said no" in error.message
    assert error.message.endswith(".")


def test_the_api_key_is_redacted_from_error_messages(loopback: LoopbackServer) -> None:
    key = "sk-secret-abcdef123456"
    loopback.reply_json(401, {"error": {"message": f"Incorrect API key provided: {key}"}})
    with pytest.raises(ProviderError) as caught:
        complete(_model(loopback, key=key), ModelRequest(messages=[UserTurn(text="x")]))
    assert key not in caught.value.message and "[redacted]" in caught.value.message
    assert "check OPENAI_API_KEY" in caught.value.message
    assert loopback.requests[0].headers["authorization"] == f"Bearer {key}"


def test_an_unreachable_server_is_a_retryable_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = ProviderOptions(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout_s=5)
    model = resolve_model("openai:gpt-test", env={}, options=options)
    with pytest.raises(ProviderError, match="cannot reach openai:gpt-test") as caught:
        complete(model, ModelRequest(messages=[UserTurn(text="x")]))
    assert caught.value.retryable and caught.value.status is None


def test_cancel_is_honoured_between_chunks(loopback: LoopbackServer) -> None:
    loopback.reply_sse(TOOL_CALL_STREAM)
    cancel = threading.Event()
    stream = _model(loopback).stream(ModelRequest(messages=[UserTurn(text="x")]), cancel=cancel)
    assert isinstance(next(stream), ReasoningDelta)
    cancel.set()
    with pytest.raises(Cancelled):
        next(stream)


def test_a_set_cancel_stops_before_any_request(loopback: LoopbackServer) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")]), cancel=cancel)
    assert loopback.requests == []
