"""Comparing a task's trials on evidence: what each changed, whether the task's check passes on
it, what it cost, and how it went about it.

The check runs in each trial's worktree (sandboxed like any command, recorded in the trial's
session as a command and a `check_run` event) on the trial's branch tip. A trial whose tip has
not moved since its last check keeps that result: comparing again re-runs only the checks of
trials that moved. Trials still queued or running are shown as they stand, not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import (
    AgentMessage,
    CheckRun,
    CommandFinished,
    CommandStarted,
    Event,
    FileWritten,
)
from branchwork.domain.models import Session
from branchwork.domain.replay import Spent
from branchwork.domain.tasks import Task, Trial
from branchwork.service import commands, resolve, trials
from branchwork.service.base import Services
from branchwork.service.scope import open_scope, repo_path
from branchwork.service.state import session_state

HISTORY_EVENTS = 2000  # the newest events read to describe a trial's approach
TAIL_CHARS = 2000


@dataclass(frozen=True)
class CheckResult:
    """The task's check on one trial's tip. `fresh`: run by this comparison (else the
    result of an earlier one, on the same tip). `output_blob`: the whole output."""

    check: str
    head: str
    passed: bool
    exit_code: int | None
    duration_ms: int
    output_tail: str
    output_blob: str | None
    fresh: bool


@dataclass(frozen=True)
class TrialComparison:
    trial: Trial
    session: Session
    head: str
    files: list[gitops.FileChange]
    check: CheckResult | None
    check_note: str
    turns: int
    spent: Spent
    approach: str

    @property
    def added(self) -> int:
        return sum(f.added or 0 for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed or 0 for f in self.files)


@dataclass(frozen=True)
class Comparison:
    task: Task
    trials: list[TrialComparison]


def compare(services: Services, task: Task, *, run_checks: bool = True) -> Comparison:
    """The task's trials side by side; checks run (in parallel, as many as the project runs
    turns at once) for the trials whose tip moved since their last check."""
    found = trials.refresh(services, services.store.tasks.trials(task.id))
    project = resolve.get_project(services, task.project_id)
    workers = max(1, min(len(found), project.config.concurrent_turns))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        compared = list(pool.map(lambda t: _compare_one(services, task, t, run_checks), found))
    return Comparison(task=task, trials=compared)


def _compare_one(services: Services, task: Task, trial: Trial, run_checks: bool) -> TrialComparison:
    session = services.store.get_session(trial.session_id)
    repo = repo_path(resolve.get_project(services, task.project_id))
    head = gitops.branch_tip(repo, session.branch) or session.base_commit
    check, note = _check(services, task, trial, session, head, run_checks)
    state = session_state(services.store, session.id)
    return TrialComparison(
        trial=trial,
        session=session,
        head=head,
        files=gitops.numstat(repo, session.base_commit, head),
        check=check,
        check_note=note,
        turns=state.turns,
        spent=state.usage,
        approach=approach(services.store.tail_events(session.id, limit=HISTORY_EVENTS)),
    )


def _check(
    services: Services, task: Task, trial: Trial, session: Session, head: str, run: bool
) -> tuple[CheckResult | None, str]:
    command = task.check_command
    if not command:
        return None, "the task has no check (`task edit --check CMD`)"
    last = last_check(services, session, command)
    if last is not None and last.head == head:
        return last, ""
    if trial.status in trials.ACTIVE:
        return last, f"trial is {trial.status}; checked when it finishes"
    if not run:
        return last, "not checked yet"
    if session.status != "active":
        return last, f"session is {session.status}; restore it to check it"
    return run_check(services, session, command, head), ""


def last_check(services: Services, session: Session, command: str) -> CheckResult | None:
    """The newest comparison check of `command` recorded in the session."""
    for event in reversed(services.store.tail_events(session.id, limit=50, kinds=["check_run"])):
        p = event.payload
        if isinstance(p, CheckRun) and p.purpose == "compare" and p.check == command:
            return _result(p, fresh=False)
    return None


def run_check(services: Services, session: Session, command: str, head: str) -> CheckResult:
    """Run the check in the session's worktree, record it, and return its result."""
    scope = open_scope(services, session)
    outcome = commands.run_command(scope, command, purpose="check", checkpoint=False)
    done = outcome.finished
    event = scope.record(
        CheckRun(
            check=command,
            head=head,
            purpose="compare",
            passed=done.status == "ok" and done.exit_code == 0,
            exit_code=done.exit_code,
            duration_ms=done.duration_ms,
            output_tail=(done.output_tail or done.output_head)[-TAIL_CHARS:],
            output_blob=done.output_blob,
            command_id=done.command_id,
        )
    )
    assert isinstance(event.payload, CheckRun)
    return _result(event.payload, fresh=True)


def _result(p: CheckRun, *, fresh: bool) -> CheckResult:
    return CheckResult(
        check=p.check,
        head=p.head,
        passed=p.passed,
        exit_code=p.exit_code,
        duration_ms=p.duration_ms,
        output_tail=p.output_tail,
        output_blob=p.output_blob,
        fresh=fresh,
    )


def approach(events: Iterable[Event]) -> str:
    """How a trial went about its task, in one or two lines, from its history: the files it
    wrote, the commands it ran (and how the last one ended), what it said last."""
    written: list[str] = []
    ran: Counter[str] = Counter()
    last_status, said = "", ""
    for event in events:
        p = event.payload
        if isinstance(p, FileWritten) and p.path not in written:
            written.append(p.path)
        elif isinstance(p, CommandStarted) and p.purpose == "agent":
            ran[p.command.splitlines()[0][:40]] += 1
        elif isinstance(p, CommandFinished):
            last_status = "ok" if p.exit_code == 0 else f"exit {p.exit_code}"
        elif isinstance(p, AgentMessage) and p.text.strip():
            said = p.text.strip()
    parts = []
    if written:
        more = f" (+{len(written) - 4} more)" if len(written) > 4 else ""
        parts.append("wrote " + ", ".join(written[:4]) + more)
    if ran:
        shown = ", ".join(f"`{c}`" + (f" ×{n}" if n > 1 else "") for c, n in ran.most_common(3))
        parts.append(f"ran {shown}" + (f" (last: {last_status})" if last_status else ""))
    if said:
        parts.append("said: " + _first_sentence(said))
    return "; ".join(parts) or "no work recorded yet"


def _first_sentence(text: str, limit: int = 160) -> str:
    line = text.splitlines()[0]
    end = line.find(". ")
    sentence = line if end < 0 else line[: end + 1]
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def trials_diff(services: Services, task: Task, one: str, other: str) -> str:
    """The diff from trial `one`'s branch tip to trial `other`'s (numbers within the task)."""
    repo = repo_path(resolve.get_project(services, task.project_id))
    tips = [_tip(services, repo, _numbered(services, task, key)) for key in (one, other)]
    return gitops.diff_commits(repo, tips[0], tips[1])


def _numbered(services: Services, task: Task, key: str) -> Trial:
    text = key.strip().removeprefix("#").rpartition(".")[2]
    for trial in services.store.tasks.trials(task.id):
        if text.isdigit() and trial.number == int(text):
            return trial
    raise InvalidInput(
        f"task {task.ref} has no trial {key!r}; `task show {task.number}` lists them"
    )


def _tip(services: Services, repo: Path, trial: Trial) -> str:
    session = services.store.get_session(trial.session_id)
    return gitops.branch_tip(repo, session.branch) or session.base_commit
