"""Executing one tool call: parse, apply the action policy (asking when it says so), run."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from branchwork.agent.policy import decide
from branchwork.agent.tools import TOOLS_BY_NAME, Tool, ToolFailure
from branchwork.domain.errors import Cancelled, InfrastructureError, UserError
from branchwork.domain.events import ApprovalDecided, ApprovalRequested
from branchwork.domain.ids import new_id
from branchwork.domain.messages import ToolCallPart

if TYPE_CHECKING:
    from branchwork.agent.turn import TurnRun

_log = logging.getLogger(__name__)


def execute_call(run: TurnRun, call: ToolCallPart) -> tuple[str, bool]:
    """The tool's output and whether it is an error; errors go back to the model."""
    try:
        tool = _lookup(call, run.settings.tools)
        args = tool.parse(call.arguments)
        if tool.guarded and not _permitted(run, tool, args, call):
            return _denied_message(run), True
        return tool.handler(run.tool_env(), args), False
    except Cancelled:
        return "cancelled by the user", True
    except ToolFailure as exc:
        return str(exc), True
    except (UserError, InfrastructureError) as exc:
        return exc.message, True
    except Exception as exc:  # a bug or an OS error in a tool must not end the turn
        _log.exception("tool %s failed", call.name)
        return f"internal error in {call.name}: {type(exc).__name__}: {exc}", True


def _lookup(call: ToolCallPart, offered: tuple[str, ...] | None = None) -> Tool:
    if call.raw_arguments is not None:
        raise ToolFailure(
            f"the arguments of {call.name} were not a JSON object: {call.raw_arguments[:200]!r}"
        )
    tool = TOOLS_BY_NAME.get(call.name)
    names = offered if offered is not None else tuple(TOOLS_BY_NAME)
    if tool is None or tool.name not in names:
        raise ToolFailure(f"unknown tool {call.name!r}; available: {', '.join(names)}")
    return tool


def _permitted(run: TurnRun, tool: Tool, args: Any, call: ToolCallPart) -> bool:
    assert tool.guarded is not None
    command = getattr(args, "command", "") or ""
    decision = decide(
        run.settings.mode,
        tool.guarded,
        command=command,
        dangerous_patterns=run.settings.dangerous_patterns,
    )
    if decision == "allow":
        return True
    summary, detail = _describe(run, tool, args)
    request = ApprovalRequested(
        request_id=new_id(),
        action=tool.guarded,
        summary=summary,
        detail=detail,
        turn_id=run.turn_id,
        call_id=call.call_id,
    )
    run.record(request, "agent")
    answer = run.approver(request)
    run.record(
        ApprovalDecided(
            request_id=request.request_id, approved=answer.approved, reason=answer.reason
        ),
        answer.by,
    )
    run.last_denial = answer.reason
    return answer.approved


def _describe(run: TurnRun, tool: Tool, args: Any) -> tuple[str, str]:
    port = run.port
    if tool.name == "write_file":
        return f"write {args.path}", port.preview_write(args.path, args.content)
    if tool.name == "edit_file":
        return f"edit {args.path}", port.preview_edit(args.path, args.old_text, args.new_text)
    return f"run: {args.command}", args.command


def _denied_message(run: TurnRun) -> str:
    reason = f" ({run.last_denial})" if run.last_denial else ""
    return (
        f"not done: the user denied this action{reason}. Do not retry it as is; choose "
        "another approach or ask the user."
    )
