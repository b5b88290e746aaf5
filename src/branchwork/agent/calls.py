"""One model request of a turn, accounted for: streamed to the hooks, timed (latency, time to
first token), its tokens as the provider reported them or else estimated (never 0), priced when
the model's prices are known, and recorded as a `model_call` event with what it produced."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from branchwork.agent.context import estimate_tokens, message_tokens
from branchwork.agent.turn import TurnRun
from branchwork.domain.errors import ProviderError
from branchwork.domain.events import (
    Actor,
    AgentMessage,
    ModelCall,
    Payload,
    Reasoning,
    ToolCall,
)
from branchwork.domain.messages import (
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    TextDelta,
    Usage,
)


@dataclass(frozen=True)
class Timed:
    response: ModelResponse
    latency_ms: int
    ttft_ms: int | None

    def without_text(self) -> Timed:
        """The same call, its answer left out (the harness records its own answer)."""
        return replace(self, response=self.response.model_copy(update={"text": ""}))


def stream(run: TurnRun, request: ModelRequest, *, live: bool = True) -> Timed:
    """Ask the model, streaming its text to the hooks (unless not `live`); raises
    ProviderError or Cancelled."""
    started = time.monotonic()
    first: float | None = None
    response: ModelResponse | None = None
    for item in run.model.stream(request, cancel=run.cancel):
        if isinstance(item, TextDelta | ReasoningDelta) and first is None:
            first = time.monotonic()
        if not live:
            response = item if isinstance(item, ModelResponse) else response
        elif isinstance(item, TextDelta) and run.hooks.on_text:
            run.hooks.on_text(item.text)
        elif isinstance(item, ReasoningDelta) and run.hooks.on_reasoning:
            run.hooks.on_reasoning(item.text)
        elif isinstance(item, ModelResponse):
            response = item
    if response is None:
        raise ProviderError("the model's stream ended without a response; retry", retryable=True)
    done = time.monotonic()
    ttft = None if first is None else int((first - started) * 1000)
    return Timed(response, int((done - started) * 1000), ttft)


def usage_of(request: ModelRequest, response: ModelResponse) -> Usage:
    """The response's usage; estimated from the texts when the provider reported none."""
    if response.usage.source is not None:
        return response.usage
    if response.usage.total:  # numbers without a source: the provider's own
        return response.usage.model_copy(update={"source": "reported"})
    # From the texts, as the context is fitted (a JSON dump of every message on every step
    # cost ~2 ms a step at 1,000 events of history).
    sent = estimate_tokens(request.system + "".join(t.model_dump_json() for t in request.tools))
    sent += sum(message_tokens(m) for m in request.messages)
    made = response.text + response.reasoning
    made += "".join(str(c.arguments) + c.name for c in response.tool_calls)
    return Usage(input_tokens=sent, output_tokens=estimate_tokens(made), source="estimated")


def model_call_event(run: TurnRun, timed: Timed, usage: Usage, purpose: str) -> ModelCall:
    prices = run.settings.prices
    cost = prices.cost(run.model.name, usage) if prices is not None else None
    run.spend(usage, cost)
    return ModelCall(
        turn_id=run.turn_id,
        model=timed.response.model or run.model.name,
        purpose=purpose,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        usage_source=usage.source or "estimated",
        latency_ms=timed.latency_ms,
        ttft_ms=timed.ttft_ms,
        cost_usd=cost,
    )


def record_response(run: TurnRun, request: ModelRequest, timed: Timed, purpose: str) -> None:
    """What the model said (reasoning, answer, tool calls) and what the call cost, recorded in
    one transaction; the answer becomes the turn's text."""
    response = timed.response
    items: list[Payload] = []
    if response.reasoning:
        items.append(
            Reasoning(
                text=response.reasoning,
                turn_id=run.turn_id,
                provider_details=response.provider_details,
            )
        )
    if response.text:
        run.text = response.text
        model = response.model or run.model.name
        items.append(AgentMessage(text=response.text, turn_id=run.turn_id, model=model))
    items += [
        ToolCall(call_id=c.call_id, name=c.name, arguments=c.arguments, turn_id=run.turn_id)
        for c in response.tool_calls
    ]
    items.append(model_call_event(run, timed, usage_of(request, response), purpose))
    run.port.record_many([(item, _actor(item)) for item in items])


def _actor(item: Payload) -> Actor:
    return "system" if isinstance(item, ModelCall) else "agent"
