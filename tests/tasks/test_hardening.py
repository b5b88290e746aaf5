"""Breaks found by attacking tasks, trials, compare, promote, forks and suggest; each test
failed before its fix."""

from __future__ import annotations

import json
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from branchwork import Budget, Conflict, Workspace
from branchwork.domain.events import ToolCall, ToolResult, utc_now
from branchwork.providers import ScriptedModel, ScriptedReply
from branchwork.service import trials
from tests.conftest import RepoFactory, bw, git
from tests.tasks.test_trials import CALC, CHECK, run, script, write

SECRET = "supersecretvalue123"


@pytest.fixture
def calc(repo_factory: RepoFactory) -> Path:
    return repo_factory({"calc.py": CALC, "check.py": CHECK, ".gitignore": "__pycache__/\n"})


@pytest.fixture
def hws(tmp_path: Path, calc: Path) -> Workspace:
    ws = Workspace(home=tmp_path / "home", cwd=calc)
    ws.add_project(calc)
    ws.configure_project(sandbox="local", concurrent_turns=3)
    return ws


def test_secrets_never_reach_trial_records_or_logs(hws: Workspace, tmp_path: Path) -> None:
    hws.set_env(None, "TOKEN", SECRET, secret=True)
    task = hws.new_task("t", labels=[f"l-{SECRET}"])
    failing = script(tmp_path, "err", [{"error": {"message": f"bad key {SECRET}"}}])
    (trial,) = hws.start_trials(task, models=[failing], prompt_variants=[f"use {SECRET}"])
    (done,) = hws.wait_for_trials(task, timeout=30)
    assert done.status == "failed" and "bad key" in done.detail
    details = hws.task_details(task)
    dumped = json.dumps([f.trial.model_dump(mode="json") for f in details.trials])
    assert SECRET not in dumped + json.dumps(details.task.model_dump(mode="json"))
    log = Path(hws.settings.home, "trials", f"{trial.id}.log")
    assert SECRET not in hws.trial_log(trial)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_concurrent_promotes_promote_exactly_one(hws: Workspace, tmp_path: Path) -> None:
    task = hws.new_task("t")
    hws.start_trials(task, models=[script(tmp_path, "q", ["done"])] * 3)
    hws.wait_for_trials(task, timeout=30)
    outcomes: list[str] = []

    def promote(n: int) -> None:
        with Workspace(home=hws.settings.home, cwd=hws._cwd) as other:
            try:
                other.promote(f"1.{n}")
                outcomes.append("promoted")
            except Conflict as exc:
                outcomes.append(exc.message)

    threads = [threading.Thread(target=promote, args=(n,)) for n in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("promoted") == 1, outcomes
    trials = [f.trial for f in hws.task_details(task).trials]
    winner = next(t for t in trials if t.status == "promoted")
    assert hws.session(winner.session_id).status == "active"
    assert sorted(t.status for t in trials) == ["discarded", "discarded", "promoted"]


def test_promote_changes_nothing_when_a_session_cannot_be_archived(
    hws: Workspace, tmp_path: Path
) -> None:
    task = hws.new_task("t")
    first, _, third = hws.start_trials(task, models=[script(tmp_path, "q", ["done"])] * 3)
    hws.wait_for_trials(task, timeout=30)
    with Workspace(home=hws.settings.home) as other:
        runner = threading.Thread(target=other.run, args=(third.session_id, "sleep 3"))
        runner.start()
        time.sleep(1)
        with pytest.raises(Conflict, match="still running"):
            hws.promote(first)
        runner.join()
    assert [f.trial.status for f in hws.task_details(task).trials] == ["done"] * 3
    assert hws.promote(first).promoted.status == "promoted"


def test_a_trial_driven_by_hand_blocks_neither_watching_nor_promoting(
    hws: Workspace, tmp_path: Path
) -> None:
    task = hws.new_task("t")
    by_hand = hws.start_task(task)
    hws.start_trials(task, models=[script(tmp_path, "q", ["done"])])
    finished = hws.wait_for_trials(task, timeout=30)  # does not wait for the idle one
    assert [t.status for t in finished] == ["running", "done"]
    done = hws.promote(f"{task.number}.2")
    assert [t.id for t in done.discarded] == [by_hand.id]
    with pytest.raises(Conflict, match="is done: trial 2 was promoted"):
        hws.start_task(task)


def test_a_trial_driven_by_hand_gets_its_share_of_the_task_budget(hws: Workspace) -> None:
    task = hws.new_task("t", budget=Budget(tokens=9000))
    by_hand = hws.start_task(task)
    assert hws.session_state(by_hand.session_id).budget.tokens == 9000
    with pytest.raises(Conflict, match="given out"):
        hws.start_trials(task, n=2)


def test_the_budget_given_out_is_not_given_twice(hws: Workspace, tmp_path: Path) -> None:
    task = hws.new_task("t", budget=Budget(tokens=9000))
    first = hws.start_trials(task, models=[script(tmp_path, "q", ["done"])], n=3)
    assert {hws.session_state(t.session_id).budget.tokens for t in first} == {3000}
    with pytest.raises(Conflict, match="budget of task #1 is given out"):
        hws.start_trials(task, n=3)
    with pytest.raises(Conflict, match="given out"):
        hws.start_task(task)
    hws.wait_for_trials(task, timeout=30)


def test_a_check_runs_on_a_commit_and_leaves_nothing_behind(
    hws: Workspace, tmp_path: Path, calc: Path
) -> None:
    check = "python3 check.py; mkdir -p gen; echo x > gen/out.txt; echo y > calc.py.orig"
    task = hws.new_task("t", check=check)
    (trial,) = hws.start_trials(task, models=[script(tmp_path, "q", ["nothing"])])
    hws.wait_for_trials(task, timeout=30)
    session = hws.session(trial.session_id)
    Path(session.worktree, "calc.py").write_text("def add(a, b):\n    return a + b\n")
    first = hws.compare(task).trials[0]
    assert first.check is not None and first.check.passed
    tip = git(calc, "rev-parse", session.branch).strip()
    assert first.check.head == first.head == tip  # the edit was checkpointed, then checked
    assert git(Path(session.worktree), "status", "--porcelain") == ""
    assert not Path(session.worktree, "gen").exists()
    assert "gen/out.txt" not in git(calc, "ls-tree", "-r", "--name-only", session.branch)


def test_a_check_that_timed_out_runs_again_and_a_secret_check_is_cached(
    tmp_path: Path, calc: Path
) -> None:
    ws = Workspace(home=tmp_path / "home", cwd=calc, command_timeout=1)
    ws.add_project(calc)
    ws.configure_project(sandbox="local")
    ws.set_env(None, "TOKEN", SECRET, secret=True)
    task = ws.new_task("t", check=f"echo {SECRET} >/dev/null; sleep 5")
    ws.start_trials(task, models=[script(tmp_path, "q", ["nothing"])])
    ws.wait_for_trials(task, timeout=30)
    first = ws.compare(task).trials[0].check
    assert first is not None and not first.passed and "timed out" in first.output_tail
    assert first.exit_code is None
    again = ws.compare(task).trials[0].check
    assert again is not None and again.fresh  # no verdict: checked again
    ws.edit_task(task, check=f"echo {SECRET}")
    assert (c := ws.compare(task).trials[0].check) is not None and c.fresh and c.passed
    assert (c := ws.compare(task).trials[0].check) is not None and not c.fresh
    ws.close()


def test_a_fork_inside_a_turn_answers_the_open_calls(hws: Workspace) -> None:
    parent = hws.new_session(title="p")
    model = ScriptedModel([ScriptedReply.call("read_file", path="calc.py"), "read it"])
    hws.send_message(parent, "read calc", model=model)
    call = next(e for e in hws.events(parent) if isinstance(e.payload, ToolCall))
    fork = hws.fork_session(parent, at=str(call.seq))
    own = hws.events(fork)
    answers = [e.payload for e in own if isinstance(e.payload, ToolResult)]
    assert [a.call_id for a in answers] == [call.payload.call_id]
    after = ScriptedModel(["ok"])
    hws.send_message(fork, "go on", model=after)
    roles = [m.role for m in after.requests[0].messages]
    assert roles == ["user", "assistant", "tool", "user"]


def test_a_fork_of_a_compacted_parent_starts_from_its_summary(hws: Workspace) -> None:
    parent = hws.new_session(title="p")
    for i in range(4):
        hws.send_message(parent, f"question {i} " + "x" * 200, model=ScriptedModel([f"a{i}"]))
    hws.compact(parent, model=ScriptedModel(["SUMMARY OF THE START"]))
    hws.send_message(parent, "question 4", model=ScriptedModel(["a4"]))
    fork = hws.fork_session(parent)
    model = ScriptedModel(["ok"])
    hws.send_message(fork, "in the fork", model=model)
    texts = [m.text for m in model.requests[0].messages]
    assert any("SUMMARY OF THE START" in t for t in texts)
    assert not any(t.startswith("question 0") for t in texts)
    assert "question 4" in texts and texts[-1] == "in the fork"
    compacted = hws.compact(fork, model=ScriptedModel(["FORK SUMMARY"]))
    assert compacted is not None and compacted.through_seq >= 2  # one of the fork's own seqs


def test_compare_describes_the_agents_own_commands_and_a_fork_trials_work(
    hws: Workspace, tmp_path: Path
) -> None:
    task = hws.new_task("t", check="false")
    model = script(tmp_path, "q", [run("true"), write("a.md", "a\n"), "Looked around."])
    (trial,) = hws.start_trials(task, models=[model])
    hws.wait_for_trials(task, timeout=30)
    fork = hws.fork_session(trial.session_id, as_trial=True)
    first, forked = hws.compare(task).trials
    assert "ran `true` (last: ok)" in first.approach  # not the check's exit 1
    assert [f.path for f in forked.files] == ["a.md"]
    assert "wrote a.md" in forked.approach
    assert forked.session.id == fork.id


def test_trials_started_at_once_are_named_after_their_numbers(hws: Workspace) -> None:
    task = hws.new_task("t")
    home = hws.settings.home

    def start() -> None:
        with Workspace(home=home, cwd=hws._cwd) as other:
            other.start_task(task.number)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for figures in hws.task_details(task).trials:
        title = hws.session(figures.trial.session_id).title
        assert f"trial {figures.trial.number} " in title


def test_a_queued_trial_whose_worker_never_started_is_failed(hws: Workspace) -> None:
    task = hws.new_task("t")
    store = hws._services.store
    # The trial row as a `trial start` killed before it started the worker leaves it.
    orphan = trials.create_trial(hws._services, task, status="queued")
    store.tasks.update_trial(orphan.id, utc_now() - timedelta(minutes=5))
    found = hws.trial(orphan)
    assert found.status == "failed" and "never started" in found.detail


def test_suggest_reads_odd_names_author_todos_and_loose_model_answers(
    repo_factory: RepoFactory, tmp_path: Path
) -> None:
    repo = repo_factory(
        {"a\nb.py": "# TODO: in a file named with a newline\n", "c.py": "# TODO(bob): x\n"}
    )
    ws = Workspace(home=tmp_path / "home", cwd=repo)
    ws.add_project(repo)
    answer = 'Here [is] my list: [{"title": "Add tests"}, {"nope": 1}] done'
    found = ws.suggest(model=script(tmp_path, "m", [answer]))
    titles = [s.title for s in found.suggestions]
    assert "in a file named with a newline (a\nb.py)" in titles
    assert "x (c.py)" in titles and "Add tests" in titles
    failing = ws.suggest(model=script(tmp_path, "e", [{"error": {"message": "down"}}]))
    assert len(failing.suggestions) == 2 and "down" in failing.notes[0]
    ws.close()


def test_cli_output_drops_control_characters_and_huge_numbers_are_not_found(
    repo_factory: RepoFactory,
) -> None:
    repo = repo_factory({"esc.py": "# TODO: \x1b]52;c;cHduZWQ=\x07 \x1b[2Jcleared\n"})
    bw("project", "add", ".", cwd=repo)
    shown = bw("suggest", cwd=repo).stdout
    assert "\x1b]52" not in shown and "\x1b[2J" not in shown and "cleared" in shown
    proc = bw("task", "show", "99999999999999999999999", cwd=repo, check=False)
    assert proc.returncode == 2 and "no task" in proc.stderr
    proc = bw("trial", "stop", "1", cwd=repo, check=False)
    assert proc.returncode == 2 and "TASK.N" in proc.stderr


def test_removing_a_project_stops_its_trials(hws: Workspace, tmp_path: Path) -> None:
    task = hws.new_task("t")
    forever = script(tmp_path, "f", [{"text": "", "delay_s": 60}, "late"])
    (trial,) = hws.start_trials(task, models=[forever])
    deadline = time.monotonic() + 20
    while hws.trial(trial).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = hws.trial(trial).pid
    hws.remove_project(None, force=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            Path(f"/proc/{pid}").stat()
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the trial's worker still runs")
