"""Comparing a task's trials on evidence: what each changed, whether the task's check passes on
it, what it cost, and how it went about it.

The check runs in each trial's worktree (sandboxed like any command, recorded in the trial's
session as a command and a `check_run` event) on what the worktree holds, checkpointed first,
so that the result belongs to one commit. A trial whose tip has not moved since its last check
keeps that result: comparing again re-runs only the checks of trials that moved (a check that
timed out reached no verdict and runs again). Trials still working are shown as they stand.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import Cancelled, InvalidInput
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
from branchwork.service import commands, forks, resolve, trials
from branchwork.service.base import Services
from branchwork.service.scope import (
    SessionScope,
    open_scope,
    repo_path,
    take_checkpoint,
    worktree_lock,
)
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


def compare(
    services: Services, task: Task, *, run_checks: bool = True, recheck: bool = False
) -> Comparison:
    """The task's trials side by side; checks run (in parallel, as many as the project runs
    turns at once) for the trials whose tip moved since their last check, or all with
    `recheck`. Ctrl-C (KeyboardInterrupt) stops the running checks."""
    found = trials.refresh(services, services.store.tasks.trials(task.id))
    project = resolve.get_project(services, task.project_id)
    workers = max(1, min(len(found), project.config.concurrent_turns))
    options = _Options(run_checks, recheck, threading.Event())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            compared = list(pool.map(lambda t: _compare_one(services, task, t, options), found))
        except BaseException:
            options.cancel.set()
            raise
    return Comparison(task=task, trials=compared)


@dataclass(frozen=True)
class _Options:
    run_checks: bool
    recheck: bool
    cancel: threading.Event


def _compare_one(
    services: Services, task: Task, trial: Trial, options: _Options
) -> TrialComparison:
    session = services.store.get_session(trial.session_id)
    repo = repo_path(resolve.get_project(services, task.project_id))
    head = gitops.branch_tip(repo, session.branch) or session.base_commit
    check, note = _check(services, task, trial, session, head, options)
    if check is not None and check.head != head:  # a checkpoint before the check moved it
        head = check.head
    state = session_state(services.store, session.id)
    history = forks.conversation_tail(services, session, None, HISTORY_EVENTS)
    return TrialComparison(
        trial=trial,
        session=session,
        head=head,
        files=gitops.numstat(repo, forks.origin_base(services, session), head),
        check=check,
        check_note=note,
        turns=state.turns,
        spent=state.usage,
        approach=approach(history),
    )


def _check(
    services: Services, task: Task, trial: Trial, session: Session, head: str, options: _Options
) -> tuple[CheckResult | None, str]:
    command = task.check_command
    if not command:
        return None, "the task has no check (`task edit --check CMD`)"
    last = last_check(services, session, command)
    if last is not None and last.head == head and not options.recheck:
        return last, ""
    if trials.busy(services, trial):
        return last, f"trial is {trial.status}; checked when it finishes"
    if not options.run_checks:
        return last, "not checked yet"
    if session.status != "active":
        return last, f"session is {session.status}; restore it to check it"
    return run_check(services, session, command, options.cancel), ""


def last_check(services: Services, session: Session, command: str) -> CheckResult | None:
    """The newest comparison check of `command` recorded in the session that reached a verdict
    (one that timed out is run again)."""
    recorded = services.recorder.redactor(session.project_id).redact(command)  # as stored
    for event in reversed(services.store.tail_events(session.id, limit=50, kinds=["check_run"])):
        p = event.payload
        if isinstance(p, CheckRun) and p.purpose == "compare" and p.check == recorded:
            return _result(p, fresh=False) if p.exit_code is not None else None
    return None


def run_check(
    services: Services, session: Session, command: str, cancel: threading.Event | None = None
) -> CheckResult:
    """Run the check in the session's worktree on what it holds, checkpointed first (so the
    result belongs to one commit); then undo what the check left that git would see (its
    caches in ignored paths stay), so the trial's branch never records the check's output."""
    scope = open_scope(services, session)
    saved = take_checkpoint(scope, "before check", automatic=True)
    head = saved.commit if saved else gitops.head_commit(scope.worktree)
    outcome = commands.run_command(scope, command, purpose="check", checkpoint=False, cancel=cancel)
    with worktree_lock(scope):
        gitops.undo_changes(scope.worktree, keep=scope.project.config.copy_files)
    done = outcome.finished
    if done.status == "cancelled":
        raise Cancelled(f"the check of session {session.short_id} was stopped")
    return _record(scope, command, head, done)


def _record(scope: SessionScope, command: str, head: str, done: CommandFinished) -> CheckResult:
    tail = (done.output_tail or done.output_head)[-TAIL_CHARS:]
    timed_out = done.status == "timeout"
    if timed_out:
        tail = f"[timed out after {done.duration_ms / 1000:.0f} s]\n{tail}"
    event = scope.record(
        CheckRun(
            check=command,
            head=head,
            purpose="compare",
            passed=done.status == "ok" and done.exit_code == 0,
            exit_code=None if timed_out or done.status == "error" else done.exit_code,
            duration_ms=done.duration_ms,
            output_tail=tail,
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
    wrote, the commands the agent ran (and how the last one ended), what it said last."""
    written: list[str] = []
    ran: Counter[str] = Counter()
    agent_commands: set[str] = set()
    last_status, said = "", ""
    for event in events:
        p = event.payload
        if isinstance(p, FileWritten) and p.path not in written:
            written.append(p.path)
        elif isinstance(p, CommandStarted) and p.purpose == "agent":
            agent_commands.add(p.command_id)
            ran[p.command.splitlines()[0][:40] if p.command else ""] += 1
        elif isinstance(p, CommandFinished) and p.command_id in agent_commands:
            last_status = "ok" if p.exit_code == 0 else f"exit {p.exit_code}"
        elif isinstance(p, AgentMessage) and p.text.strip():
            said = p.text.strip()
    return _summary(written, ran, last_status, said)


def _summary(written: list[str], ran: Counter[str], last_status: str, said: str) -> str:
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
    owner, _, text = key.strip().removeprefix("#").rpartition(".")
    if owner and owner.removeprefix("#") != str(task.number):
        raise InvalidInput(f"trial {key!r} is not of task {task.ref}; give its number (1, 2 …)")
    for trial in services.store.tasks.trials(task.id):
        if text.isascii() and text.isdigit() and trial.number == int(text):
            return trial
    raise InvalidInput(
        f"task {task.ref} has no trial {key!r}; `task show {task.number}` lists them"
    )


def _tip(services: Services, repo: Path, trial: Trial) -> str:
    session = services.store.get_session(trial.session_id)
    return gitops.branch_tip(repo, session.branch) or session.base_commit
