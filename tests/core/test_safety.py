"""Security and robustness: path escapes, secrets, timeouts, output caps."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from branchwork import InvalidPath, Workspace
from branchwork.domain.events import CommandFinished
from tests.conftest import git
from tests.sandbox.procs import is_running

SECRET = "sk-live-9f8e7d6c5b4a"


@pytest.mark.parametrize(
    "path", ["../outside.txt", "/etc/passwd", ".git/config", "link/escape.txt", "sub/../../x"]
)
def test_path_escapes_are_refused_and_never_recorded(
    ws: Workspace, repo: Path, tmp_path: Path, path: str
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    os.symlink(outside, Path(session.worktree) / "link")
    before = len(ws.events(session))
    with pytest.raises(InvalidPath):
        ws.write_file(session, path, "pwned\n")
    with pytest.raises(InvalidPath):
        ws.read_file(session, path)
    assert len(ws.events(session)) == before
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "outside.txt").exists()


def test_secret_never_reaches_the_database_or_blobs(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "API_TOKEN", SECRET, secret=True)
    session = ws.new_session(project)
    outcome = ws.run(session, "echo token=$API_TOKEN; printf '%s' \"$API_TOKEN\" >&2")
    assert "[secret:API_TOKEN]" in ws.command_output(outcome.finished)
    ws.write_file(session, "config.txt", f"token = {SECRET}\n")
    ws.run(session, f"echo {SECRET} > typed.txt")
    log = git(Path(session.worktree), "log", "--format=%B")
    assert SECRET not in log and "[secret:API_TOKEN]" in log
    ws.run(session, ["python3", "-c", f"print('{SECRET}' * 3000)"])
    for event in ws.events(session):
        assert SECRET not in event.model_dump_json()
    ws.close()
    for path in ws.settings.home.glob("branchwork.db*"):
        assert SECRET.encode() not in path.read_bytes(), path


def test_command_killed_by_timeout_leaves_nothing_running(
    ws: Workspace, repo: Path, tmp_path: Path
) -> None:
    project = ws.add_project(repo)
    ws.configure_project(project, sandbox="local")  # host pids, readable from here
    session = ws.new_session(project)
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    outcome = ws.run(session, f"sleep 60 & echo $! > {pid_file}; sleep 60", timeout=1)
    assert time.monotonic() - started < 10
    finished = ws.events(session, kinds=["command_finished"])[-1].payload
    assert isinstance(finished, CommandFinished)
    assert finished.status == "timeout" and outcome.finished.status == "timeout"
    child = int(pid_file.read_text())
    assert not is_running(child)


def test_failed_command_keeps_exit_code_and_session(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    outcome = ws.run(session, "echo oops; exit 7")
    assert outcome.finished.status == "failed" and outcome.finished.exit_code == 7
    assert ws.session(session.id).status == "active"
    missing = ws.run(session, ["definitely-not-a-program-xyz"])
    assert missing.finished.status == "error"
    assert "definitely-not-a-program-xyz" in missing.finished.output_head


def test_large_output_keeps_head_and_tail_in_event_and_all_in_blob(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    script = "for i in $(seq 1 20000); do echo line-$i; done"
    outcome = ws.run(session, script)
    finished = outcome.finished
    assert finished.truncated
    assert finished.output_head.startswith("line-1\n")
    assert finished.output_tail.endswith("line-20000\n")
    full = ws.command_output(finished)
    assert full.count("\n") == 20000
    recorded = "".join(
        e.payload.model_dump()["text"] for e in ws.events(session, kinds=["command_output"])
    )
    assert len(recorded) <= ws.settings.output_cap


def test_command_that_changes_files_is_checkpointed(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    outcome = ws.run(session, "echo generated > gen.txt")
    assert outcome.checkpoint is not None and outcome.checkpoint.files == ["gen.txt"]
    assert ws.run(session, "true").checkpoint is None


def test_model_keys_never_reach_commands_and_secret_looking_env_is_redacted(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-do-not-leak-1")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_ambient_token_value")
    with Workspace(home=tmp_path / "h2") as ws:
        project = ws.add_project(repo)
        session = ws.new_session(project)
        out = ws.command_output(ws.run(session, "env").finished)
        assert "sk-openai-do-not-leak-1" not in out and "OPENAI_API_KEY" not in out
        assert "GITHUB_TOKEN=[secret:GITHUB_TOKEN]" in out
        for event in ws.events(session):
            assert "ghp_ambient_token_value" not in event.model_dump_json()


def test_a_secret_in_a_session_title_is_redacted_from_title_and_branch(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "TOKEN", "hunter2-secret", secret=True)
    session = ws.new_session(project, title="rotate hunter2-secret now")
    assert "hunter2" not in session.title and "hunter2" not in session.branch
    assert "[secret:TOKEN]" in session.title


def test_setting_a_secret_again_without_the_flag_keeps_it_secret(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "TOKEN", "first-value", secret=True)
    project = ws.set_env(project, "TOKEN", "second-value")
    assert "TOKEN" in project.secret_names and "TOKEN" not in project.env
    ws.close()
    db = (ws.settings.home / "branchwork.db").read_bytes()
    assert b"second-value" not in db
