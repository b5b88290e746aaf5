"""The normalized conversation a model sees, and what it answers (provider-neutral, no I/O).

Every provider translates a `ModelRequest` into its wire format and its wire format back into
`TextDelta` / `ReasoningDelta` items and one final `ModelResponse`.

Naming: the entries of a conversation are *turns* — `UserTurn`, `AssistantTurn`,
`ToolResultTurn` — united in `Message` on the literal `role`. They are deliberately not called
`UserMessage` & co: those names belong to the event payloads in `domain/events.py`, which record
what happened in a session; these models are what one model call is given. (A "turn" here is one
entry of the model's conversation, not an agent turn with a `turn_id`.) The system prompt is not a
message: it is `ModelRequest.system`, since every provider treats it apart.

```
ModelRequest(system, messages=[UserTurn | AssistantTurn | ToolResultTurn, ...], tools=[ToolSpec])
    -> stream of TextDelta | ReasoningDelta, then one ModelResponse(text, reasoning, tool_calls)
```
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolSpec(_Frozen):
    """A tool the model may call; `parameters` is the JSON schema of its arguments object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCallPart(_Frozen):
    """One call the model asked for.

    `raw_arguments` is set only when the model's arguments were not a JSON object; `arguments`
    is then empty, and the caller should answer with an error result quoting the raw text.
    """

    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = None


class UserTurn(_Frozen):
    role: Literal["user"] = "user"
    text: str


class AssistantTurn(_Frozen):
    """What the model said earlier. `provider_details` carries vendor data that must be sent
    back verbatim (e.g. Anthropic's signed thinking blocks); providers ignore others' keys."""

    role: Literal["assistant"] = "assistant"
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallPart] = Field(default_factory=list)
    provider_details: dict[str, Any] = Field(default_factory=dict)


class ToolResultTurn(_Frozen):
    role: Literal["tool"] = "tool"
    call_id: str
    name: str
    content: str
    is_error: bool = False


Message = Annotated[UserTurn | AssistantTurn | ToolResultTurn, Field(discriminator="role")]


UsageSource = Literal["reported", "counted", "estimated"]


class Usage(_Frozen):
    """Tokens of one model call or a sum of them. `source`: the provider `reported` them, they
    were `counted` with the model's own tokenizer, or `estimated` from the text (never 0
    when nothing was reported); None when unknown yet (the loop then estimates)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    source: UsageSource | None = None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            source=_weakest(self.source, other.source),
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


_SOURCES: tuple[UsageSource, ...] = ("reported", "counted", "estimated")


def _weakest(one: UsageSource | None, other: UsageSource | None) -> UsageSource | None:
    """A sum is as exact as its least exact part."""
    known = [s for s in (one, other) if s is not None]
    return max(known, key=_SOURCES.index) if known else None


class ModelRequest(_Frozen):
    """`tool_choice`: `auto` (the model decides), `required` (it must call a tool), or the
    name of the one tool it must call."""

    system: str = ""
    messages: list[Message] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: str = "auto"
    max_tokens: int | None = None
    temperature: float | None = None


class ModelResponse(_Frozen):
    """The final item of every stream. `finish_reason` is normalized; the vendor's own value
    and any other extras are in `provider_details`."""

    kind: Literal["response"] = "response"
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallPart] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: FinishReason = "stop"
    provider_details: dict[str, Any] = Field(default_factory=dict)

    def as_turn(self) -> AssistantTurn:
        """This response as the assistant entry of the next request's conversation."""
        return AssistantTurn(
            text=self.text,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls,
            provider_details=self.provider_details,
        )


class TextDelta(_Frozen):
    kind: Literal["text_delta"] = "text_delta"
    text: str


class ReasoningDelta(_Frozen):
    kind: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


StreamItem = TextDelta | ReasoningDelta | ModelResponse
