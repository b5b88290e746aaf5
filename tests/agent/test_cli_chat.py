"""`branchwork chat` and `ask` as a user runs them, driven by a scripted model file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import BIN, bw


def _run(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return bw(*args, cwd=cwd, stdin=stdin, check=False)


def _script(tmp_path: Path, replies: list[object]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def test_chat_creates_a_session_streams_and_understands_slash_commands(
    repo: Path, tmp_path: Path
) -> None:
    _run(["project", "add", "."], repo)
    model = _script(
        tmp_path,
        [
            {
                "tool_calls": [
                    {"name": "write_file", "arguments": {"path": "notes.md", "content": "n\n"}}
                ]
            },
            "I wrote notes.md.",
        ],
    )
    stdin = "please write notes\n/diff\n/mode autopilot\n/log\n/exit\n"
    proc = _run(["chat", "--model", model, "--yes"], repo, stdin)
    assert proc.returncode == 0, proc.stderr
    assert "I wrote notes.md." in proc.stdout
    assert "+++ b/notes.md" in proc.stdout
    assert "mode: autopilot" in proc.stdout
    sessions = json.loads(_run(["session", "list", "--json"], repo).stdout)
    assert [s["title"] for s in sessions] == ["please write notes"]


def test_ask_json_prints_the_turns_events_and_refuses_unapproved_actions(
    repo: Path, tmp_path: Path
) -> None:
    _run(["project", "add", "."], repo)
    model = _script(
        tmp_path,
        [
            {"tool_calls": [{"name": "run_command", "arguments": {"command": "touch ran.txt"}}]},
            "ok",
        ],
    )
    proc = _run(
        ["ask", "--new", "run something", "--model", model, "--mode", "ask", "--json"], repo
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_finished"
    decided = next(e for e in events if e["kind"] == "approval_decided")
    assert decided["payload"]["approved"] is False and "--yes" in decided["payload"]["reason"]
    assert "command_started" not in kinds
    session = json.loads(_run(["session", "show", "--json"], repo).stdout)
    assert not (Path(session["worktree"]) / "ran.txt").exists()


def test_ask_without_a_configured_model_explains_how_to_configure_one(
    repo: Path, tmp_path: Path
) -> None:
    _run(["project", "add", "."], repo)
    proc = _run(["ask", "--new", "hi", "--model", "nosuch:model"], repo)
    assert proc.returncode == 2
    assert "unknown model provider 'nosuch'" in proc.stderr


def test_session_mode_overrides_the_project_and_turn_mode_overrides_both(
    repo: Path, tmp_path: Path
) -> None:
    _run(["project", "add", "."], repo)
    _run(["project", "config", "--mode", "ask"], repo)
    created = json.loads(_run(["session", "new", "--mode", "autopilot", "--json"], repo).stdout)
    assert created["mode"] == "autopilot"
    model = _script(
        tmp_path,
        [
            {"tool_calls": [{"name": "run_command", "arguments": {"command": "echo ran"}}]},
            "ok",
        ],
    )
    events = [
        json.loads(x)
        for x in _run(["ask", "go", "--model", model, "--json"], repo).stdout.splitlines()
    ]
    assert events[0]["payload"]["mode"] == "autopilot"
    assert any(e["kind"] == "command_started" for e in events)
    shown = _run(["session", "config", "--mode", "ask", "--json"], repo).stdout
    assert json.loads(shown)["mode"] == "ask"
    events = [
        json.loads(x)
        for x in _run(
            ["ask", "go", "--model", model, "--mode", "autopilot", "--json"], repo
        ).stdout.splitlines()
    ]
    assert events[0]["payload"]["mode"] == "autopilot"


def test_chat_asks_before_a_command_and_runs_it_only_when_approved(
    repo: Path, tmp_path: Path
) -> None:
    _run(["project", "add", "."], repo)
    model = _script(
        tmp_path,
        [
            {"tool_calls": [{"name": "run_command", "arguments": {"command": "touch yes.txt"}}]},
            {"tool_calls": [{"name": "run_command", "arguments": {"command": "touch no.txt"}}]},
            "done",
        ],
    )
    proc = _run(["chat", "--model", model, "--mode", "auto-edit"], repo, "go\ny\nn\n/exit\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("allow this? [y/N]") == 2
    worktree = Path(json.loads(_run(["session", "show", "--json"], repo).stdout)["worktree"])
    assert (worktree / "yes.txt").exists() and not (worktree / "no.txt").exists()


def test_ctrl_c_cancels_the_running_turn_and_kills_its_command(repo: Path, tmp_path: Path) -> None:
    import signal
    import time

    from branchwork import Workspace

    _run(["project", "add", "."], repo)
    model = _script(
        tmp_path,
        [
            {"tool_calls": [{"name": "run_command", "arguments": {"command": "sleep 60"}}]},
        ],
    )
    proc = subprocess.Popen(
        [str(BIN / "branchwork"), "ask", "--new", "wait", "--model", model, "--mode", "autopilot"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with Workspace() as ws:
        for _ in range(200):
            sessions = ws.sessions(all_projects=True)
            if sessions and ws.events(sessions[0], kinds=["command_started"]):
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        finished = ws.events(sessions[0], kinds=["command_finished", "turn_finished"])
    assert [e.payload.model_dump()["status"] for e in finished] == ["cancelled", "cancelled"]
