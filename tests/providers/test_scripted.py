"""The scripted test model, in process and as the `scripted` provider."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from branchwork.domain.errors import Cancelled, InvalidInput, NotFound, ProviderError
from branchwork.domain.messages import (
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    TextDelta,
    Usage,
    UserTurn,
)
from branchwork.providers import (
    ScriptedModel,
    ScriptedReply,
    ScriptedToolCall,
    complete,
    resolve_model,
)


def _ask(text: str) -> ModelRequest:
    return ModelRequest(messages=[UserTurn(text=text)])


def test_replies_come_in_order_and_every_request_is_recorded() -> None:
    model = ScriptedModel([ScriptedReply(text="one"), ScriptedReply(text="two")])
    assert complete(model, _ask("a")).text == "one"
    assert complete(model, _ask("b")).text == "two"
    assert [r.messages[0] for r in model.requests] == [UserTurn(text="a"), UserTurn(text="b")]
    model.assert_complete()


def test_text_and_reasoning_stream_in_a_few_deltas_before_the_response() -> None:
    reply = ScriptedReply(text="hello there world", reasoning="think", usage=Usage(output_tokens=3))
    items = list(ScriptedModel([reply]).stream(_ask("x")))
    texts = [i.text for i in items if isinstance(i, TextDelta)]
    assert "".join(texts) == "hello there world" and len(texts) > 1
    assert "".join(i.text for i in items if isinstance(i, ReasoningDelta)) == "think"
    final = items[-1]
    assert isinstance(final, ModelResponse)
    assert final.usage.output_tokens == 3 and final.finish_reason == "stop"


def test_tool_calls_get_ids_and_the_tool_calls_finish_reason() -> None:
    model = ScriptedModel([ScriptedReply.call("read_file", path="a.py"), ScriptedReply.call("ls")])
    first, second = complete(model, _ask("x")), complete(model, _ask("y"))
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls[0].arguments == {"path": "a.py"}
    assert first.tool_calls[0].call_id != second.tool_calls[0].call_id


def test_a_callable_reply_sees_the_request() -> None:
    model = ScriptedModel([lambda request: ScriptedReply(text=f"{len(request.messages)} msgs")])
    assert complete(model, _ask("x")).text == "1 msgs"


def test_an_exception_in_the_script_is_raised_by_that_call() -> None:
    model = ScriptedModel([ProviderError("boom", status=503, retryable=True), "after"])
    with pytest.raises(ProviderError, match="boom"):
        complete(model, _ask("x"))
    assert complete(model, _ask("y")).text == "after"


def test_running_out_of_replies_is_a_clear_provider_error() -> None:
    model = ScriptedModel([])
    with pytest.raises(ProviderError, match="ran out of replies at request 1: add more"):
        complete(model, _ask("x"))


def test_assert_complete_fails_while_replies_are_left() -> None:
    model = ScriptedModel(["a", "b"])
    complete(model, _ask("x"))
    with pytest.raises(AssertionError, match="1 scripted replies were never used"):
        model.assert_complete()


def test_cancel_interrupts_a_delayed_reply_quickly() -> None:
    model = ScriptedModel([ScriptedReply(text="late", delay_s=5.0)])
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="send the message again"):
        complete(model, _ask("x"), cancel=cancel)
    assert time.monotonic() - started < 1.0


def test_cancel_between_deltas_stops_the_stream() -> None:
    cancel = threading.Event()
    stream = ScriptedModel([ScriptedReply(text="a b c d e f")]).stream(_ask("x"), cancel=cancel)
    assert isinstance(next(stream), TextDelta)
    cancel.set()
    with pytest.raises(Cancelled):
        next(stream)


def test_scripted_provider_reads_replies_from_a_json_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                "plain text",
                {"tool_calls": [{"name": "run", "arguments": {"cmd": "ls"}, "call_id": "c9"}]},
                {"error": {"message": "slow down", "status": 429, "retryable": True}},
            ]
        )
    )
    model = resolve_model(f"scripted:{script}", env={})
    assert complete(model, _ask("1")).text == "plain text"
    call = complete(model, _ask("2")).tool_calls[0]
    assert (call.call_id, call.name, call.arguments) == ("c9", "run", {"cmd": "ls"})
    with pytest.raises(ProviderError) as caught:
        complete(model, _ask("3"))
    assert (caught.value.status, caught.value.retryable) == (429, True)


def test_scripted_provider_takes_the_file_from_branchwork_script(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text('[{"text": "from env", "usage": {"input_tokens": 4}}]')
    model = resolve_model("scripted", env={"BRANCHWORK_SCRIPT": str(script)})
    response = complete(model, _ask("x"))
    assert (response.text, response.usage.input_tokens) == ("from env", 4)


def test_scripted_provider_errors_say_how_to_fix_the_script(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="BRANCHWORK_SCRIPT"):
        resolve_model("scripted", env={})
    with pytest.raises(NotFound, match="write a JSON list of replies there"):
        resolve_model(f"scripted:{tmp_path / 'missing.json'}", env={})
    bad = tmp_path / "bad.json"
    bad.write_text('{"text": "not a list"}')
    with pytest.raises(InvalidInput, match="is not a JSON list of replies"):
        resolve_model(f"scripted:{bad}", env={})


def test_scripted_tool_call_model_accepts_explicit_ids() -> None:
    reply = ScriptedReply(tool_calls=[ScriptedToolCall(name="t", call_id="fixed")])
    assert complete(ScriptedModel([reply]), _ask("x")).tool_calls[0].call_id == "fixed"
