"""The scripted model: replies queued in advance, every request recorded.

The test double for the agent loop, shipped with the library (as openai-agents'
`testing/model.py`). In a test::

    model = ScriptedModel([
        ScriptedReply.call("read_file", path="README.md"),
        ScriptedReply(text="It is a readme."),
    ])
    ...  # run the agent with `model`
    assert model.requests[1].messages[-1].role == "tool"
    model.assert_complete()

A plain string is a text reply. A reply may also be a callable `(ModelRequest) -> ScriptedReply`
(to answer from what was asked) or an exception instance (raised by that call). `delay_s` makes a
reply wait, in small steps that honour `cancel`, so that cancellation can be tested.

As a provider, `scripted:PATH` (or `scripted` with `BRANCHWORK_SCRIPT=PATH`) reads the replies
from a JSON file holding a list of reply objects (a plain string is a text reply), so a CLI in a
subprocess can be driven by a test::

    ["Hello!", {"tool_calls": [{"name": "run_command", "arguments": {"command": "ls"}}]},
     {"error": {"message": "rate limited", "status": 429, "retryable": true}}]

Every process starts at the first reply of the file.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from branchwork.domain.errors import InvalidInput, NotFound, ProviderError
from branchwork.domain.messages import (
    FinishReason,
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallPart,
    Usage,
)
from branchwork.providers.base import ProviderInfo, ProviderOptions, raise_if_cancelled

__all__ = [
    "SCRIPT_ENV",
    "ScriptedError",
    "ScriptedModel",
    "ScriptedReply",
    "ScriptedToolCall",
    "register",
]

PROVIDER = "scripted"
SCRIPT_ENV = "BRANCHWORK_SCRIPT"
_SLEEP_STEP_S = 0.01


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    call_id: str | None = None


class ScriptedError(BaseModel):
    """A `ProviderError` to raise, for scripts written as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: str = "scripted provider failure: this error was scripted by the test."
    status: int | None = None
    retryable: bool = False


class ScriptedReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    finish_reason: FinishReason | None = None
    delay_s: float = 0.0
    error: ScriptedError | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @classmethod
    def call(cls, name: str, /, **arguments: Any) -> ScriptedReply:
        """A reply that calls one tool: `ScriptedReply.call("read_file", path="a.py")`."""
        return cls(tool_calls=[ScriptedToolCall(name=name, arguments=arguments)])


Script = ScriptedReply | str | Callable[[ModelRequest], ScriptedReply] | BaseException
_FILE_ADAPTER = TypeAdapter(list[ScriptedReply])


class ScriptedModel:
    """A `Model` that answers from a queue of replies; see the module docstring."""

    def __init__(
        self, replies: Iterable[Script] = (), *, name: str = PROVIDER, deltas: int = 3
    ) -> None:
        self._name = name
        self._queue: deque[Script] = deque(replies)
        self._deltas = max(1, deltas)
        self._lock = threading.Lock()
        self._calls = 0
        self.requests: list[ModelRequest] = []

    @classmethod
    def from_file(cls, path: str | Path, *, name: str | None = None) -> ScriptedModel:
        return cls(load_script(Path(path)), name=name or f"{PROVIDER}:{path}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"ScriptedModel(name={self._name!r}, remaining={self.remaining})"

    def add(self, *replies: Script) -> None:
        with self._lock:
            self._queue.extend(replies)

    def assert_complete(self) -> None:
        """Fail when some scripted replies were never asked for."""
        if self._queue:
            raise AssertionError(
                f"{self._name}: {len(self._queue)} scripted replies were never used after "
                f"{len(self.requests)} requests; remove them or check why the loop stopped early."
            )

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        reply = self._next(request)
        _wait(reply.delay_s, cancel)
        if reply.error is not None:
            error = reply.error
            raise ProviderError(error.message, status=error.status, retryable=error.retryable)
        for piece in _pieces(reply.reasoning, self._deltas):
            raise_if_cancelled(cancel)
            yield ReasoningDelta(text=piece)
        for piece in _pieces(reply.text, self._deltas):
            raise_if_cancelled(cancel)
            yield TextDelta(text=piece)
        raise_if_cancelled(cancel)
        yield self._response(reply)

    def _next(self, request: ModelRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if not self._queue:
                raise ProviderError(
                    f"{self._name} ran out of replies at request {len(self.requests)}: "
                    "add more replies to the script."
                )
            script = self._queue.popleft()
        if isinstance(script, BaseException):
            raise script
        if isinstance(script, str):
            return ScriptedReply(text=script)
        return script if isinstance(script, ScriptedReply) else script(request)

    def _response(self, reply: ScriptedReply) -> ModelResponse:
        calls = [self._tool_call(call) for call in reply.tool_calls]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        return ModelResponse(
            text=reply.text,
            reasoning=reply.reasoning,
            tool_calls=calls,
            usage=reply.usage,
            model=self._name,
            finish_reason=finish,
        )

    def _tool_call(self, call: ScriptedToolCall) -> ToolCallPart:
        with self._lock:
            self._calls += 1
            number = self._calls
        call_id = call.call_id or f"scripted-call-{number}"
        return ToolCallPart(call_id=call_id, name=call.name, arguments=call.arguments)


def _wait(delay_s: float, cancel: threading.Event | None) -> None:
    deadline = time.monotonic() + delay_s
    while True:
        raise_if_cancelled(cancel)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if cancel is not None:
            cancel.wait(min(left, _SLEEP_STEP_S))
        else:
            time.sleep(min(left, _SLEEP_STEP_S))


def _pieces(text: str, count: int) -> list[str]:
    if not text:
        return []
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def load_script(path: Path) -> list[ScriptedReply]:
    """The replies of a JSON script file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"script file {path} does not exist: write a JSON list of replies there."
        ) from None
    try:
        return _FILE_ADAPTER.validate_python(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInput(
            f"script file {path} is not a JSON list of replies ({first}): fix it, e.g. "
            '["hello", {"tool_calls": [{"name": "read_file", "arguments": {"path": "a"}}]}].'
        ) from None


def _create_model(model: str, options: ProviderOptions) -> ScriptedModel:
    path = model or options.env.get(SCRIPT_ENV, "").strip()
    if not path:
        raise InvalidInput(
            f"the scripted model needs replies: use scripted:PATH with a JSON list of replies, "
            f"or set {SCRIPT_ENV}=PATH."
        )
    return ScriptedModel.from_file(path, name=f"{PROVIDER}:{path}")


def register() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        factory=_create_model,
        description="replies scripted in a JSON file (scripted:PATH), for tests",
        reads_files=True,
        named_models=frozenset({""}),
    )
