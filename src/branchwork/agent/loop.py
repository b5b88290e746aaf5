"""The agent loop: an explicit state machine of named steps.

    PrepareTurn → [compaction] → CallModel ⇄ RunTools → [Summarize] → Finish

Each step appends its events (committed by the store before the next step starts) and returns
the next step. A crash loses at most the step in flight: `recover_interrupted` closes an open
turn at the start of the next one, and that turn is told so. A step that raises (the final
checkpoint failed, the database refused a write, a bug) ends its turn at once, whatever it
raised: the turn's `turn_finished` says `failed` (`cancelled` for Ctrl-C) with the step and the
reason in one line, then the error goes on to the caller.

The harness behaves whatever the model does: a call (or an answer) repeated is answered with a
note the first time and ends the turn as `stuck` the next (`TurnSettings.stuck_repeats`); the
step limit and the budgets end it as `step_limit` / `budget`; each of these ends with one last
request without tools for a summary of what was done and what is left (`Summarize`), so every
turn ends with an answer.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from typing import Protocol

from branchwork.agent.approvals import Approver
from branchwork.agent.calls import record_response, stream
from branchwork.agent.compaction import compact, needs_compaction
from branchwork.agent.context import (
    Conversation,
    compaction_opening,
    history_since,
    system_prompt,
)
from branchwork.agent.execute import execute_call
from branchwork.agent.ports import SessionPort
from branchwork.agent.recovery import close_raised_turn, recover_interrupted
from branchwork.agent.tools import BUILTIN_SPECS, clip
from branchwork.agent.turn import (
    TurnHooks,
    TurnResult,
    TurnRun,
    TurnSettings,
    signature,
)
from branchwork.domain.errors import BranchworkError, Cancelled, ProviderError
from branchwork.domain.events import (
    AgentMessage,
    ToolResult,
    TurnFinished,
    TurnStarted,
    TurnStatus,
    UserMessage,
)
from branchwork.domain.messages import (
    Message,
    ModelRequest,
    ToolCallPart,
    ToolResultTurn,
    ToolSpec,
    UserTurn,
)
from branchwork.providers.base import Model

INTERRUPTED_NOTE = (
    "[Your previous turn in this session was interrupted (the process running it stopped) "
    "before it finished: check the state of the files before you go on.]\n\n"
)
REPEAT_NOTE = (
    "Not run again: you already called {name} with these arguments in this turn, and its "
    "result is above. Use it, do something else, or call finish."
)
EVIDENCE_CHARS = 1500
SUMMARY_PROMPT = (
    "You have to stop now: {reason}. Without calling any tool, tell the user in a few "
    "sentences what you did, what you found (name the files), and what is left to do."
)


class Step(Protocol):
    def __call__(self, run: TurnRun) -> Step | None: ...


@dataclass(frozen=True)
class PrepareTurn:
    message: str

    def __call__(self, run: TurnRun) -> Step | None:
        interrupted = bool(recover_interrupted(run.port))
        state = run.port.state()
        interrupted = interrupted or state.last_turn_status == "interrupted"
        history = history_since(run.port, state.compacted_through)
        run.message = self.message
        opening = compaction_opening(run.port, state.compacted_through)
        said = (INTERRUPTED_NOTE if interrupted else "") + self.message
        messages: list[Message] = [*opening, *(m for _, m in history), UserTurn(text=said)]
        run.conversation = Conversation(messages)
        started = TurnStarted(turn_id=run.turn_id, model=run.model.name, mode=run.settings.mode)
        run.port.record_many(
            [(started, "system"), (UserMessage(text=self.message, turn_id=run.turn_id), "user")]
        )
        run.opened = True
        run.system = system_prompt(run.port.brief(), budget_tokens=run.settings.context_tokens // 4)
        if needs_compaction(run):
            compact(run, history)
        return CallModel()


@dataclass(frozen=True)
class CallModel:
    def __call__(self, run: TurnRun) -> Step | None:
        if run.cancel.is_set():
            return Finish("cancelled")
        if run.steps >= run.settings.limits.max_steps:
            return Summarize("step_limit", f"the step limit ({run.steps} steps) is reached")
        over = run.over_budget()
        if over:
            return Summarize("budget", over)
        run.steps += 1
        if run.hooks.on_step:
            run.hooks.on_step(run.steps)
        request = _request(run)
        try:
            timed = stream(run, request)
        except Cancelled:
            return Finish("cancelled")
        except ProviderError as exc:
            return Finish("failed", exc.message)
        record_response(run, request, timed, "step")
        response = timed.response
        run.conversation.append(response.as_turn())
        if not response.tool_calls:
            return Finish("completed")
        return RunTools(tuple(response.tool_calls))


def _request(run: TurnRun) -> ModelRequest:
    budget = run.settings.context_tokens - run.settings.context_tokens // 4
    return ModelRequest(
        system=run.system,
        messages=run.conversation.fitted(budget),
        tools=_tools(run.settings),
        tool_choice="required" if run.settings.first_step_tool and run.steps == 1 else "auto",
        max_tokens=run.settings.max_output_tokens,
    )


def _tools(settings: TurnSettings) -> list[ToolSpec]:
    if settings.tools is None:
        return list(BUILTIN_SPECS)
    return [spec for spec in BUILTIN_SPECS if spec.name in settings.tools]


@dataclass(frozen=True)
class RunTools:
    calls: tuple[ToolCallPart, ...]

    def __call__(self, run: TurnRun) -> Step | None:
        summary: str | None = None
        for index, call in enumerate(self.calls):
            if run.cancel.is_set():
                _skip_calls(run, self.calls[index:], "not run: the user cancelled the turn")
                return Finish("cancelled")
            repeats = _repeats(run, call)
            if repeats >= run.settings.stuck_repeats:
                _skip_calls(run, self.calls[index:], "not run: the same call again")
                evidence = f"{call.name} called {repeats + 1} times with the same arguments"
                return Summarize("stuck", evidence)
            output, is_error = _answer(run, call, repeats)
            _result(run, call, output, is_error)
            if call.name == "finish" and not is_error:
                summary = output
        if run.cancel.is_set():
            return Finish("cancelled")
        if summary is not None:
            return Finish("completed", summary=summary)
        return CallModel()


def _repeats(run: TurnRun, call: ToolCallPart) -> int:
    """How many times this very call was made before in the turn (counting this one)."""
    key = signature(call.name, call.arguments)
    run.repeats[key] += 1
    return run.repeats[key] - 1


def _answer(run: TurnRun, call: ToolCallPart, repeats: int) -> tuple[str, bool]:
    if repeats:
        return REPEAT_NOTE.format(name=call.name), True
    return execute_call(run, call)


def _result(run: TurnRun, call: ToolCallPart, output: str, is_error: bool) -> None:
    if not is_error and call.name != "finish":
        run.last_result = (call.name, output)
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


def _skip_calls(run: TurnRun, calls: tuple[ToolCallPart, ...], why: str) -> None:
    for call in calls:
        _result(run, call, why, True)


@dataclass(frozen=True)
class Summarize:
    """The turn must stop: one last request without tools, for what was done and what is
    left, recorded as the turn's answer. Should the model fail, the reason is the answer."""

    status: TurnStatus
    reason: str

    def __call__(self, run: TurnRun) -> Step | None:
        budget = run.settings.context_tokens - run.settings.context_tokens // 4
        messages = [*run.conversation.fitted(budget), UserTurn(text=self._prompt())]
        request = ModelRequest(
            system=run.system, messages=messages, max_tokens=run.settings.max_output_tokens
        )
        evidence = run.settings.evidence_in_summary and run.last_result is not None
        try:
            timed = stream(run, request, live=not evidence)
        except (ProviderError, Cancelled):
            return Finish(self.status, self.reason, summary=self._closing(run, ""))
        said = _prose(timed.response.text)
        if said and not evidence:
            record_response(run, request, timed, "summary")
            return Finish(self.status, self.reason)
        record_response(run, request, timed.without_text(), "summary")
        return Finish(self.status, self.reason, summary=self._closing(run, said))

    def _prompt(self) -> str:
        return SUMMARY_PROMPT.format(reason=self.reason)

    def _closing(self, run: TurnRun, said: str) -> str:
        """The answer the harness gives: the model's summary (if any), then the evidence."""
        parts = [said or f"I stopped: {self.reason}."]
        if run.settings.evidence_in_summary and run.last_result is not None:
            name, output = run.last_result
            parts.append(f"What {name} returned last:\n{clip(output, EVIDENCE_CHARS)}")
        return "\n\n".join(parts)


