"""Resume across processes: the conversation rebuilt from the log, and crashes mid-turn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from branchwork import Session, Workspace
from branchwork.domain.events import ToolCall, TurnFinished, TurnStarted, UserMessage
from branchwork.domain.messages import AssistantTurn, ToolResultTurn, UserTurn
from branchwork.providers import ScriptedModel, ScriptedReply
from branchwork.store import Store

BIN = Path(sys.executable).parent


def _script(tmp_path: Path, name: str, replies: list[object]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(replies))
    return path


def _ask(session: Session, script: Path, message: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "branchwork"),
            "ask",
            session.id,
            message,
            "--model",
            f"scripted:{script}",
            "--mode",
            "autopilot",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_a_fresh_process_continues_the_conversation(
    ws: Workspace, session: Session, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "first",
        [
            {"tool_calls": [{"name": "read_file", "arguments": {"path": "app.py"}}]},
            "It prints hello.",
        ],
    )
    proc = _ask(session, script, "what does app.py print?")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    model = ScriptedModel(["You asked what app.py prints."])
    with Workspace() as fresh:
        fresh.send_message(session.id, "what did I ask?", model=model)
    messages = model.requests[0].messages
    assert isinstance(messages[0], UserTurn) and messages[0].text == "what does app.py print?"
    assert isinstance(messages[1], AssistantTurn) and messages[1].tool_calls[0].name == "read_file"
    assert isinstance(messages[2], ToolResultTurn) and messages[2].content == "print('hello')\n"
    assert isinstance(messages[3], AssistantTurn) and messages[3].text == "It prints hello."
    assert isinstance(messages[4], UserTurn) and messages[4].text == "what did I ask?"


def test_a_crash_between_steps_shows_as_interrupted_and_the_next_turn_works(
    store: Store, ws: Workspace, session: Session, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "crash",
        [
            {
                "tool_calls": [
                    {"name": "write_file", "arguments": {"path": "half.txt", "content": "1"}}
                ]
            },
            {"text": "never said", "delay_s": 60},
        ],
    )
    proc = _ask(session, script, "start work")
    _wait_for(lambda: any(e.kind == "tool_result" for e in ws.events(session)))
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert store.get_lease(session.id) is not None
    result = ws.send_message(session, "carry on", model=ScriptedModel(["resumed"]))
    assert result.status == "completed"
    finished = [e.payload for e in ws.events(session, kinds=["turn_finished"])]
    assert [f.status for f in finished if isinstance(f, TurnFinished)] == [
        "interrupted",
        "completed",
    ]
    assert ws.events(session, kinds=["interrupted"])
    assert (Path(session.worktree) / "half.txt").read_text() == "1"
    assert store.get_lease(session.id) is None


def test_a_tool_call_left_open_by_a_crash_gets_an_interrupted_result(
    store: Store, ws: Workspace, session: Session
) -> None:
    started = TurnStarted(turn_id="T0", model="scripted", mode="autopilot")
    call = ToolCall(
        call_id="c0", name="run_command", arguments={"command": "sleep 100"}, turn_id="T0"
    )
    asked = UserMessage(text="run it", turn_id="T0")
    store.append(session.id, [(started, "system"), (asked, "user"), (call, "agent")])
    model = ScriptedModel(["ok"])
    ws.send_message(session, "next", model=model)
    results = ws.events(session, kinds=["tool_result"])
    assert results[0].payload.model_dump()["output"].startswith("interrupted")
    call_and_result = model.requests[0].messages[1:3]
    assert isinstance(call_and_result[1], ToolResultTurn) and call_and_result[1].is_error


def test_sub_tasks_survive_a_resume_in_a_new_process(
    ws: Workspace, session: Session, tmp_path: Path
) -> None:
    script = _script(
        tmp_path,
        "todos",
        [
            {
                "tool_calls": [
                    {"name": "todo", "arguments": {"action": "add", "text": "step one"}},
                    {"name": "todo", "arguments": {"action": "add", "text": "step two"}},
                ]
            },
            "planned",
        ],
    )
    proc = _ask(session, script, "plan it")
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    shown = subprocess.run(
        [str(BIN / "branchwork"), "session", "show", session.id, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    todos = json.loads(shown.stdout)["state"]["todos"]
    assert [t["text"] for t in todos] == ["step one", "step two"]
    model = ScriptedModel([ScriptedReply.call("todo", action="done", id="2"), "done"])
    with Workspace() as fresh:
        fresh.send_message(session.id, "finish step two", model=model)
        state = fresh.session_state(session.id)
    assert [(t.text, t.done) for t in state.todos] == [("step one", False), ("step two", True)]


def _wait_for(condition: object, timeout: float = 30) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_turn_running_in_another_process_refuses_a_second_one(
    store: Store, ws: Workspace, session: Session, tmp_path: Path
) -> None:
    import pytest

    from branchwork import TurnInProgress

    script = _script(tmp_path, "slow", [{"text": "slow", "delay_s": 60}])
    proc = _ask(session, script, "take your time")
    _wait_for(lambda: store.get_lease(session.id) is not None)
    with pytest.raises(TurnInProgress, match=f"process {proc.pid}"):
        ws.send_message(session, "me too", model=ScriptedModel(["no"]))
    proc.terminate()
    proc.communicate(timeout=30)


def test_cancel_turn_stops_a_turn_running_in_another_process(
    ws: Workspace, session: Session, tmp_path: Path
) -> None:
    script = _script(tmp_path, "long", [
        {"tool_calls": [{"name": "run_command", "arguments": {"command": "sleep 60"}}]},
    ])  # fmt: skip
    proc = _ask(session, script, "wait a minute")
    _wait_for(lambda: bool(ws.events(session, kinds=["command_started"])))
    assert ws.cancel_turn(session) is True
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    statuses = [
        e.payload.model_dump()["status"]
        for e in ws.events(session, kinds=["command_finished", "turn_finished"])
    ]
    assert statuses == ["cancelled", "cancelled"]
    assert ws.cancel_turn(session) is False
