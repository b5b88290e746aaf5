"""The Anthropic provider: mapping, and a recorded SSE stream over real loopback HTTP."""

from __future__ import annotations

import json
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
from branchwork.providers.anthropic import THINKING_DETAILS_KEY, _map_messages
from branchwork.providers.base import Model

from ._loopback import LoopbackServer

KEY = "sk-ant-test-0123456789"
READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}},
)


def _model(server: LoopbackServer, spec: str = "anthropic:claude-test") -> Model:
    options = ProviderOptions(base_url=server.url, api_key=KEY, max_retries=0)
    return resolve_model(spec, env={}, options=options)


def _block_events(
    index: int, start: dict[str, Any], deltas: list[dict[str, Any]]
) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        ),
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


RECORDED_STREAM: list[tuple[str | None, Any]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-test-2025",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 20, "cache_read_input_tokens": 5, "output_tokens": 1},
            },
        },
    ),
    ("ping", {"type": "ping"}),
    *_block_events(
        0,
        {"type": "thinking", "thinking": "", "signature": ""},
        [
            {"type": "thinking_delta", "thinking": "The user wants "},
            {"type": "thinking_delta", "thinking": "the readme."},
            {"type": "signature_delta", "signature": "sig-abc"},
        ],
    ),
    *_block_events(
        1,
        {"type": "text", "text": ""},
        [
            {"type": "text_delta", "text": "Let me "},
            {"type": "text_delta", "text": "read it."},
        ],
    ),
    *_block_events(
        2,
        {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {}},
        [
            {"type": "input_json_delta", "partial_json": '{"path": '},
            {"type": "input_json_delta", "partial_json": '"README.md"}'},
        ],
    ),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def test_thinking_text_and_tool_use_map_to_one_response(loopback: LoopbackServer) -> None:
    loopback.reply_sse(RECORDED_STREAM)
    request = ModelRequest(
        system="be brief", messages=[UserTurn(text="readme?")], tools=[READ_FILE]
    )
    items = list(_model(loopback, "anthropic:claude-test+thinking").stream(request))

    assert [i.text for i in items if isinstance(i, ReasoningDelta)] == [
        "The user wants ",
        "the readme.",
    ]
    assert [i.text for i in items if isinstance(i, TextDelta)] == ["Let me ", "read it."]
    response = items[-1]
    assert isinstance(response, ModelResponse)
    assert (response.text, response.reasoning) == ("Let me read it.", "The user wants the readme.")
    assert response.tool_calls == [
        ToolCallPart(call_id="toolu_01", name="read_file", arguments={"path": "README.md"})
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (25, 42)
    assert response.model == "claude-test-2025"
    assert response.provider_details[THINKING_DETAILS_KEY] == [
        {"type": "thinking", "thinking": "The user wants the readme.", "signature": "sig-abc"}
    ]

    sent = loopback.requests[0]
    assert sent.path == "/v1/messages"
    auth = sent.headers.get("authorization", "").removeprefix("Bearer ")
    assert KEY in (sent.headers.get("x-api-key"), auth)  # the header depends on the SDK version
    body = sent.json()
    assert body["system"] == "be brief" and body["stream"] is True
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] >= 2048 + 1024 and "temperature" not in body
    assert body["tools"][0]["input_schema"] == READ_FILE.parameters


def test_next_request_sends_signed_thinking_and_tool_results_back(
    loopback: LoopbackServer,
) -> None:
    loopback.reply_sse(RECORDED_STREAM)
    model = _model(loopback, "anthropic:claude-test+thinking")
    first = complete(model, ModelRequest(messages=[UserTurn(text="readme?")], tools=[READ_FILE]))
    loopback.reply_sse(
        [
            ("message_start", RECORDED_STREAM[0][1]),
            *_block_events(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": "ok"}]),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 2},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    history = [
        UserTurn(text="readme?"),
        first.as_turn(),
        ToolResultTurn(call_id="toolu_01", name="read_file", content="# Title"),
    ]
    second = complete(model, ModelRequest(messages=history, tools=[READ_FILE]))
    assert (second.text, second.finish_reason) == ("ok", "stop")
    assistant, tool_result = loopback.requests[1].json()["messages"][1:]
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use"]
    assert assistant["content"][0]["signature"] == "sig-abc"
    assert tool_result == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": "# Title",
                "is_error": False,
            }
        ],
    }


def test_consecutive_tool_results_and_user_text_share_one_user_message() -> None:
    calls = [ToolCallPart(call_id=c, name="t", arguments={}) for c in ("a", "b")]
    mapped = _map_messages(
        [
            UserTurn(text="go"),
            AssistantTurn(text="", reasoning="unsigned, dropped", tool_calls=calls),
            ToolResultTurn(call_id="a", name="t", content="1"),
            ToolResultTurn(call_id="b", name="t", content="2", is_error=True),
            UserTurn(text="and then?"),
        ]
    )
    plain: list[dict[str, Any]] = json.loads(json.dumps(mapped))
    assert [m["role"] for m in plain] == ["user", "assistant", "user"]
    assert [b["type"] for b in plain[1]["content"]] == ["tool_use", "tool_use"]
    assert [b["type"] for b in plain[2]["content"]] == ["tool_result", "tool_result", "text"]


def test_temperature_is_sent_when_thinking_is_off(loopback: LoopbackServer) -> None:
    loopback.reply_sse(RECORDED_STREAM)
    complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")], temperature=0.3))
    body = loopback.requests[0].json()
    assert body["temperature"] == 0.3 and "thinking" not in body
    assert body["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (529, True), (500, True), (400, False)]
)
def test_http_errors_become_provider_errors(
    loopback: LoopbackServer, status: int, retryable: bool
) -> None:
    loopback.reply_json(
        status,
        {"type": "error", "error": {"type": "x", "message": f"{KEY} is over capacity"}},
    )
    with pytest.raises(ProviderError) as caught:
        complete(_model(loopback), ModelRequest(messages=[UserTurn(text="x")]))
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    assert "is over capacity" in caught.value.message and KEY not in caught.value.message


def test_cancel_is_honoured_between_events(loopback: LoopbackServer) -> None:
    loopback.reply_sse(RECORDED_STREAM)
    cancel = threading.Event()
    stream = _model(loopback).stream(ModelRequest(messages=[UserTurn(text="x")]), cancel=cancel)
    assert isinstance(next(stream), ReasoningDelta)
    cancel.set()
    with pytest.raises(Cancelled):
        next(stream)
