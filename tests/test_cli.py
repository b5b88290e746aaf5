"""The CLI as a user runs it: real subprocesses, the README walkthrough, --json, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, bw, git

ROOT = Path(__file__).resolve().parents[1]


def _walkthrough() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_walkthrough_runs_as_written(repo: Path) -> None:
    lines = _walkthrough()
    assert 8 <= len(lines) <= 12
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    for line in lines:
        proc = subprocess.run(
            ["bash", "-c", line], cwd=repo, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
    assert git(repo, "status", "--porcelain") == ""


def test_json_output_is_json_only_with_ids(repo: Path) -> None:
    project = json.loads(bw("project", "add", ".", "--json", cwd=repo).stdout)
    assert project["id"] and project["main_branch"] == "main"
    session = json.loads(bw("session", "new", "--title", "j", "--json", cwd=repo).stdout)
    assert session["id"] and session["branch"].startswith("bw/")
    run = json.loads(bw("run", "--json", "--", "echo", "hi", cwd=repo).stdout)
    assert run["id"] and run["status"] == "ok" and run["output_head"] == "hi\n"
    listed = json.loads(bw("session", "list", "--json", cwd=repo).stdout)
    assert [s["id"] for s in listed] == [session["id"]]
    lines = bw("log", "--json", cwd=repo).stdout.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds[:3] == ["session_created", "command_started", "command_output"]
    shown = json.loads(bw("session", "show", "--json", cwd=repo).stdout)
    assert shown["state"]["commands"] == 1


def test_run_exits_with_the_commands_exit_code_and_streams(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    proc = bw("run", "--", "echo streamed; exit 5", cwd=repo, check=False)
    assert proc.returncode == 5
    assert proc.stdout == "streamed\n"
    timed_out = bw("run", "--timeout", "0.5", "--", "sleep", "5", cwd=repo, check=False)
    assert timed_out.returncode == 124
    missing = bw("run", "--", "no-such-program-xyz", "arg", cwd=repo, check=False)
    assert missing.returncode == 127
    assert missing.stderr.startswith("error: Command not found: `no-such-program-xyz`"), missing


def test_errors_are_one_line_with_a_remedy_and_exit_code(tmp_path: Path) -> None:
    proc = bw("project", "add", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "git init" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = bw("session", "show", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "belongs to no project" in proc.stderr
    assert "session list" in proc.stderr


def test_write_reads_stdin_and_read_prints_the_file(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    bw("write", "dir/new.txt", cwd=repo, stdin="from stdin\n")
    assert bw("read", "dir/new.txt", cwd=repo).stdout == "from stdin\n"
    refused = bw("write", "../escape.txt", cwd=repo, stdin="x", check=False)
    assert refused.returncode == 2 and "worktree" in refused.stderr


def test_project_env_and_config_commands(repo: Path) -> None:
    bw("project", "add", ".", "--name", "demo", cwd=repo)
    bw("project", "env", "set", "TOKEN=abc123xyz", "--secret", cwd=repo)
    bw("project", "env", "set", "MODE=dev", cwd=repo)
    listed = json.loads(bw("project", "env", "list", "--json", cwd=repo).stdout)
    assert {e["key"]: e["value"] for e in listed} == {"MODE": "dev", "TOKEN": "********"}
    config = json.loads(
        bw("project", "config", "--setup", "true", "--copy", ".env", "--json", cwd=repo).stdout
    )
    assert config["setup"] == "true" and config["copy_files"] == [".env"]
    shown = bw("config", "--json", cwd=repo).stdout
    assert json.loads(shown)["branch_prefix"] == "bw/"


def test_settings_from_env_and_toml(repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "bw.toml"
    config.write_text('branch_prefix = "agents/"\ncommand_timeout = 42\n')
    env_before = dict(os.environ)
    try:
        os.environ["BRANCHWORK_CONFIG"] = str(config)
        os.environ["BRANCHWORK_COMMAND_TIMEOUT"] = "7"
        shown = json.loads(bw("config", "--json", cwd=repo).stdout)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    assert shown["branch_prefix"] == "agents/" and shown["command_timeout"] == 7.0
    os.environ["BRANCHWORK_COMMAND_TIMEOUT"] = "soon"
    try:
        bad = bw("config", cwd=repo, check=False)
    finally:
        del os.environ["BRANCHWORK_COMMAND_TIMEOUT"]
    assert bad.returncode == 2 and "BRANCHWORK_COMMAND_TIMEOUT" in bad.stderr


@pytest.mark.parametrize(
    "command", [["--help"], ["session", "--help"], ["project", "env", "--help"]]
)
def test_help_works(command: list[str], tmp_path: Path) -> None:
    assert re.search(r"Usage", bw(*command, cwd=tmp_path).stdout)


def test_log_follow_prints_events_appended_by_another_process(repo: Path) -> None:
    import time

    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    follower = subprocess.Popen(
        [str(BIN / "branchwork"), "log", "--follow", "--json"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        bw("run", "--", "echo", "followed", cwd=repo)
        time.sleep(1.5)
    finally:
        follower.terminate()
        out, _ = follower.communicate(timeout=10)
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds[0] == "session_created"
    assert kinds[1:4] == ["command_started", "command_output", "command_finished"]


def test_ctrl_c_during_run_stops_the_command_and_records_it_cancelled(repo: Path) -> None:
    import signal

    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    proc = subprocess.Popen(
        [str(BIN / "branchwork"), "run", "--", "echo ready; exec sleep 30"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"  # the command runs: Ctrl-C is ours to handle
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    lines = bw("log", "--json", "--kind", "command_finished", cwd=repo).stdout.splitlines()
    assert json.loads(lines[-1])["payload"]["status"] == "cancelled"


def test_markup_like_text_and_bad_input_never_give_a_traceback(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    bw("project", "env", "set", "ODD=[/]", cwd=repo)
    assert "ODD=[/]" in bw("project", "env", "list", cwd=repo).stdout
    for args, stdin in (
        (["read", "[/]"], None),
        (["write", "app.py/x"], "x"),
        (["write", "dir/"], "x"),
        (["write", "app.py"], None),
    ):
        data = "caf\udce9" if stdin is None and args[0] == "write" else stdin
        proc = subprocess.run(
            [str(BIN / "branchwork"), *args],
            cwd=repo,
            capture_output=True,
            input=(data or "").encode("utf-8", "surrogateescape"),
            timeout=60,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert b"Traceback" not in proc.stderr and proc.stderr.startswith(b"error: ")
    worktree = Path(json.loads(bw("session", "show", "--json", cwd=repo).stdout)["worktree"])
    assert (worktree / "app.py").read_text() == "print('hello')\n"
    out = bw("run", "--", "echo", "a", "--debug", "b", cwd=repo).stdout
    assert out == "a --debug b\n"


def test_edit_refuses_a_file_that_is_not_utf8_and_leaves_it_intact(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    bw(
        "run",
        "--",
        "python3 -c \"open('latin.py','wb').write(b'n = \\'caf\\\\xe9\\'\\\\nx = 1\\\\n')\"",
        cwd=repo,
    )
    proc = bw("edit", "latin.py", "--old", "x = 1", "--new", "x = 2", cwd=repo, check=False)
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr
    worktree = Path(json.loads(bw("session", "show", "--json", cwd=repo).stdout)["worktree"])
    assert (worktree / "latin.py").read_bytes() == b"n = 'caf\xe9'\nx = 1\n"


def test_bytes_that_are_not_utf8_are_refused_in_one_line_and_change_nothing(
    repo: Path, tmp_path: Path
) -> None:
    """The history is UTF-8: an argument or a directory made of other bytes is refused before
    anything is done (a file written whose write could not be recorded, a traceback)."""
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", "--title", "t", cwd=repo)
    before = bw("log", "--json", cwd=repo).stdout
    files = sorted(p.name for p in repo.iterdir())
    odd = tmp_path / os.fsdecode(b"dir-\xff")
    odd.mkdir()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    attempts = [
        ([b"write", b"f\xff.txt"], os.fsencode(repo), "argument 2 (f\\xff.txt)"),
        ([b"run", b"--", b"echo", b"\xfe"], os.fsencode(repo), "argument 4 (\\xfe)"),
        ([b"session", b"new", b"--title", b"t\xfd"], os.fsencode(repo), "argument 4"),
        ([b"session", b"list"], os.fsencode(odd), "current directory"),
    ]
    for args, cwd, mention in attempts:
        done = subprocess.run(
            [os.fsencode(BIN / "branchwork"), *args],
            cwd=cwd, env=env, input=b"x\n", capture_output=True, timeout=60,
        )  # fmt: skip
        err = done.stderr.decode("utf-8", "backslashreplace")
        assert done.returncode == 2, (args, err)
        assert err.startswith("error:") and len(err.splitlines()) == 1, err
        assert mention in err and "not valid UTF-8" in err, err
    assert sorted(p.name for p in repo.iterdir()) == files
    assert bw("log", "--json", cwd=repo).stdout == before
    assert len(json.loads(bw("session", "list", "--json", cwd=repo).stdout)) == 1
    assert bw("--version", cwd=odd).returncode == 0  # asks nothing of the directory


def test_the_python_api_refuses_text_that_is_not_utf8_before_acting(repo: Path) -> None:
    from branchwork import InvalidInput, Workspace

    with Workspace() as ws:
        project = ws.add_project(repo)
        session = ws.new_session(project)
        odd = os.fsdecode(b"f\xff.txt")
        for act in (
            lambda: ws.write_file(session, odd, "x"),
            lambda: ws.run(session, f"echo {odd}"),
            lambda: ws.run(session, ["echo", "\ud800"]),
            lambda: ws.new_session(project, title=odd),
        ):
            with pytest.raises(InvalidInput, match="not valid UTF-8"):
                act()
        assert len(ws.events(session)) == 1
        assert len(ws.sessions(project)) == 1
    assert not (Path(session.worktree) / odd).exists()


def test_text_that_is_not_utf8_leaves_no_commit_closed_proposal_or_trial_session(
    repo: Path,
) -> None:
    from branchwork import InvalidInput, Workspace

    with Workspace() as ws:
        project = ws.add_project(repo)
        session = ws.new_session(project)
        ws.write_file(session, "a.txt", "a\n")
        proposal = ws.propose(session)
        task = ws.new_task("fix it", project=project)
        (Path(session.worktree) / "b.txt").write_text("b\n")  # a change to checkpoint
        head, events = git(Path(session.worktree), "rev-parse", "HEAD"), len(ws.events(session))
        branches = git(repo, "branch", "--list")
        for act in (
            lambda: ws.checkpoint(session, "\udcff"),
            lambda: ws.close_proposal(proposal.id, reason="\udcff"),
            lambda: ws.start_task(task, prompt_variant="\udcff"),
            lambda: ws.start_trials(task, n=2, prompt_variants=["ok", "\udcff"]),
        ):
            with pytest.raises(InvalidInput, match="not valid UTF-8"):
                act()
        assert git(Path(session.worktree), "rev-parse", "HEAD") == head
        assert len(ws.events(session)) == events
        assert ws.proposal(proposal.id).proposal.status == "open"
        assert git(repo, "branch", "--list") == branches
        assert len(ws.sessions(project)) == 1
        assert ws.task_details(task).trials == []


def test_a_closed_stdout_or_stderr_drops_what_it_would_show_and_the_command_still_runs(
    repo: Path,
) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    client = BIN / "branchwork"
    for line, code in (
        (f'"{client}" run -- echo hi >&-', 0),
        (f'"{client}" run -- "exit 4" >&-', 4),
    ):
        done = subprocess.run(["bash", "-c", line], cwd=repo, capture_output=True, text=True)
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stderr
    refused = subprocess.run(
        ["bash", "-c", f'"{client}" session show no-such-session 2>&-'],
        cwd=repo,
        capture_output=True,
    )
    assert refused.returncode == 2
    lines = [json.loads(line) for line in bw("log", "--json", cwd=repo).stdout.splitlines()]
    finished = [e["payload"]["exit_code"] for e in lines if e["kind"] == "command_finished"]
    assert finished == [0, 4]


def test_write_with_a_closed_stdin_is_refused_and_leaves_the_file_as_it_was(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    bw("write", "notes.txt", cwd=repo, stdin="kept\n")
    client = BIN / "branchwork"
    for warm in ("0", "1"):  # the same on its own and in a warm process
        done = subprocess.run(
            ["bash", "-c", f'"{client}" write notes.txt <&-'],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "BRANCHWORK_WARM": warm},
        )
        assert done.returncode == 2, done.stderr
        assert "stdin is closed" in done.stderr
        assert bw("read", "notes.txt", cwd=repo).stdout == "kept\n"
    lines = [json.loads(line) for line in bw("log", "--json", cwd=repo).stdout.splitlines()]
    assert [e["kind"] for e in lines].count("file_written") == 1
