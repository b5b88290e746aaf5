"""One session resolution for every command, one recorder for every event, and inputs checked
before anything is created."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from branchwork import Conflict, Event, InvalidInput, NotFound, Workspace
from tests.conftest import BIN, RepoFactory, bw, git

SECRET = "tok-3f9a8b7c6d5e"


def _two_projects(repo_factory: RepoFactory) -> tuple[Path, Path, str, str]:
    """Projects X and Y, each with one session; Y's is the last one made current."""
    x, y = repo_factory({"x.txt": "x\n"}), repo_factory({"y.txt": "y\n"})
    bw("project", "add", ".", cwd=x)
    bw("project", "add", ".", cwd=y)
    x_session = json.loads(bw("session", "new", "--title", "in x", "--json", cwd=x).stdout)
    y_session = json.loads(bw("session", "new", "--title", "in y", "--json", cwd=y).stdout)
    return x, y, x_session["id"], y_session["id"]


def test_commands_in_one_projects_checkout_never_act_on_anothers_current_session(
    repo_factory: RepoFactory, tmp_path: Path
) -> None:
    x, _y, x_id, y_id = _two_projects(repo_factory)
    bw("session", "switch", y_id, cwd=x)  # Y's session is current — in project Y only
    shown = json.loads(bw("session", "show", "--json", cwd=x).stdout)
    assert shown["id"] == x_id
    bw("write", "note.txt", cwd=x, stdin="for x\n")
    ran = json.loads(bw("run", "--json", "--", "cat", "note.txt", cwd=x).stdout)
    assert ran["status"] == "ok"
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["hello from x"]))
    asked = bw("ask", "--model", f"scripted:{script}", "--json", "hello", cwd=x)
    turn = [json.loads(line) for line in asked.stdout.splitlines()]
    assert {e["session_id"] for e in turn} == {x_id}
    x_log = [json.loads(line) for line in bw("log", x_id, "--json", cwd=x).stdout.splitlines()]
    y_log = [json.loads(line) for line in bw("log", y_id, "--json", cwd=x).stdout.splitlines()]
    assert {"file_written", "command_started", "user_message"} <= {e["kind"] for e in x_log}
    assert [e["kind"] for e in y_log] == ["session_created"]


def test_outside_every_project_a_command_says_how_to_choose(
    repo_factory: RepoFactory, tmp_path: Path
) -> None:
    _x, _y, _x_id, y_id = _two_projects(repo_factory)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in (["run", "--", "true"], ["session", "show"], ["write", "a.txt"]):
        proc = bw(*command, cwd=elsewhere, stdin="a\n", check=False)
        assert proc.returncode == 2, command
        assert "belongs to no project" in proc.stderr and "session list" in proc.stderr
    named = json.loads(bw("session", "show", y_id, "--json", cwd=elsewhere).stdout)
    assert named["id"] == y_id


def test_current_session_is_per_project(ws: Workspace, repo_factory: RepoFactory) -> None:
    x, y = repo_factory({"x.txt": "x"}), repo_factory({"y.txt": "y"})
    px, py = ws.add_project(x), ws.add_project(y)
    sx = ws.new_session(px, title="x")
    sy = ws.new_session(py, title="y")
    assert ws.current_session(px) == sx and ws.current_session(py) == sy
    at_x = Workspace(home=ws.settings.home, cwd=x)
    assert at_x.session().id == sx.id
    listing = ws.session_listing(all_projects=True)
    assert listing.current_ids == {sx.id, sy.id}
    at_x.close()


