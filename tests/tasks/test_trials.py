"""Tasks and trials with the scripted model and real git: trials run by real background worker
processes, compared on evidence, one promoted."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchwork import Budget, Conflict, InvalidInput, NotFound, Workspace
from tests.conftest import RepoFactory, git

CALC = "def add(a, b):\n    return a - b  # TODO: fix the sign\n"
CHECK = "import calc\nassert calc.add(2, 2) == 4\nprint('ok')\n"


def script(tmp_path: Path, name: str, replies: list[Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def write(path: str, content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "write_file", "arguments": {"path": path, "content": content}}]}


def run(command: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "run_command", "arguments": {"command": command}}]}


@pytest.fixture
def calc_repo(repo_factory: RepoFactory) -> Path:
    return repo_factory({"calc.py": CALC, "check.py": CHECK, ".gitignore": "__pycache__/\n"})


@pytest.fixture
def tws(tmp_path: Path, calc_repo: Path) -> Iterator[Workspace]:
    workspace = Workspace(home=tmp_path / "home", cwd=calc_repo)
    workspace.add_project(calc_repo)
    workspace.configure_project(sandbox="local", concurrent_turns=3)
    yield workspace
    workspace.close()


def three_scripts(tmp_path: Path) -> list[str]:
    return [
        script(
            tmp_path,
            "right",
            [
                write("calc.py", "def add(a, b):\n    return a + b\n"),
                run("python3 check.py"),
                "Fixed the sign. The check passes.",
            ],
        ),
        script(
            tmp_path, "wrong", [write("calc.py", "def add(a, b):\n    return b - a\n"), "Done."]
        ),
        script(tmp_path, "notes", [write("NOTES.md", "a plan\n"), "I only wrote a plan."]),
    ]


def test_three_trials_diverge_are_compared_and_one_is_promoted(
    tws: Workspace, tmp_path: Path, calc_repo: Path
) -> None:
    task = tws.new_task("Fix add", check="python3 check.py", labels=["bug"])
    started = tws.start_trials(task, models=three_scripts(tmp_path))
    assert [t.number for t in started] == [1, 2, 3]
    assert {t.status for t in started} <= {"queued", "running"}
    finished = tws.wait_for_trials(task, timeout=60)
    assert [t.status for t in finished] == ["done", "done", "done"], [t.detail for t in finished]
    bases = {tws.session(t.session_id).base_commit for t in finished}
    assert len(bases) == 1  # the same base for all

    comparison = tws.compare(task)
    right, wrong, notes = comparison.trials
    assert right.check and right.check.passed and right.check.fresh
    assert wrong.check and not wrong.check.passed and wrong.check.exit_code == 1
    assert notes.check and not notes.check.passed
    assert [f.path for f in right.files] == ["calc.py"] and (right.added, right.removed) == (1, 1)
    assert [f.path for f in notes.files] == ["NOTES.md"] and notes.added == 1
    for c in comparison.trials:
        assert c.turns == 1 and c.spent.tokens > 0 and c.spent.turn_ms > 0
    assert "wrote calc.py" in right.approach and "python3 check.py" in right.approach
    assert "said: Fixed the sign." in right.approach
    output = tws._services.store.get_blob(wrong.check.output_blob or "").decode()
    assert "AssertionError" in output
    assert "-    return a + b" in tws.trials_diff(task, "1", "2")

    again = tws.compare(task)  # nothing moved: no check runs again
    assert not any(c.check and c.check.fresh for c in again.trials)
    checks = tws._services.store.tail_events(right.session.id, limit=10, kinds=["check_run"])
    assert len(checks) == 1

    tws.write_file(wrong.session.id, "calc.py", "def add(a, b):\n    return a + b\n")
    moved = tws.compare(task)  # only the trial that moved is checked again
    assert [bool(c.check and c.check.fresh) for c in moved.trials] == [False, True, False]
    assert moved.trials[1].check and moved.trials[1].check.passed

    done = tws.promote("1.1")
    assert done.promoted.status == "promoted"
    assert done.proposal is not None and done.proposal.session_id == right.session.id
    assert done.proposal.title == "Task #1: Fix add" and done.proposal.status == "open"
    assert sorted(t.number for t in done.discarded) == [2, 3]
    assert all(t.status == "discarded" for t in done.discarded)
    for trial in done.discarded:
        session = tws.session(trial.session_id)
        assert session.status == "archived" and not Path(session.worktree).exists()
        assert git(calc_repo, "rev-parse", "--verify", session.branch).strip()
    details = tws.task_details(task)
    assert details.status == "done"
    assert details.total.tokens == sum(f.spent.tokens for f in details.trials) > 0
    kinds = [e.kind for e in tws.events(right.session.id)]
    assert kinds[:3] == ["session_created", "trial_started", "trial_updated"]
    assert "check_run" in kinds and kinds[-1] == "proposal_opened" and "promoted" in kinds
    with pytest.raises(Conflict, match="trial 1 of this task is promoted already"):
        tws.promote("1.2")


def test_the_concurrency_limit_queues_the_rest_then_runs_them(
    tws: Workspace, tmp_path: Path
) -> None:
    tws.configure_project(concurrent_turns=1)
    task = tws.new_task("Write notes")
    slow = [{"text": "", "delay_s": 0.6, **write("n.md", "x\n")}, "done"]
    models = [script(tmp_path, f"slow{i}", slow) for i in range(3)]
    tws.start_trials(task, models=models)
    seen_queued = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses = [p.trial.status for p in tws.trial_progress(task)]
        assert statuses.count("running") <= 1
        seen_queued |= statuses.count("queued") >= 1 and statuses.count("running") == 1
        if all(s == "done" for s in statuses):
            break
        time.sleep(0.05)
    assert seen_queued
    finished = tws.wait_for_trials(task, timeout=5)
    turns = []
    for trial in finished:
        events = tws.events(trial.session_id, kinds=["turn_started", "turn_finished"])
        turns.append((events[0].ts, events[-1].ts))
    turns.sort()
    for (_, end), (start, _) in itertools.pairwise(turns):
        assert start >= end  # one turn at a time in the project


def test_a_stopped_queued_trial_never_runs_and_retry_starts_a_new_one(
    tws: Workspace, tmp_path: Path
) -> None:
    tws.configure_project(concurrent_turns=1)
    task = tws.new_task("Slow work")
    slow = script(tmp_path, "slow", [{"text": "", "delay_s": 1.5, **write("a.md", "a\n")}, "ok"])
    quick = script(tmp_path, "quick", ["nothing to do"])
    (first,) = tws.start_trials(task, models=[slow])
    deadline = time.monotonic() + 20
    while tws.trial(first).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)  # the slow trial holds the project's one slot before the second starts
    (second,) = tws.start_trials(task, models=[quick])
    time.sleep(0.3)
    assert tws.trial(second).status == "queued"
    stopped = tws.stop_trial(f"{task.number}.2")
    assert (stopped.status, stopped.detail) == ("failed", "stopped")
    finished = tws.wait_for_trials(task, timeout=30)
    assert [t.status for t in finished] == ["done", "failed"]
    assert tws.session_state(second.session_id).turns == 0  # it never ran
    again = tws.retry_trial(second)
    assert again.number == 3 and again.model == quick
    assert tws.session(again.session_id).base_commit == tws.session(second.session_id).base_commit
    assert [t.status for t in tws.wait_for_trials(task, timeout=30)] == ["done", "failed", "done"]
    with pytest.raises(Conflict, match="not running"):
        tws.stop_trial(again)


def test_a_trial_whose_worker_died_is_failed_with_the_reason(
    tws: Workspace, tmp_path: Path
) -> None:
    task = tws.new_task("Never finishes")
    forever = script(tmp_path, "forever", [{"text": "", "delay_s": 60}, "late"])
    (trial,) = tws.start_trials(task, models=[forever])
    deadline = time.monotonic() + 20
    while tws.trial(trial).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trial.pid is not None
    os.killpg(trial.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while tws.trial(trial).status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    dead = tws.trial(trial)
    assert dead.status == "failed" and "ended without finishing" in dead.detail
    assert tws.task_details(task).status == "in_progress"


def test_a_task_budget_is_split_among_its_trials(tws: Workspace, tmp_path: Path) -> None:
    task = tws.new_task("Cheap", budget=Budget(tokens=9000, seconds=120))
    models = [script(tmp_path, f"b{i}", ["ok"]) for i in range(3)]
    started = tws.start_trials(task, models=models)
    for trial in started:
        budget = tws.session_state(trial.session_id).budget
        assert budget.tokens == 3000 and budget.seconds == 40
    tws.wait_for_trials(task, timeout=30)


def test_tasks_are_numbered_listed_edited_commented_and_closed(tws: Workspace) -> None:
    first = tws.new_task("One", description="the first", priority="high", labels=["a", "a", "b"])
    second = tws.new_task("Two")
    assert (first.number, second.number, first.labels) == (1, 2, ["a", "b"])
    assert [s.status for s in tws.tasks()] == ["open", "open"]
    edited = tws.edit_task("#1", title="One, better", check="true", closed=True)
    assert edited.title == "One, better" and edited.check_command == "true"
    assert [s.task.number for s in tws.tasks(status="closed")] == [1]
    tws.comment_task(2, "start with the tests", author="ada")
    assert [c.text for c in tws.task_details(2).comments] == ["start with the tests"]
    with pytest.raises(Conflict, match="closed"):
        tws.start_task(1)
    with pytest.raises(NotFound, match="no task #9"):
        tws.task(9)
    with pytest.raises(InvalidInput, match="priority"):
        tws.new_task("Bad", priority="asap")
    with pytest.raises(InvalidInput, match="status"):
        tws.tasks(status="finished")
    with pytest.raises(InvalidInput, match="one for all, or one each"):
        tws.start_trials(2, n=3, models=["scripted:a", "scripted:b"])


def test_a_person_works_a_trial_by_hand_and_its_status_follows_the_turns(
    tws: Workspace, tmp_path: Path
) -> None:
    task = tws.new_task("By hand")
    trial = tws.start_task(task)
    assert tws.current_session().id == trial.session_id
    assert tws.task_details(task).status == "in_progress"
    model = script(tmp_path, "hand", [write("x.md", "x\n"), "wrote x"])
    result = tws.send_message(trial.session_id, "write x", model=model)
    assert result.status == "completed"
    assert tws.trial(trial).status == "done"
    stuck = script(tmp_path, "stuck", ["no tools"] * 0 + [run("true")] * 5)
    tws.send_message(trial.session_id, "loop", model=stuck, mode="autopilot")
    assert tws.trial(trial).status == "stuck"
