"""Use cases of trials: attempts at a task, each in its own session and branch.

`start_trials` creates the trials (queued) with their sessions from one base commit, then runs
each in a background worker process (`trial_runner`): a worker waits for one of the project's
turn slots, then runs one agent turn on the task's objective in its session. A trial's status
follows its session's turns (`before_turn` / `after_turn`, called for every turn, whoever runs
it), and a worker that died is noticed by whoever reads the trial next (`refresh`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import Conflict, InvalidInput, NotFound
from branchwork.domain.events import Event, TrialStarted, TrialStatus, TrialUpdated, utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import Budget
from branchwork.domain.tasks import Task, Trial
from branchwork.sandbox.liveness import process_is_gone, this_host
from branchwork.service import budgets, resolve, tasks
from branchwork.service.base import Services
from branchwork.service.scope import open_scope, repo_path
from branchwork.service.sessions import check_defaults, new_session
from branchwork.service.state import session_state

TRIAL_MODE = "autopilot"  # nobody is there to approve: the sandbox confines what runs
ACTIVE = ("queued", "running")
KEEP = ("promoted", "discarded")  # statuses a turn's outcome never overwrites
MAX_TRIALS = 16


@dataclass(frozen=True)
class TrialProgress:
    """One line of the live view of a task's trials."""

    trial: Trial
    session: Session
    steps: int
    tokens: int
    cost_usd: float
    elapsed_s: float
    last_action: str


def plan(
    n: int | None, models: Sequence[str], variants: Sequence[str]
) -> list[tuple[str | None, str | None]]:
    """The (model, prompt variant) of each trial to start: one model/variant for all, or one
    per trial."""
    count = n if n is not None else max(len(models), len(variants), 1)
    if not 1 <= count <= MAX_TRIALS:
        raise InvalidInput(f"start between 1 and {MAX_TRIALS} trials at once, not {count}")
    for name, given in (("--model", models), ("--prompt-variant", variants)):
        if len(given) not in (0, 1, count):
            raise InvalidInput(
                f"{len(given)} {name} values for {count} trials; give one for all, or one each"
            )
    return [(_pick(models, i), _pick(variants, i)) for i in range(count)]


def _pick(values: Sequence[str], i: int) -> str | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values[i]


def create_trial(
    services: Services,
    task: Task,
    *,
    model: str | None = None,
    prompt_variant: str | None = None,
    base: str | None = None,
    status: TrialStatus = "running",
    budget: Budget | None = None,
    session: Session | None = None,
    current: bool = False,
) -> Trial:
    """A trial of `task` with its own session (new, from `base`, or the one given), linked by a
    `trial_started` event; the session gets the trial's share of the task budget."""
    project = resolve.get_project(services, task.project_id)
    if task.closed:
        raise Conflict(f"task {task.ref} is closed; reopen it (`task edit {task.number} --open`)")
    number = services.store.tasks.next_trial_number(task.id)
    if session is None:
        session = new_session(
            services,
            project,
            title=f"task {task.number} trial {number} {task.title}"[:80],
            from_ref=base,
            mode=TRIAL_MODE,
            model=model,
            current=current,
        )
    now = utc_now()
    draft = Trial(
        id=new_id(),
        task_id=task.id,
        number=number,
        session_id=session.id,
        model=model,
        prompt_variant=prompt_variant,
        status=status,
        created_at=now,
        updated_at=now,
    )
    trial = services.store.tasks.add_trial(draft)
    _announce(services, session, task, trial, budget)
    return trial


def _announce(
    services: Services, session: Session, task: Task, trial: Trial, budget: Budget | None
) -> None:
    scope = open_scope(services, session, worktree=False)
    scope.record(
        TrialStarted(
            task_id=task.id,
            task_number=task.number,
            trial_id=trial.id,
            trial_number=trial.number,
            objective=task.title,
            model=trial.model,
            prompt_variant=trial.prompt_variant,
        )
    )
    if budget is not None and budget != Budget():
        budgets.set_budget(scope, budget)