def test_session_new_with_a_bad_mode_or_model_creates_nothing(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    for option in (["--mode", "bogus"], ["--model", "nosuchprovider:x"]):
        proc = bw("session", "new", *option, cwd=repo, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(bw("session", "list", "--all", "--json", cwd=repo).stdout) == []
    assert git(repo, "branch", "--list", "bw/*") == ""
    assert "worktree" not in git(repo, "worktree", "list").split("\n", 1)[-1]
    proc = bw("ask", "--new", "--mode", "bogus", "hi", cwd=repo, check=False)
    assert proc.returncode == 2
    assert json.loads(bw("session", "list", "--all", "--json", cwd=repo).stdout) == []


def test_unknown_model_provider_gets_a_did_you_mean(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    with pytest.raises(InvalidInput, match="did you mean 'openai'"):
        ws.new_session(project, model="opnai:gpt-4o-mini")
    assert ws.sessions(project, include_archived=True) == []


def test_session_lifecycle_events_are_redacted_and_reach_observers(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    ws.set_env(project, "API_TOKEN", SECRET, secret=True)
    seen: list[Event] = []
    stop = ws.observe(seen.append)
    session = ws.new_session(project, title=f"rotate {SECRET}")
    ws.archive_session(session)
    ws.restore_session(session)
    stop()
    ws.write_file(session, "after.txt", "not observed\n")
    assert [e.kind for e in seen][:1] == ["session_created"]
    assert {"archived", "restored"} <= {e.kind for e in seen}
    assert "file_written" not in {e.kind for e in seen}
    assert SECRET not in session.title and SECRET not in session.branch
    created = ws.events(session, kinds=["session_created"])[0]
    assert SECRET not in created.model_dump_json()
    assert "[secret:API_TOKEN]" in created.model_dump_json()
    assert seen[0] == created


def test_streamed_answers_are_redacted_by_the_service(ws: Workspace, repo: Path) -> None:
    from branchwork import TurnHooks
    from branchwork.providers import ScriptedModel

    project = ws.add_project(repo)
    ws.set_env(project, "API_TOKEN", SECRET, secret=True)
    session = ws.new_session(project)
    chunks: list[str] = []
    model = ScriptedModel([f"the token is {SECRET}, done"])
    ws.send_message(session, "hi", model=model, hooks=TurnHooks(on_text=chunks.append))
    streamed = "".join(chunks)
    assert SECRET not in streamed and "[secret:API_TOKEN]" in streamed


def test_named_session_of_another_project_is_used_when_named(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    x, y = repo_factory({"x.txt": "x"}), repo_factory({"y.txt": "y"})
    ws.add_project(x)
    py = ws.add_project(y)
    sy = ws.new_session(py)
    at_x = Workspace(home=ws.settings.home, cwd=x)
    with pytest.raises(NotFound, match="no active session"):
        at_x.session()
    assert at_x.session(sy.short_id).id == sy.id
    at_x.close()


def test_an_infinite_timeout_is_refused_and_never_stored(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    for bad in (float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(InvalidInput, match="timeout"):
            ws.run(session, "echo hi", timeout=bad)
    proc = bw("run", "--timeout", "inf", "--", "echo hi", cwd=repo, check=False)
    assert proc.returncode == 2 and "timeout" in proc.stderr
    assert ws.events(session, kinds=["command_started"]) == []
    ws.session_details(session)  # the log still reads


def test_archiving_the_current_session_falls_back_to_the_newest_active(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    older = ws.new_session(project, title="older")
    current = ws.new_session(project, title="current")
    ws.archive_session(current)
    at_repo = Workspace(home=ws.settings.home, cwd=repo)
    assert at_repo.session().id == older.id
    with pytest.raises(Conflict, match="restore it"):
        ws.switch_session(current)
    ws.restore_session(current)
    assert at_repo.session().id == current.id  # restoring makes it current again
    at_repo.close()


def test_a_deleted_working_directory_gets_a_clear_error_and_named_sessions_still_work(
    repo: Path, tmp_path: Path
) -> None:
    bw("project", "add", ".", cwd=repo)
    made = json.loads(bw("session", "new", "--json", cwd=repo).stdout)
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        f"cd {gone} && rmdir {gone} && {BIN / 'branchwork'} session show {made['id']} --json "
        f"&& {BIN / 'branchwork'} run -- true"
    )
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert json.loads(proc.stdout)["id"] == made["id"]
    assert proc.returncode == 2 and "working directory no longer exists" in proc.stderr


def test_what_a_turn_returns_is_redacted_too(ws: Workspace, repo: Path) -> None:
    from branchwork.providers import ScriptedError, ScriptedModel, ScriptedReply

    project = ws.add_project(repo)
    ws.set_env(project, "API_TOKEN", SECRET, secret=True)
    session = ws.new_session(project)
    answer = ws.send_message(session, "hi", model=ScriptedModel([f"it is {SECRET}"]))
    assert SECRET not in answer.text and "[secret:API_TOKEN]" in answer.text
    failing = ScriptedModel([ScriptedReply(error=ScriptedError(message=f"upstream says {SECRET}"))])
    failed = ws.send_message(session, "again", model=failing)
    assert failed.status == "failed" and SECRET not in failed.detail


def test_a_model_that_cannot_be_used_creates_no_session(repo: Path, tmp_path: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    missing = tmp_path / "missing.json"
    for command in (
        ["ask", "--new", "--model", f"scripted:{missing}", "hi"],
        ["session", "new", "--model", f"scripted:{missing}"],
    ):
        proc = bw(*command, cwd=repo, check=False)
        assert proc.returncode == 2, (command, proc.stderr)
    chat = bw("chat", "--new", "--model", "bogus:x", cwd=repo, stdin="hello\n", check=False)
    assert chat.returncode == 2
    assert json.loads(bw("session", "list", "--all", "--json", cwd=repo).stdout) == []
    assert git(repo, "branch", "--list", "bw/*") == ""


def test_run_refuses_an_unknown_option_instead_of_running_it(repo: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    for args in (["run", "--jsn", "--", "pwd"], ["run", "--jsn", "pwd"]):
        proc = bw(*args, cwd=repo, check=False)
        assert proc.returncode == 2 and "unknown option" in proc.stderr, args
    assert bw("log", "--json", "--kind", "command_started", cwd=repo).stdout == ""
    empty = bw("run", "-s", "", "--", "true", cwd=repo, check=False)
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_the_python_api_takes_a_directory_as_text_and_fixes_it(
    ws: Workspace, repo_factory: RepoFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = repo_factory({"x": "x"}), repo_factory({"y": "y"})
    px = ws.add_project(x)
    ws.add_project(y)
    sx = ws.new_session(px)
    monkeypatch.chdir(x)
    fixed = Workspace(home=ws.settings.home, cwd=".")
    monkeypatch.chdir(y)
    assert fixed.session().id == sx.id  # "." meant x when the workspace was made
    fixed.close()


def test_an_observer_that_fails_never_undoes_what_was_recorded(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    stop = ws.observe(broken)
    session = ws.new_session(project)
    stop()
    assert Path(session.worktree).is_dir()
    assert ws.session(session.id).status == "active"
