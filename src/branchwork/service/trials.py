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
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import Conflict, InvalidInput, NotFound
from branchwork.domain.events import Event, TrialStarted, TrialStatus, TrialUpdated, utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import Budget
from branchwork.domain.tasks import Task, Trial
from branchwork.domain.text import require_utf8
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


def task_lock(services: Services, task: Task) -> AbstractContextManager[None]:
    """Held to number a task's trials and to promote one, across processes."""
    return gitops.file_lock(services.lock_dir / f"task-{task.id}.lock")


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
    `trial_started` event. The session gets `budget`, else its share of what the task's budget
    has left (`budgets.trial_share`)."""
    project = resolve.get_project(services, task.project_id)
    require_open(services, task)
    _require_utf8_variants([prompt_variant or ""])  # before its session is made
    redact = services.recorder.redactor(project.id).redact
    variant = redact(prompt_variant) if prompt_variant else None
    share = budget if budget is not None else budgets.trial_share(services, task, 1)
    with task_lock(services, task):
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
        trial = services.store.tasks.add_trial(_draft(task, session, model, variant, status))
    _announce(services, session, task, trial, share)
    return trial


def _require_utf8_variants(variants: Sequence[str]) -> None:
    for variant in variants:
        require_utf8(variant, "the prompt variant", "Branchwork records prompts as UTF-8")


def require_open(services: Services, task: Task) -> None:
    """A new trial of a closed task, or of one whose result is chosen, is refused."""
    if task.closed:
        raise Conflict(f"task {task.ref} is closed; reopen it (`task edit {task.number} --open`)")
    promoted = [t for t in services.store.tasks.trials(task.id) if t.status == "promoted"]
    if promoted:
        raise Conflict(
            f"task {task.ref} is done: trial {promoted[0].number} was promoted; "
            "make a new task for more work"
        )


def _draft(
    task: Task, session: Session, model: str | None, variant: str | None, status: TrialStatus
) -> Trial:
    now = utc_now()
    return Trial(
        id=new_id(),
        task_id=task.id,
        number=1,  # the store numbers it
        session_id=session.id,
        model=model,
        prompt_variant=variant,
        status=status,
        created_at=now,
        updated_at=now,
    )


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
    _require_utf8_variants(variants)  # before the first trial's session is made
    project = resolve.get_project(services, task.project_id)
    for model in {m for m, _ in planned if m}:
        check_defaults(None, model)
    base = gitops.resolve_commit(repo_path(project), project.main_branch)
    require_open(services, task)
    share = budgets.trial_share(services, task, len(planned))
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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # it may hold errors
    with os.fdopen(fd, "ab") as log:
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
    """Change the trial's status (unless it is in `unless`), recorded in its session. The
    detail (often an error's message) is redacted like the history."""
    session = services.store.get_session(trial.session_id)
    detail = services.recorder.redactor(session.project_id).redact(detail)[:500]
    changed = services.store.tasks.update_trial(
        trial.id, utc_now(), unless=unless, status=status, detail=detail
    )
    if changed is not None and (trial.status, trial.detail) != (status, detail):
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
    set_status(services, trial, status, detail)


def find_trial(services: Services, project: Project | None, key: str) -> Trial:
    """A trial by `TASK.N` (`3.2`, `#3.2`, in `project`), by id, or by its session (id, short
    id, branch)."""
    text = key.strip().removeprefix("#")
    task_part, dot, number = text.partition(".")
    if dot and _is_number(number):
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
    try:
        session = resolve.find_session(services, text)
    except NotFound:
        raise NotFound(
            f"no trial {key!r}; name one as TASK.N (such as 1.2), by its id or by its session"
        ) from None
    of_session = services.store.tasks.trial_of_session(session.id)
    if of_session is None:
        raise NotFound(f"session {session.short_id} is not a trial of any task")
    return of_session


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9


def refresh(services: Services, trials: list[Trial]) -> list[Trial]:
    """The trials, with those whose worker died while queued or running marked failed."""
    return [_refreshed(services, t) for t in trials]


ORPHAN_AFTER_S = 30  # a queued trial whose worker never said it started, after this long


def _refreshed(services: Services, trial: Trial) -> Trial:
    if trial.status not in ACTIVE or _turn_running(services, trial):
        return trial
    if trial.pid is None:
        if trial.status != "queued" or _age_s(trial) < ORPHAN_AFTER_S:
            return trial  # a trial a person works on by hand, or a worker being started
        detail = "its worker never started (the process starting it stopped); `trial retry` it"
    elif trial.host != this_host() or not process_is_gone(trial.pid, trial.host):
        return trial
    else:
        detail = f"its worker (process {trial.pid}) ended without finishing"
    return set_status(services, trial, "failed", detail) or services.store.tasks.trial(trial.id)


def _age_s(trial: Trial) -> float:
    return (utc_now() - trial.updated_at).total_seconds()


def _turn_running(services: Services, trial: Trial) -> bool:
    lease = services.store.get_lease(trial.session_id)
    return lease is not None and not process_is_gone(int(lease["pid"]), lease["host"])


def busy(services: Services, trial: Trial) -> bool:
    """Whether the trial is working now: waiting for a slot or running a turn (a trial a
    person works on by hand is busy only during a turn)."""
    if trial.status not in ACTIVE:
        return False
    if _turn_running(services, trial):
        return True
    return trial.pid is not None and not process_is_gone(trial.pid, trial.host or this_host())


def stop_trial(services: Services, trial: Trial, *, kill: bool = False) -> Trial:
    """Stop a queued or running trial: a queued one never starts, a running one's turn is
    cancelled (recorded as `cancelled`; the trial is `failed`, detail "stopped")."""
    if trial.status not in ACTIVE:
        raise Conflict(f"trial {trial.number} is {trial.status}, not running; nothing to stop")
    was_queued = trial.status == "queued"
    stopped = set_status(services, trial, "failed", "stopped", unless=("promoted", "discarded"))
    services.store.request_cancel(trial.session_id)
    if (was_queued or kill) and trial.pid is not None and trial.host == this_host():
        _signal(trial.pid)
    return stopped or services.store.tasks.trial(trial.id)


def _signal(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)  # the worker leads its own process group


def retry_trial(services: Services, trial: Trial) -> Trial:
    """A new attempt with the same model and prompt variant, from the same base commit; the
    trial retried stays as it was, for comparison."""
    if busy(services, trial):
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