def budget_share(services: Services, task: Task, new_trials: int) -> Budget | None:
    """Each new trial's part of what the task's budget has left: the rest split evenly."""
    limit = task.budget
    if limit == Budget():
        return None
    spent = tasks.sum_spent(
        tasks.trial_figures(services, t).spent
        for t in services.store.tasks.trials(task.id)
        if t.status != "discarded"
    )
    left_tokens = None if limit.tokens is None else max(1, limit.tokens - spent.tokens)
    left_cost = None if limit.cost_usd is None else max(1e-6, limit.cost_usd - spent.cost_usd)
    left_s = None if limit.seconds is None else max(1.0, limit.seconds - spent.turn_ms / 1000)
    return Budget(
        tokens=None if left_tokens is None else max(1, left_tokens // new_trials),
        cost_usd=None if left_cost is None else left_cost / new_trials,
        seconds=None if left_s is None else left_s / new_trials,
    )


def start_trials(
    services: Services,
    task: Task,
    *,
    n: int | None = None,
    models: Sequence[str] = (),
    variants: Sequence[str] = (),
) -> list[Trial]:
    """Start attempts at the task, from main's tip now, each run by a background worker."""
    planned = plan(n, models, variants)
    project = resolve.get_project(services, task.project_id)
    for model in {m for m, _ in planned if m}:
        check_defaults(None, model)
    base = gitops.resolve_commit(repo_path(project), project.main_branch)
    share = budget_share(services, task, len(planned))
    return [  # each starts working while the next one's session is made
        spawn_worker(
            services,
            create_trial(
                services, task, model=m, prompt_variant=v, base=base, status="queued", budget=share
            ),
        )
        for m, v in planned
    ]


def log_path(services: Services, trial: Trial) -> Path:
    """Where the trial's worker writes what it prints (errors it could not record included)."""
    return services.home / "trials" / f"{trial.id}.log"


def spawn_worker(services: Services, trial: Trial) -> Trial:
    """Run the trial in a detached process (it outlives this one); its output goes to a log."""
    path = log_path(services, trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "branchwork.service.trial_runner", trial.id],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    assert worker.stdin is not None
    worker.stdin.write(services.settings.model_dump_json().encode())
    worker.stdin.close()
    # Reaped when it ends if this process lives that long (a server); else it is adopted.
    threading.Thread(target=worker.wait, name=f"reap-{worker.pid}", daemon=True).start()
    updated = services.store.tasks.update_trial(
        trial.id, utc_now(), unless=KEEP, pid=worker.pid, host=this_host()
    )
    return updated or trial


def set_status(
    services: Services,
    trial: Trial,
    status: TrialStatus,
    detail: str = "",
    *,
    unless: Sequence[str] = KEEP,
) -> Trial | None:
    """Change the trial's status (unless it is in `unless`), recorded in its session."""
    changed = services.store.tasks.update_trial(
        trial.id, utc_now(), unless=unless, status=status, detail=detail
    )
    if changed is not None and (trial.status, trial.detail) != (status, detail):
        session = services.store.get_session(trial.session_id)
        services.recorder.record(
            session, TrialUpdated(trial_id=trial.id, status=status, detail=detail)
        )
    return changed


def before_turn(services: Services, session: Session) -> None:
    """A turn starts in the session: its trial, if it has one, is running."""
    trial = services.store.tasks.trial_of_session(session.id)
    if trial is not None and trial.status != "running":
        set_status(services, trial, "running")


def after_turn(services: Services, session: Session, outcome: str, detail: str = "") -> None:
    """A turn ended (`outcome`: its status, or `error`): the trial's status follows."""
    trial = services.store.tasks.trial_of_session(session.id)
    if trial is None:
        return
    status: TrialStatus = {"completed": "done", "stuck": "stuck"}.get(outcome, "failed")  # type: ignore[assignment]
    if status == "failed" and not detail:
        detail = {"cancelled": "stopped"}.get(outcome, f"turn ended: {outcome}")
    set_status(services, trial, status, detail[:500])


def find_trial(services: Services, project: Project | None, key: str) -> Trial:
    """A trial by `TASK.N` (`3.2`, `#3.2`, in `project`), by id, or by its session (id, short
    id, branch)."""
    text = key.strip().removeprefix("#")
    task_part, dot, number = text.partition(".")
    if dot and number.isdigit():
        if project is None:
            raise InvalidInput(f"name the project of trial {key!r} (or give the trial's id)")
        task = tasks.find_task(services, project, task_part)
        for trial in services.store.tasks.trials(task.id):
            if trial.number == int(number):
                return trial
        raise NotFound(
            f"task {task.ref} has no trial {number}; `task show {task.number}` lists them"
        )
    try:
        return services.store.tasks.trial(text.upper())
    except NotFound:
        pass
    session = resolve.find_session(services, text)
    of_session = services.store.tasks.trial_of_session(session.id)
    if of_session is None:
        raise NotFound(f"session {session.short_id} is not a trial of any task")
    return of_session


def refresh(services: Services, trials: list[Trial]) -> list[Trial]:
    """The trials, with those whose worker died while queued or running marked failed."""
    return [_refreshed(services, t) for t in trials]


def _refreshed(services: Services, trial: Trial) -> Trial:
    if trial.status not in ACTIVE or trial.pid is None or trial.host != this_host():
        return trial
    if not process_is_gone(trial.pid, trial.host):
        return trial
    lease = services.store.get_lease(trial.session_id)
    if lease is not None and not process_is_gone(int(lease["pid"]), lease["host"]):
        return trial  # a person's turn runs in it
    detail = f"its worker (process {trial.pid}) ended without finishing; see `trial log`"
    return set_status(services, trial, "failed", detail) or services.store.tasks.trial(trial.id)


def stop_trial(services: Services, trial: Trial) -> Trial:
    """Stop a queued or running trial: a queued one never starts, a running one's turn is
    cancelled (it ends with a summary of what it did)."""
    if trial.status not in ACTIVE:
        raise Conflict(f"trial {trial.number} is {trial.status}, not running; nothing to stop")
    was_queued = trial.status == "queued"
    stopped = set_status(services, trial, "failed", "stopped", unless=("promoted", "discarded"))
    services.store.request_cancel(trial.session_id)
    if was_queued and trial.pid is not None and trial.host == this_host():
        _signal(trial.pid)
    return stopped or services.store.tasks.trial(trial.id)


def _signal(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)  # the worker leads its own process group


def retry_trial(services: Services, trial: Trial) -> Trial:
    """A new attempt with the same model and prompt variant, from the same base commit; the
    trial retried stays as it was, for comparison."""
    if trial.status in ACTIVE:
        raise Conflict(
            f"trial {trial.number} is still {trial.status}; stop it first (`trial stop`)"
        )
    task = services.store.tasks.task_by_id(trial.task_id)
    base = services.store.get_session(trial.session_id).base_commit
    again = create_trial(
        services,
        task,
        model=trial.model,
        prompt_variant=trial.prompt_variant,
        base=base,
        status="queued",
        budget=budget_share(services, task, 1),
    )
    return spawn_worker(services, again)


def objective(task: Task, trial: Trial) -> str:
    """What the agent is asked: the task, the trial's prompt variant, and how it is checked."""
    parts = [f"Task #{task.number}: {task.title}"]
    if task.description:
        parts.append(task.description)
    if trial.prompt_variant:
        parts.append(trial.prompt_variant)
    if task.check_command:
        parts.append(f"The work is checked with `{task.check_command}`; make it pass.")
    return "\n\n".join(parts)


def progress(services: Services, task: Task) -> list[TrialProgress]:
    """Where each of the task's trials is: steps, tokens, cost, time, last action."""
    found = refresh(services, services.store.tasks.trials(task.id))
    return [_progress(services, t) for t in found]


def _progress(services: Services, trial: Trial) -> TrialProgress:
    session = services.store.get_session(trial.session_id)
    state = session_state(services.store, trial.session_id)
    recent = services.store.tail_events(trial.session_id, limit=1, kinds=_ACTIONS)
    elapsed = state.usage.turn_ms / 1000
    if state.open_turn is not None:
        started = services.store.tail_events(trial.session_id, limit=1, kinds=["turn_started"])
        elapsed += max(0.0, (utc_now() - started[0].ts).total_seconds()) if started else 0.0
    return TrialProgress(
        trial=trial,
        session=session,
        steps=state.usage.model_calls,
        tokens=state.usage.tokens,
        cost_usd=state.usage.cost_usd,
        elapsed_s=elapsed,
        last_action=describe_action(recent[0]) if recent else "",
    )


_ACTIONS = ["tool_call", "command_started", "agent_message", "file_written", "check_run"]


def describe_action(event: Event) -> str:
    """A short line for an event: what the agent last did."""
    p = event.payload
    text = getattr(p, "name", None) or getattr(p, "command", None) or getattr(p, "path", None)
    if text is None:
        text = getattr(p, "text", "") or getattr(p, "check", "")
    if event.kind == "tool_call":
        text = f"{text}({json.dumps(getattr(p, 'arguments', {}))[:60]})"
    return f"{event.kind.replace('_', ' ')}: {str(text).splitlines()[0][:80] if text else ''}"
