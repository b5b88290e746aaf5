"""The agent loop: an explicit state machine of named steps.

    PrepareTurn → CallModel ⇄ RunTools → Finish

Each step appends its events (committed by the store before the next step starts) and returns
the next step. A crash loses at most the step in flight: `recover_interrupted` closes an open
turn at the start of the next one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from branchwork.agent.approvals import Approver
from branchwork.agent.context import (
    CONTEXT_EVENTS,
    CONVERSATION_KINDS,
    Conversation,
    conversation,
    system_prompt,
)
from branchwork.agent.execute import execute_call
from branchwork.agent.ports import SessionPort
from branchwork.agent.recovery import recover_interrupted
from branchwork.agent.tools import BUILTIN_SPECS
from branchwork.agent.turn import TurnHooks, TurnResult, TurnRun, TurnSettings
from branchwork.domain.errors import Cancelled, ProviderError
from branchwork.domain.events import (
    AgentMessage,
    Payload,
    Reasoning,
    ToolCall,
    ToolResult,
    TurnFinished,
    TurnStarted,
    TurnStatus,
    UserMessage,
)
from branchwork.domain.messages import (
    ModelRequest,
    ModelResponse,
    ReasoningDelta,
    TextDelta,
    ToolCallPart,
    ToolResultTurn,
    UserTurn,
)
from branchwork.providers.base import Model


class Step(Protocol):
    def __call__(self, run: TurnRun) -> Step | None: ...


@dataclass(frozen=True)
class PrepareTurn:
    message: str

    def __call__(self, run: TurnRun) -> Step | None:
        recover_interrupted(run.port)
        history = run.port.recent_events(CONVERSATION_KINDS, CONTEXT_EVENTS)
        run.message = self.message
        run.conversation = Conversation([*conversation(history), UserTurn(text=self.message)])
        started = TurnStarted(turn_id=run.turn_id, model=run.model.name, mode=run.settings.mode)
        run.port.record_many(
            [(started, "system"), (UserMessage(text=self.message, turn_id=run.turn_id), "user")]
        )
        run.system = system_prompt(run.port.brief(), budget_tokens=run.settings.context_tokens // 4)
        return CallModel()


@dataclass(frozen=True)
class CallModel:
    def __call__(self, run: TurnRun) -> Step | None:
        if run.cancel.is_set():
            return Finish("cancelled")
        if run.steps >= run.settings.max_steps:
            return Finish("step_limit", f"stopped after {run.steps} steps (the step limit)")
        run.steps += 1
        try:
            response = _stream(run, self._request(run))
        except Cancelled:
            return Finish("cancelled")
        except ProviderError as exc:
            return Finish("failed", exc.message)
        self._record(run, response)
        if not response.tool_calls:
            return Finish("completed")
        return RunTools(tuple(response.tool_calls))

    def _request(self, run: TurnRun) -> ModelRequest:
        budget = run.settings.context_tokens - run.settings.context_tokens // 4
        return ModelRequest(
            system=run.system,
            messages=run.conversation.fitted(budget),
            tools=list(BUILTIN_SPECS),
            max_tokens=run.settings.max_output_tokens,
        )

    def _record(self, run: TurnRun, response: ModelResponse) -> None:
        """The response's reasoning, answer and tool calls, recorded in one transaction."""
        run.usage = run.usage + response.usage
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
        run.port.record_many([(item, "agent") for item in items])
        run.conversation.append(response.as_turn())


def _stream(run: TurnRun, request: ModelRequest) -> ModelResponse:
    response: ModelResponse | None = None
    for item in run.model.stream(request, cancel=run.cancel):
        if isinstance(item, TextDelta) and run.hooks.on_text:
            run.hooks.on_text(item.text)
        elif isinstance(item, ReasoningDelta) and run.hooks.on_reasoning:
            run.hooks.on_reasoning(item.text)
        elif isinstance(item, ModelResponse):
            response = item
    if response is None:
        raise ProviderError("the model's stream ended without a response; retry", retryable=True)
    return response


@dataclass(frozen=True)
class RunTools:
    calls: tuple[ToolCallPart, ...]

    def __call__(self, run: TurnRun) -> Step | None:
        summary: str | None = None
        for index, call in enumerate(self.calls):
            if run.cancel.is_set():
                _skip_calls(run, self.calls[index:])
                return Finish("cancelled")
            output, is_error = execute_call(run, call)
            self._result(run, call, output, is_error)
            if call.name == "finish" and not is_error:
                summary = output
        if run.cancel.is_set():
            return Finish("cancelled")
        if summary is not None:
            return Finish("completed", summary=summary)
        return CallModel()

    def _result(self, run: TurnRun, call: ToolCallPart, output: str, is_error: bool) -> None:
        run.record(
            ToolResult(
                call_id=call.call_id,
                name=call.name,
                output=output,
                is_error=is_error,
                turn_id=run.turn_id,
            )
        )
        run.conversation.append(
            ToolResultTurn(call_id=call.call_id, name=call.name, content=output, is_error=is_error)
        )


def _skip_calls(run: TurnRun, calls: tuple[ToolCallPart, ...]) -> None:
    for call in calls:
        RunTools(())._result(run, call, "not run: the user cancelled the turn", True)


@dataclass(frozen=True)
class Finish:
    status: TurnStatus
    detail: str = ""
    summary: str | None = None

    def __call__(self, run: TurnRun) -> Step | None:
        if self.summary:
            run.text = self.summary
            run.record(AgentMessage(text=self.summary, turn_id=run.turn_id, model=run.model.name))
        first_line = run.message.strip().splitlines()[0][:72] if run.message.strip() else ""
        saved = run.port.checkpoint(f"turn: {first_line}")
        run.record(
            TurnFinished(
                turn_id=run.turn_id,
                status=self.status,
                steps=run.steps,
                input_tokens=run.usage.input_tokens,
                output_tokens=run.usage.output_tokens,
                detail=self.detail,
            ),
            "system",
        )
        run.result = TurnResult(
            run.turn_id, self.status, run.steps, run.text, run.usage, saved, self.detail
        )
        return None


def run_turn(
    port: SessionPort,
    model: Model,
    message: str,
    *,
    settings: TurnSettings,
    approver: Approver,
    hooks: TurnHooks | None = None,
    cancel: threading.Event | None = None,
) -> TurnResult:
    """Run one turn of the agent on `message`, from the session's recorded history."""
    run = TurnRun(
        port, model, settings, approver, hooks or TurnHooks(), cancel or threading.Event()
    )
    stop_observing = port.observe(run.hooks.on_event) if run.hooks.on_event else None
    try:
        step: Step | None = PrepareTurn(message)
        while step is not None:
            step = step(run)
    finally:
        if stop_observing:
            stop_observing()
    assert run.result is not None
    return run.result
