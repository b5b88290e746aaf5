"""Forks (branch and conversation from a point of another session) and suggested tasks, on real
repositories; the CLI of tasks and trials as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwork import InvalidInput, Workspace
from branchwork.domain.events import UserMessage
from branchwork.providers import ScriptedModel, ScriptedReply
from tests.conftest import RepoFactory, bw, git
from tests.tasks.test_trials import CALC, CHECK, script, write


@pytest.fixture
def fws(tmp_path: Path, repo: Path) -> Workspace:
    workspace = Workspace(home=tmp_path / "home", cwd=repo)
    workspace.add_project(repo)
    workspace.configure_project(sandbox="local")
    return workspace


def test_a_fork_at_a_checkpoint_has_the_parents_files_and_conversation_up_to_there(
    fws: Workspace, repo: Path
) -> None:
    parent = fws.new_session(title="parent")
    first = ScriptedModel([ScriptedReply.call("write_file", path="a.txt", content="one\n"), "a"])
    fws.send_message(parent, "write a", model=first)
    at = fws.checkpoints(parent)[-1]
    second = ScriptedModel([ScriptedReply.call("write_file", path="b.txt", content="two\n"), "b"])
    fws.send_message(parent, "write b", model=second)
    parent_log = [e.model_dump_json() for e in fws.events(parent)]
    parent_tip = git(repo, "rev-parse", parent.branch)

    fork = fws.fork_session(parent, at=at.commit[:8], title="other way")
    assert (fork.parent_id, fork.parent_seq) == (parent.id, at.seq)
    worktree = Path(fork.worktree)
    assert (worktree / "a.txt").read_text() == "one\n" and not (worktree / "b.txt").exists()
    assert fws.session_details(fork).state.head == at.commit
    assert [e.kind for e in fws.events(fork)] == ["session_created", "forked"]

    model = ScriptedModel([ScriptedReply.call("write_file", path="c.txt", content="three\n"), "c"])
    fws.send_message(fork, "write c instead", model=model)
    said = [m.text for m in model.requests[0].messages if m.role == "user"]
    assert "write a" in said[0] and "write b" not in " ".join(said)
    assert said[-1] == "write c instead"
    assert (worktree / "c.txt").exists()

    assert [e.model_dump_json() for e in fws.events(parent)] == parent_log  # untouched
    assert git(repo, "rev-parse", parent.branch) == parent_tip
    assert not (Path(parent.worktree) / "c.txt").exists()
    assert fws.session_details(fork).session.parent_short_id == parent.short_id


def test_a_fork_at_an_event_seq_and_of_a_fork_links_the_whole_chain(fws: Workspace) -> None:
    parent = fws.new_session(title="p")
    fws.send_message(parent, "first question", model=ScriptedModel(["first answer"]))
    child = fws.fork_session(parent)
    fws.send_message(child, "second question", model=ScriptedModel(["second answer"]))
    grandchild = fws.fork_session(child, at=str(fws.session_state(child).last_seq))
    model = ScriptedModel(["third answer"])
    fws.send_message(grandchild, "third question", model=model)
    texts = [m.text for m in model.requests[0].messages if m.role in ("user", "assistant")]
    assert texts == [
        "first question",
        "first answer",
        "second question",
        "second answer",
        "third question",
    ]
    with pytest.raises(InvalidInput, match="has events 1 to"):
        fws.fork_session(parent, at="999")
    with pytest.raises(InvalidInput, match="not a trial"):
        fws.fork_session(parent, as_trial=True)


def test_a_fork_of_a_trial_can_become_a_new_trial(fws: Workspace, tmp_path: Path) -> None:
    task = fws.new_task("Try twice")
    trial = fws.start_task(task)
    fws.send_message(trial.session_id, "go", model=script(tmp_path, "go", ["went"]))
    fork = fws.fork_session(trial.session_id, as_trial=True)
    details = fws.task_details(task)
    assert [f.trial.session_id for f in details.trials] == [trial.session_id, fork.id]
    kinds = [e.kind for e in fws.events(fork)]
    assert kinds == ["session_created", "forked", "trial_started"]


def test_suggest_finds_a_todo_and_a_failing_check_and_accepting_starts_a_session(
    repo_factory: RepoFactory, tmp_path: Path
) -> None:
    repo = repo_factory({"calc.py": CALC, "check.py": CHECK, "ok.py": "print('fine')\n"})
    ws = Workspace(home=tmp_path / "home", cwd=repo)
    ws.add_project(repo)
    ws.configure_project(sandbox="local")
    found = ws.suggest(checks=["python3 check.py", "python3 ok.py"]).suggestions
    todo = next(s for s in found if s.source == "todo")
    assert todo.evidence.startswith("calc.py:2:") and "fix the sign" in todo.title
    failing = [s for s in found if s.source == "check"]
    assert [s.check for s in failing] == ["python3 check.py"]  # the passing one is no task
    assert "AssertionError" in failing[0].evidence
    assert not list((tmp_path / "home" / "tmp" / "scratch").iterdir())  # scratch removed
    assert git(repo, "status", "--porcelain") == ""

    task, trial = ws.accept_suggestion(failing[0].number)
    assert task.check_command == "python3 check.py" and "suggested" in task.labels
    session = ws.session(trial.session_id)
    assert session.status == "active" and Path(session.worktree, "check.py").exists()
    assert ws.current_session().id == session.id
    model = ScriptedModel([write_reply(), "fixed"])
    ws.send_message(session, "fix it", model=model)
    assert ws.trial(trial).status == "done"
    ws.close()


def write_reply() -> ScriptedReply:
    return ScriptedReply.call(
        "write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"
    )


def test_the_task_commands_as_a_user_runs_them(repo_factory: RepoFactory, tmp_path: Path) -> None:
    repo = repo_factory({"calc.py": CALC, "check.py": CHECK})
    bw("project", "add", ".", cwd=repo)
    bw("project", "config", "--sandbox", "local", cwd=repo)
    created = json.loads(
        bw("task", "new", "Fix add", "--check", "python3 check.py", "--json", cwd=repo).stdout
    )
    assert created["number"] == 1 and created["status"] == "open"
    right = script(tmp_path, "r", [write("calc.py", "def add(a, b):\n    return a + b\n"), "ok"])
    wrong = script(tmp_path, "w", [write("NOTES.md", "plan\n"), "planned"])
    proc = bw("trial", "start", "1", "-m", right, "-m", wrong, cwd=repo)
    assert "done" in proc.stdout
    listed = json.loads(bw("task", "list", "--json", cwd=repo).stdout)
    assert listed[0]["status"] == "in_progress" and listed[0]["trials"] == 2
    compared = json.loads(bw("compare", "1", "--json", cwd=repo).stdout)
    checks = [t["check"]["passed"] for t in compared["trials"]]
    assert checks == [True, False]
    assert compared["trials"][0]["files"] == [{"path": "calc.py", "added": 1, "removed": 1}]
    assert "NOTES.md" in bw("compare", "1", "--diff", "1", "2", cwd=repo).stdout
    shown = bw("compare", "1", cwd=repo).stdout
    assert "pass" in shown and "fail" in shown and "wrote calc.py" in shown
    promoted = json.loads(bw("promote", "1.1", "--json", cwd=repo).stdout)
    assert promoted["promoted"]["status"] == "promoted" and promoted["proposal"] == 1
    assert [t["status"] for t in promoted["discarded"]] == ["discarded"]
    details = json.loads(bw("task", "show", "1", "--json", cwd=repo).stdout)
    assert details["status"] == "done" and details["total"]["tokens"] > 0
    bad = bw("promote", "1.9", cwd=repo, check=False)
    assert bad.returncode == 2 and "has no trial 9" in bad.stderr
    refused = bw(
        "ask", "--task", "1", "-m", script(tmp_path, "a", ["hello"]), "hi", cwd=repo, check=False
    )
    assert refused.returncode == 2 and "task #1 is done" in refused.stderr
    bw("task", "new", "Explore", cwd=repo)
    asked = bw("ask", "--task", "2", "-m", script(tmp_path, "a", ["hello"]), "hi", cwd=repo)
    assert "trial 1" in asked.stdout
    forked = bw("session", "fork", "--at", "base", "--json", cwd=repo)
    assert json.loads(forked.stdout)["parent_seq"] == 1
    suggested = bw("suggest", "--check", "python3 check.py", cwd=repo).stdout
    assert "fix the sign" in suggested and "Make `python3 check.py` pass" in suggested
    accepted = bw("suggest", "accept", "1", cwd=repo).stdout
    assert "task #3" in accepted


def test_user_message_of_the_parent_is_not_copied_into_the_fork(fws: Workspace) -> None:
    parent = fws.new_session(title="p")
    fws.send_message(parent, "only in the parent", model=ScriptedModel(["ok"]))
    fork = fws.fork_session(parent)
    own = [e for e in fws.events(fork) if isinstance(e.payload, UserMessage)]
    assert own == []  # linked, not copied
