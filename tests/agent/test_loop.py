"""The agent loop, driven by the scripted model against real repos, files and commands."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from branchwork import Session, TurnInProgress, Workspace
from branchwork.agent import Answer, FixedApprover, TurnHooks
from branchwork.domain.events import ApprovalRequested, CommandFinished, ToolResult
from branchwork.domain.messages import ModelRequest, ToolResultTurn, UserTurn
from branchwork.providers import ScriptedModel, ScriptedReply
from branchwork.store import Store
from tests.sandbox.procs import is_running

call = ScriptedReply.call


def _results(ws: Workspace, session: Session) -> list[ToolResult]:
    return [e.payload for e in ws.events(session, kinds=["tool_result"])]  # type: ignore[misc]


def test_multi_step_tool_use_reads_edits_runs_and_checkpoints(
    ws: Workspace, session: Session
) -> None:
    model = ScriptedModel(
        [
            call("read_file", path="app.py"),
            call("edit_file", path="app.py", old_text="hello", new_text="bonjour"),
            call("run_command", command="python app.py"),
            "Changed the greeting; it prints bonjour.",
        ]
    )
    result = ws.send_message(session, "say bonjour", model=model, mode="autopilot")
    model.assert_complete()
    assert result.status == "completed" and result.steps == 4
    assert result.text == "Changed the greeting; it prints bonjour."
    assert (Path(session.worktree) / "app.py").read_text() == "print('bonjour')\n"
    outputs = [r.output for r in _results(ws, session)]
    assert outputs[0] == "print('hello')\n"
    assert "bonjour" in outputs[2] and "exit code: 0" in outputs[2]
    assert result.checkpoint is not None and result.checkpoint.files == ["app.py"]
    kinds = [e.kind for e in ws.events(session)]
    assert kinds[-1] == "turn_finished" and kinds[-2] == "checkpoint"
    last_request = model.requests[-1]
    assert isinstance(last_request.messages[0], UserTurn)
    assert [m.role for m in last_request.messages].count("tool") == 3


def test_tool_errors_go_back_to_the_model_and_the_loop_continues(
    ws: Workspace, session: Session
) -> None:
    model = ScriptedModel(
        [
            call("read_file", path="missing.py"),
            call("edit_file", path="app.py", old_text="absent", new_text="x"),
            call("read_file", path="../../etc/passwd"),
            call("no_such_tool"),
            call("read_file", start_line="not a number"),
            "I could not do it.",
        ]
    )
    result = ws.send_message(session, "try things", model=model, mode="autopilot")
    assert result.status == "completed"
    results = _results(ws, session)
    assert all(r.is_error for r in results)
    assert "does not exist" in results[0].output
    assert "not found" in results[1].output
    assert "worktree" in results[2].output
    assert "unknown tool 'no_such_tool'" in results[3].output
    assert "invalid arguments for read_file" in results[4].output
    seen = model.requests[-1].messages[-1]
    assert isinstance(seen, ToolResultTurn) and seen.is_error


def test_step_limit_ends_the_turn_with_a_summary_answer(ws: Workspace, session: Session) -> None:
    steps = [call("read_file", path=p) for p in ("app.py", "README.md", "app.py")]
    steps[2] = call("list_files", path=".")
    model = ScriptedModel([*steps, "I read app.py and README.md; the fix is left to do."])
    result = ws.send_message(session, "loop forever", model=model, max_steps=3)
    assert result.status == "step_limit" and result.steps == 3
    assert "step limit" in result.detail
    assert result.text == "I read app.py and README.md; the fix is left to do."
    summary_request = model.requests[-1]
    assert summary_request.tools == [] and "stop now" in summary_request.messages[-1].text
    finished = ws.events(session, kinds=["turn_finished"])[-1]
    assert finished.payload.model_dump()["status"] == "step_limit"
    answers = ws.events(session, kinds=["agent_message"])
    assert answers[-1].payload.model_dump()["text"] == result.text
    model.assert_complete()


def test_cancel_in_the_middle_of_a_command_kills_it_and_ends_cancelled(
    ws: Workspace, session: Session, tmp_path: Path
) -> None:
    ws.configure_project(session.project_id, sandbox="local")  # host pids, readable from here
    pid_file = tmp_path / "pid"
    model = ScriptedModel([call("run_command", command=f"echo $$ > {pid_file}; sleep 60")])
    cancel = threading.Event()
    started = threading.Event()
    hooks = TurnHooks(on_event=lambda e: started.set() if e.kind == "command_started" else None)
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            ws.send_message(
                session, "run it", model=model, mode="autopilot", cancel=cancel, hooks=hooks
            )
        )
    )
    worker.start()
    assert started.wait(10)
    time.sleep(0.3)
    cancel.set()
    worker.join(15)
    assert not worker.is_alive()
    result = outcome[0]
    assert getattr(result, "status", None) == "cancelled"
    finished = ws.events(session, kinds=["command_finished"])[-1].payload
    assert isinstance(finished, CommandFinished) and finished.status == "cancelled"
    assert not is_running(int(pid_file.read_text()))


def test_cancel_while_the_model_is_answering(ws: Workspace, session: Session) -> None:
    model = ScriptedModel([ScriptedReply(text="slow", delay_s=30)])
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    result = ws.send_message(session, "hi", model=model, cancel=cancel)
    assert result.status == "cancelled"


def test_second_concurrent_turn_is_refused(store: Store, ws: Workspace, session: Session) -> None:
    slow = ScriptedModel([ScriptedReply(text="done", delay_s=30)])
    cancel = threading.Event()
    worker = threading.Thread(
        target=lambda: ws.send_message(session, "one", model=slow, cancel=cancel)
    )
    worker.start()
    for _ in range(100):
        if store.get_lease(session.id):
            break
        time.sleep(0.05)
    with pytest.raises(TurnInProgress, match="busy with another turn"):
        ws.send_message(session, "two", model=ScriptedModel(["never"]))
    cancel.set()
    worker.join(10)
    assert ws.send_message(session, "three", model=ScriptedModel(["ok"])).status == "completed"


def _requests(ws: Workspace, session: Session) -> list[ApprovalRequested]:
    return [e.payload for e in ws.events(session, kinds=["approval_requested"])]  # type: ignore[misc]


def test_ask_mode_asks_before_a_write_and_a_denied_write_is_not_made(
    ws: Workspace, session: Session
) -> None:
    model = ScriptedModel([call("write_file", path="new.txt", content="x\n"), "ok"])
    result = ws.send_message(
        session, "write", model=model, mode="ask", approver=FixedApprover(False, "not now")
    )
    assert result.status == "completed"
    assert not (Path(session.worktree) / "new.txt").exists()
    [request] = _requests(ws, session)
    assert request.action == "write_file" and "+x" in request.detail
    denial = _results(ws, session)[0]
    assert denial.is_error and "denied" in denial.output and "not now" in denial.output
    assert ws.events(session, kinds=["file_written"]) == []


def test_auto_edit_applies_edits_and_asks_for_commands(ws: Workspace, session: Session) -> None:
    asked: list[str] = []

    def approver(request: ApprovalRequested) -> Answer:
        asked.append(request.action)
        return Answer(True)

    model = ScriptedModel(
        [
            call("write_file", path="a.txt", content="a\n"),
            call("run_command", command="cat a.txt"),
            "done",
        ]
    )
    ws.send_message(session, "go", model=model, mode="auto-edit", approver=approver)
    assert asked == ["run_command"]
    assert "a\n" in _results(ws, session)[1].output


def test_autopilot_runs_commands_but_dangerous_ones_still_ask(
    ws: Workspace, session: Session
) -> None:
    model = ScriptedModel(
        [
            call("run_command", command="echo fine"),
            call("run_command", command="git push origin main"),
            "done",
        ]
    )
    ws.send_message(session, "go", model=model, mode="autopilot")
    [request] = _requests(ws, session)
    assert request.summary == "run: git push origin main"
    started = [
        e.payload.model_dump()["command"] for e in ws.events(session, kinds=["command_started"])
    ]
    assert started == ["echo fine"]
    assert "denied" in _results(ws, session)[1].output


def test_todo_checklist_is_kept_as_events(ws: Workspace, session: Session) -> None:
    model = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[
                    {"name": "todo", "arguments": {"action": "add", "text": "write tests"}},  # type: ignore[list-item]
                    {"name": "todo", "arguments": {"action": "add", "text": "fix bug"}},  # type: ignore[list-item]
                ]
            ),
            call("todo", action="done", id="1"),
            call("todo", action="list"),
            "planned",
        ]
    )
    ws.send_message(session, "plan", model=model)
    todos = ws.session_state(session).todos
    assert [(t.text, t.done) for t in todos] == [("write tests", True), ("fix bug", False)]
    assert _results(ws, session)[-1].output == "1. [x] write tests\n2. [ ] fix bug"


def test_finish_tool_ends_the_turn_with_its_summary(ws: Workspace, session: Session) -> None:
    model = ScriptedModel([call("finish", summary="All done.")])
    result = ws.send_message(session, "wrap up", model=model)
    assert result.status == "completed" and result.text == "All done."
    assert (
        ws.events(session, kinds=["agent_message"])[-1].payload.model_dump()["text"] == "All done."
    )


def test_provider_failure_ends_the_turn_as_failed_and_keeps_history(
    ws: Workspace, session: Session
) -> None:
    from branchwork.domain.errors import ProviderError

    model = ScriptedModel([ProviderError("rate limited; retry later", status=429, retryable=True)])
    result = ws.send_message(session, "hi", model=model)
    assert result.status == "failed" and "rate limited" in result.detail
    ok = ws.send_message(session, "again", model=ScriptedModel(["fine"]))
    assert ok.status == "completed"


def test_turn_records_model_and_token_usage(ws: Workspace, session: Session) -> None:
    model = ScriptedModel(
        [ScriptedReply(text="hi", usage={"input_tokens": 11, "output_tokens": 5})]
    )  # type: ignore[arg-type]
    ws.send_message(session, "hi", model=model)
    started = ws.events(session, kinds=["turn_started"])[-1].payload.model_dump()
    finished = ws.events(session, kinds=["turn_finished"])[-1].payload.model_dump()
    assert started["model"] == "scripted"
    assert (finished["input_tokens"], finished["output_tokens"]) == (11, 5)


def test_system_prompt_carries_readme_and_file_tree(ws: Workspace, session: Session) -> None:
    model = ScriptedModel(["ok"])
    ws.send_message(session, "hi", model=model)
    request: ModelRequest = model.requests[0]
    assert "# demo" in request.system and "app.py" in request.system
    assert {t.name for t in request.tools} >= {"read_file", "edit_file", "run_command", "finish"}