def _prose(text: str) -> str:
    """The text, unless it is no answer at all: empty, or a JSON object (a tool call written
    out when no tool could be called)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            json.loads(text)
        except ValueError:
            return text
        return ""
    return text


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
        finished = _turn_finished(run, self.status, self.detail)
        run.record(finished, "system")
        duration = finished.duration_ms
        run.result = TurnResult(
            run.turn_id,
            self.status,
            run.steps,
            run.text,
            run.usage,
            saved,
            self.detail,
            cost_usd=run.cost_usd,
            duration_ms=duration,
        )
        return None


def _turn_finished(run: TurnRun, status: TurnStatus, detail: str) -> TurnFinished:
    return TurnFinished(
        turn_id=run.turn_id,
        status=status,
        steps=run.steps,
        input_tokens=run.usage.input_tokens,
        output_tokens=run.usage.output_tokens,
        cached_tokens=run.usage.cached_tokens,
        cost_usd=run.cost_usd,
        duration_ms=run.elapsed_ms(),
        detail=detail,
    )


_DOING = {
    PrepareTurn: "preparing the turn",
    CallModel: "calling the model",
    RunTools: "running a tool",
    Summarize: "asking for a summary",
    Finish: "taking the turn's checkpoint",
}


def _close_raised(run: TurnRun, step: Step, exc: BaseException) -> None:
    """End the turn in the log when a step raised (see the module doc). If even that cannot
    be recorded (the database is what failed), the next turn closes it as interrupted."""
    if not run.opened or run.result is not None:
        return
    cancelled = isinstance(exc, (Cancelled, KeyboardInterrupt))
    reason = exc.message if isinstance(exc, BranchworkError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        reason = "stopped by the user (Ctrl-C)"
    doing = _DOING.get(type(step), "running the turn")
    said = f"stopped while {doing}: {reason}" if cancelled else f"{doing} failed: {reason}"
    finished = _turn_finished(run, "cancelled" if cancelled else "failed", " ".join(said.split()))
    with contextlib.suppress(Exception):
        close_raised_turn(run.port, finished)


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
    step: Step | None = PrepareTurn(message)
    try:
        while step is not None:
            step = step(run)
    except BaseException as exc:
        assert step is not None
        _close_raised(run, step, exc)
        raise
    finally:
        if stop_observing:
            stop_observing()
    assert run.result is not None
    return run.result
