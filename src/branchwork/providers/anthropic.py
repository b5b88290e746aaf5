"""Anthropic Messages API (streaming, tool use, extended thinking).

`anthropic:MODEL` uses `ANTHROPIC_API_KEY`; `ANTHROPIC_BASE_URL` (or
`BRANCHWORK_ANTHROPIC_BASE_URL`, or `ProviderOptions.base_url`) points it elsewhere.

Extended thinking is off unless the model name ends in `+thinking` (a 2048-token budget) or
`+thinking=N`: `anthropic:claude-sonnet-4-5+thinking=4096`. With thinking on, `temperature` is
not sent (the API requires its default) and `max_tokens` is raised to at least budget + 1024.
Thinking arrives as `ReasoningDelta`s; the signed blocks are kept in
`provider_details["anthropic_thinking"]` and sent back verbatim with that assistant turn, as the
API requires when tools are used with thinking.

Translation only: `_map_messages`, `_process_stream`, `_map_api_errors`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

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
    import anthropic
    from anthropic.types import (
        ContentBlockParam,
        MessageParam,
        RawMessageStreamEvent,
        ThinkingConfigEnabledParam,
        ToolChoiceParam,
        ToolParam,
    )

__all__ = ["AnthropicModel", "register", "split_thinking_suffix"]

PROVIDER = "anthropic"
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENVS = ("BRANCHWORK_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL")
DEFAULT_MAX_TOKENS = 4096
DEFAULT_THINKING_BUDGET = 2048
THINKING_DETAILS_KEY = "anthropic_thinking"
_THINKING_SUFFIX = re.compile(r"\+thinking(?:=(\d+))?$")

_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicModel:
    def __init__(
        self,
        model: str,
        client: anthropic.Anthropic,
        *,
        thinking_budget: int | None = None,
        secret: str | None = None,
    ) -> None:
        self._model = model
        self._client = client
        self._thinking_budget = thinking_budget
        self._secret = secret

    @property
    def name(self) -> str:
        suffix = f"+thinking={self._thinking_budget}" if self._thinking_budget else ""
        return f"{PROVIDER}:{self._model}{suffix}"

    def __repr__(self) -> str:
        return f"AnthropicModel(name={self.name!r}, base_url={str(self._client.base_url)!r})"

    def stream(
        self, request: ModelRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[StreamItem]:
        raise_if_cancelled(cancel)
        with _map_api_errors(self.name, self._secret):
            events = self._create(request)
            with closing(events):
                yield from _process_stream(events, model=self._model, cancel=cancel)

    def _create(self, request: ModelRequest) -> anthropic.Stream[RawMessageStreamEvent]:
        import anthropic

        budget = self._thinking_budget
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        thinking: ThinkingConfigEnabledParam | anthropic.Omit = anthropic.omit
        extra: dict[str, object] = {}
        if budget:
            thinking = {"type": "enabled", "budget_tokens": budget}
            max_tokens = max(max_tokens, budget + 1024)
        elif request.temperature is not None:
            extra["temperature"] = request.temperature  # not a typed parameter of the SDK
        tools = _map_tools(request.tools)
        forced = request.tool_choice != "auto" and not budget  # thinking forbids forcing
        return self._client.messages.create(
            model=self._model,
            max_tokens=max_tokens,
            messages=_map_messages(request.messages),
            system=request.system or anthropic.omit,
            tools=tools if tools else anthropic.omit,
            tool_choice=_map_tool_choice(request.tool_choice)
            if tools and forced
            else anthropic.omit,
            thinking=thinking,
            stream=True,
            extra_body=extra or None,
        )


# -- request -------------------------------------------------------------------------------


def _map_tool_choice(choice: str) -> ToolChoiceParam:
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _map_messages(messages: Sequence[Message]) -> list[MessageParam]:
    """One API message per role run: consecutive tool results and user text share a message,
    as the API wants every tool result in the user message right after the tool use."""
    mapped: list[MessageParam] = []
    for message in messages:
        role, blocks = _map_message(message)
        if not blocks:
            continue
        if mapped and mapped[-1]["role"] == role:
            cast("list[ContentBlockParam]", mapped[-1]["content"]).extend(blocks)
        else:
            mapped.append({"role": role, "content": blocks})
    return mapped


def _map_message(message: Message) -> tuple[Any, list[ContentBlockParam]]:
    if isinstance(message, UserTurn):
        return "user", [{"type": "text", "text": message.text}] if message.text else []
    if isinstance(message, ToolResultTurn):
        block: ContentBlockParam = {
            "type": "tool_result",
            "tool_use_id": message.call_id,
            "content": message.content,
            "is_error": message.is_error,
        }
        return "user", [block]
    return "assistant", _assistant_blocks(message)


def _assistant_blocks(message: AssistantTurn) -> list[ContentBlockParam]:
    blocks: list[ContentBlockParam] = [
        cast("ContentBlockParam", block)
        for block in message.provider_details.get(THINKING_DETAILS_KEY, [])
    ]
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments}
        )
    return blocks


def _map_tools(tools: Sequence[ToolSpec]) -> list[ToolParam]:
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": cast(Any, tool.parameters),
        }
        for tool in tools
    ]


# -- response ------------------------------------------------------------------------------


@dataclass
class _Block:
    type: str
    parts: list[str] = field(default_factory=list)
    signature: str = ""
    call_id: str = ""
    name: str = ""
    data: str = ""

    def tool_call(self) -> ToolCallPart:
        raw = "".join(self.parts)
        try:
            value = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            value = None
        ok = isinstance(value, dict)
        return ToolCallPart(
            call_id=self.call_id or new_call_id(),
            name=self.name,
            arguments=cast(dict[str, Any], value) if ok else {},
            raw_arguments=None if ok else raw,
        )

    def thinking_param(self) -> dict[str, str]:
        if self.type == "redacted_thinking":
            return {"type": "redacted_thinking", "data": self.data}
        return {"type": "thinking", "thinking": "".join(self.parts), "signature": self.signature}


@dataclass
class _StreamState:
    model: str
    blocks: dict[int, _Block] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    stop_reason: str | None = None
    message_id: str | None = None

    def of_type(self, *types: str) -> list[_Block]:
        return [self.blocks[i] for i in sorted(self.blocks) if self.blocks[i].type in types]

    def response(self) -> ModelResponse:
        thinking = self.of_type("thinking", "redacted_thinking")
        details: dict[str, Any] = {"stop_reason": self.stop_reason, "id": self.message_id}
        if thinking:
            details[THINKING_DETAILS_KEY] = [block.thinking_param() for block in thinking]
        return ModelResponse(
            text="".join("".join(b.parts) for b in self.of_type("text")),
            reasoning="\n\n".join("".join(b.parts) for b in self.of_type("thinking")),
            tool_calls=[block.tool_call() for block in self.of_type("tool_use")],
            usage=Usage(
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cached_tokens=self.cached_tokens,
                source="reported",
            ),
            model=self.model,
            finish_reason=_FINISH_REASONS.get(self.stop_reason or "end_turn", "other"),
            provider_details=details,
        )


def _process_stream(
    events: Iterable[RawMessageStreamEvent], *, model: str, cancel: threading.Event | None
) -> Iterator[StreamItem]:
    state = _StreamState(model=model)
    for event in events:
        raise_if_cancelled(cancel)
        yield from _apply_event(state, event)
    yield state.response()


def _apply_event(state: _StreamState, event: RawMessageStreamEvent) -> Iterator[StreamItem]:
    if event.type == "message_start":
        message = event.message
        state.model, state.message_id = message.model or state.model, message.id
        usage = message.usage
        state.cached_tokens = usage.cache_read_input_tokens or 0
        state.input_tokens = (
            usage.input_tokens + (usage.cache_creation_input_tokens or 0) + state.cached_tokens
        )
        state.output_tokens = usage.output_tokens
    elif event.type == "content_block_start":
        state.blocks[event.index] = _start_block(event.content_block)
    elif event.type == "content_block_delta":
        yield from _apply_delta(state.blocks.setdefault(event.index, _Block("text")), event.delta)
    elif event.type == "message_delta":
        state.stop_reason = event.delta.stop_reason or state.stop_reason
        state.output_tokens = event.usage.output_tokens
        if event.usage.input_tokens:
            state.input_tokens = max(state.input_tokens, event.usage.input_tokens)


def _start_block(block: Any) -> _Block:
    if block.type == "text":
        return _Block("text", parts=[block.text] if block.text else [])
    if block.type == "thinking":
        parts = [block.thinking] if block.thinking else []
        return _Block("thinking", parts=parts, signature=block.signature or "")
    if block.type == "redacted_thinking":
        return _Block("redacted_thinking", data=block.data)
    if block.type == "tool_use":
        return _Block("tool_use", call_id=block.id, name=block.name)
    return _Block(block.type)


def _apply_delta(block: _Block, delta: Any) -> Iterator[StreamItem]:
    if delta.type == "text_delta":
        block.parts.append(delta.text)
        yield TextDelta(text=delta.text)
    elif delta.type == "thinking_delta":
        block.parts.append(delta.thinking)
        yield ReasoningDelta(text=delta.thinking)
    elif delta.type == "input_json_delta":
        block.parts.append(delta.partial_json)
    elif delta.type == "signature_delta":
        block.signature += delta.signature


# -- errors --------------------------------------------------------------------------------


@contextmanager
def _map_api_errors(model: str, secret: str | None = None) -> Iterator[None]:
    import anthropic

    try:
        yield
    except anthropic.APIStatusError as exc:
        detail = redact(_error_detail(exc), secret)
        raise provider_status_error(model, exc.status_code, detail, key_hint=KEY_ENV) from None
    except anthropic.APITimeoutError:
        raise ProviderError(
            f"{model} timed out: retry, or use a shorter conversation.", retryable=True
        ) from None
    except anthropic.APIConnectionError as exc:
        raise ProviderError(
            f"cannot reach {model} ({redact(str(exc.__cause__ or exc), secret)}): check the "
            "network and ANTHROPIC_BASE_URL if you set one.",
            retryable=True,
        ) from None
    except anthropic.AnthropicError as exc:
        raise ProviderError(
            f"{model} failed ({redact(str(exc), secret)}): retry; report it if it persists."
        ) from None


def _error_detail(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message


# -- registration --------------------------------------------------------------------------


def split_thinking_suffix(model: str) -> tuple[str, int | None]:
    """`"claude-x+thinking=4096"` -> `("claude-x", 4096)`; no suffix -> `(model, None)`."""
    match = _THINKING_SUFFIX.search(model)
    if match is None:
        return model, None
    budget = int(match.group(1)) if match.group(1) else DEFAULT_THINKING_BUDGET
    return model[: match.start()], budget


def _create_model(model: str, options: ProviderOptions) -> AnthropicModel:
    name, budget = split_thinking_suffix(model)
    if not name:
        raise InvalidInput(
            "the anthropic provider needs a model name: use e.g. anthropic:claude-sonnet-4-5."
        )
    if budget is not None and budget < 1024:
        raise InvalidInput(
            f"a thinking budget of {budget} is too small: use +thinking=1024 or more."
        )
    api_key = options.api_key or options.env.get(KEY_ENV)
    if not api_key:
        raise InvalidInput(f"{KEY_ENV} is not set: export {KEY_ENV}=<your key> and retry.")
    base_url = options.base_url or next(
        (options.env[n] for n in BASE_URL_ENVS if options.env.get(n)), None
    )
    import anthropic

    client = anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url or "https://api.anthropic.com",
        timeout=options.timeout_s,
        max_retries=options.max_retries,
    )
    return AnthropicModel(name, client, thinking_budget=budget, secret=api_key)


def register() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        factory=_create_model,
        description="Anthropic Messages API (Claude); add +thinking for extended thinking",
    )
