"""OpenAI Chat Completions, and every server that speaks it (Ollama, vLLM, llama.cpp, OpenRouter).

`openai:MODEL` talks to api.openai.com with `OPENAI_API_KEY`. With a base URL
(`BRANCHWORK_OPENAI_BASE_URL` or `OPENAI_BASE_URL`, or `ProviderOptions.base_url`) it talks to
that server instead, and no key is needed. The alias `openai-compatible:MODEL` is the same.

Translation only: `_map_messages` / `_map_tools` build the request, `_process_stream` turns the
chunk stream into deltas and one `ModelResponse`, `_map_api_errors` turns SDK exceptions into
`ProviderError`. Reasoning that OpenAI-compatible servers stream as `reasoning_content` or
`reasoning` becomes `ReasoningDelta`s. Cancellation is checked between chunks (not while waiting
for the first byte, which the client timeout bounds).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from branchwork.domain.errors import InvalidInput, ProviderError
from branchwork.domain.messages import (
    AssistantTurn,
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallPart,
    ToolResultTurn,
    ToolSpec,
    Usage,
    UserTurn,
)
from branchwork.providers.base import (
    ProviderInfo,
    ProviderOptions,
    new_call_id,
    provider_status_error,
    raise_if_cancelled,
    redact,
)

if TYPE_CHECKING:  # the SDK is imported on first use: it takes a second to load
    import openai
    from openai.types.chat import (
        ChatCompletionChunk,
        ChatCompletionFunctionToolParam,
        ChatCompletionMessageFunctionToolCallParam,
        ChatCompletionMessageParam,
        ChatCompletionToolChoiceOptionParam,
    )

__all__ = ["OpenAIModel", "register"]

PROVIDER = "openai"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENVS = ("BRANCHWORK_OPENAI_BASE_URL", "OPENAI_BASE_URL")
OPENAI_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "not-needed"

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIModel:
    """A Chat Completions model. `uses_max_completion_tokens` is on for api.openai.com, whose
    newer models refuse `max_tokens`; compatible servers get `max_tokens`."""

    def __init__(
        self,
        model: str,
        client: openai.OpenAI,
        *,
        uses_max_completion_tokens: bool = False,
        secret: str | None = None,
    ) -> None:
        self._model = model
        self._client = client
        self._uses_max_completion_tokens = uses_max_completion_tokens
        self._secret = secret

    @property
    def name(self) -> str:
        return f"{PROVIDER}:{self._model}"

    def __repr__(self) -> str:
        return f"OpenAIModel(name={self.name!r}, base_url={str(self._client.base_url)!r})"

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        raise_if_cancelled(cancel)
        with _map_api_errors(self.name, self._secret):
            chunks = self._create(request)
            with closing(chunks):
                yield from _process_stream(chunks, model=self._model, cancel=cancel)

    def _create(self, request: ModelRequest) -> openai.Stream[ChatCompletionChunk]:
        import openai

        tools = _map_tools(request.tools)
        limit = request.max_tokens if request.max_tokens is not None else openai.omit
        completion_limit = limit if self._uses_max_completion_tokens else openai.omit
        return self._client.chat.completions.create(
            model=self._model,
            messages=_map_messages(request.system, request.messages),
            stream=True,
            stream_options={"include_usage": True},
            tools=tools if tools else openai.omit,
            tool_choice=_map_tool_choice(request.tool_choice) if tools else openai.omit,
            temperature=request.temperature if request.temperature is not None else openai.omit,
            max_tokens=openai.omit if self._uses_max_completion_tokens else limit,
            max_completion_tokens=completion_limit,
        )


# -- request -------------------------------------------------------------------------------


def _map_tool_choice(choice: str) -> ChatCompletionToolChoiceOptionParam:
    if choice in ("auto", "required"):
        return choice  # type: ignore[return-value]
    return {"type": "function", "function": {"name": choice}}


def _map_messages(system: str, messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    mapped: list[ChatCompletionMessageParam] = []
    if system:
        mapped.append({"role": "system", "content": system})
    for message in messages:
        mapped.append(_map_message(message))
    return mapped


def _map_message(message: Message) -> ChatCompletionMessageParam:
    if isinstance(message, UserTurn):
        return {"role": "user", "content": message.text}
    if isinstance(message, ToolResultTurn):
        content = f"Error: {message.content}" if message.is_error else message.content
        return {"role": "tool", "tool_call_id": message.call_id, "content": content}
    return _map_assistant(message)


def _map_assistant(message: AssistantTurn) -> ChatCompletionMessageParam:
    calls: list[ChatCompletionMessageFunctionToolCallParam] = [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": _arguments_json(call)},
        }
        for call in message.tool_calls
    ]
    if calls:
        return {"role": "assistant", "content": message.text or None, "tool_calls": calls}
    return {"role": "assistant", "content": message.text}


def _arguments_json(call: ToolCallPart) -> str:
    if call.raw_arguments is not None:
        return call.raw_arguments
    return json.dumps(call.arguments, ensure_ascii=False)


def _map_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionFunctionToolParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


# -- response ------------------------------------------------------------------------------


@dataclass
class _ToolCallBuilder:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def build(self) -> ToolCallPart:
        raw = "".join(self.arguments)
        arguments = _parse_arguments(raw)
        return ToolCallPart(
            call_id=self.call_id or new_call_id(),
            name=self.name,
            arguments=arguments if arguments is not None else {},
            raw_arguments=None if arguments is not None else raw,
        )


def _parse_arguments(raw: str) -> dict[str, Any] | None:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class _StreamState:
    model: str
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _ToolCallBuilder] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    response_id: str | None = None

    def response(self) -> ModelResponse:
        details: dict[str, Any] = {"finish_reason": self.finish_reason}
        if self.response_id:
            details["id"] = self.response_id
        return ModelResponse(
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=[self.calls[index].build() for index in sorted(self.calls)],
            usage=self.usage,
            model=self.model,
            finish_reason=_FINISH_REASONS.get(self.finish_reason or "stop", "other"),
            provider_details=details,
        )


def _process_stream(
    chunks: Iterable[ChatCompletionChunk], *, model: str, cancel: threading.Event | None
) -> Iterator[StreamItem]:
    """Deltas as they come, then the accumulated `ModelResponse`."""
    state = _StreamState(model=model)
    for chunk in chunks:
        raise_if_cancelled(cancel)
        yield from _apply_chunk(state, chunk)
    yield state.response()


def _apply_chunk(state: _StreamState, chunk: ChatCompletionChunk) -> Iterator[StreamItem]:
    state.model = chunk.model or state.model
    state.response_id = state.response_id or chunk.id
    if chunk.usage is not None:
        details = getattr(chunk.usage, "prompt_tokens_details", None)
        state.usage = Usage(
            input_tokens=chunk.usage.prompt_tokens or 0,
            output_tokens=chunk.usage.completion_tokens or 0,
            cached_tokens=(getattr(details, "cached_tokens", 0) or 0) if details else 0,
            source="reported",
        )
    for choice in chunk.choices[:1]:
        state.finish_reason = choice.finish_reason or state.finish_reason
        delta = choice.delta
        reasoning = _reasoning_of(delta)
        if reasoning:
            state.reasoning.append(reasoning)
            yield ReasoningDelta(text=reasoning)
        if delta.content:
            state.text.append(delta.content)
            yield TextDelta(text=delta.content)
        for call in delta.tool_calls or ():
            _apply_tool_call_delta(state.calls, call)


def _reasoning_of(delta: Any) -> str:
    """The reasoning text that compatible servers add as an extra field of the delta."""
    for key in ("reasoning_content", "reasoning"):
        value = getattr(delta, key, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _apply_tool_call_delta(calls: dict[int, _ToolCallBuilder], delta: Any) -> None:
    index = delta.index if isinstance(delta.index, int) else len(calls)
    builder = calls.setdefault(index, _ToolCallBuilder())
    if delta.id and not builder.call_id:
        builder.call_id = delta.id
    function = delta.function
    if function is None:
        return
    if function.name and not builder.name:
        builder.name = function.name
    if function.arguments:
        builder.arguments.append(function.arguments)


# -- errors --------------------------------------------------------------------------------


@contextmanager
def _map_api_errors(model: str, secret: str | None = None) -> Iterator[None]:
    import openai

    try:
        yield
    except openai.APIStatusError as exc:
        detail = redact(_error_detail(exc), secret)
        raise provider_status_error(
            model, exc.status_code, detail, key_hint=f"{KEY_ENV} (or the base URL's key)"
        ) from None
    except openai.APITimeoutError:
        raise ProviderError(
            f"{model} timed out: retry, or use a faster model or a shorter conversation.",
            retryable=True,
        ) from None
    except openai.APIConnectionError as exc:
        raise ProviderError(
            f"cannot reach {model} ({redact(str(exc.__cause__ or exc), secret)}): check the "
            "network and the base URL, and that the server is running.",
            retryable=True,
        ) from None
    except openai.OpenAIError as exc:
        raise ProviderError(
            f"{model} failed ({redact(str(exc), secret)}): retry; report it if it persists."
        ) from None


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return exc.message


# -- registration --------------------------------------------------------------------------


def _create_model(model: str, options: ProviderOptions) -> OpenAIModel:
    if not model:
        raise InvalidInput(
            "the openai provider needs a model name: use e.g. openai:gpt-4o-mini, "
            "or openai:llama3.2 with OPENAI_BASE_URL for a local server."
        )
    base_url = options.base_url or _first_env(options, BASE_URL_ENVS)
    api_key = options.api_key or options.env.get(KEY_ENV) or (NO_KEY if base_url else None)
    if not api_key:
        raise InvalidInput(
            f"{KEY_ENV} is not set: export {KEY_ENV}=<your key>, or set OPENAI_BASE_URL to "
            "use an OpenAI-compatible server (Ollama, vLLM, llama.cpp) that needs no key."
        )
    import openai

    client = openai.OpenAI(
        api_key=api_key,
        base_url=base_url or OPENAI_BASE_URL,
        timeout=options.timeout_s,
        max_retries=options.max_retries,
    )
    return OpenAIModel(
        model,
        client,
        uses_max_completion_tokens=base_url is None or "api.openai.com" in base_url,
        secret=api_key,
    )


def _first_env(options: ProviderOptions, names: Sequence[str]) -> str | None:
    for name in names:
        value = options.env.get(name, "").strip()
        if value:
            return value
    return None


def register() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        factory=_create_model,
        description="OpenAI Chat Completions, or any OpenAI-compatible server via a base URL",
        aliases=("openai-compatible",),
    )
