"""Promote: one trial becomes the task's result; the others are discarded — their worktrees
freed, their branches and histories kept (`session restore` brings one back)."""

from __future__ import annotations

from dataclasses import dataclass

from branchwork import gitops
from branchwork.domain.errors import Conflict
from branchwork.domain.events import Promoted
from branchwork.domain.tasks import Task, Trial
from branchwork.service import resolve, sessions, trials
from branchwork.service.base import Services
from branchwork.service.scope import repo_path


@dataclass(frozen=True)
class Promotion:
    task: Task
    promoted: Trial
    discarded: list[Trial]
    head: str


def promote(services: Services, trial: Trial) -> Promotion:
    """Mark `trial` promoted and every other live trial of its task discarded. Refused while
    another trial still runs (stop it, or wait), or when one is promoted already."""
    task = services.store.tasks.task_by_id(trial.task_id)
    others = [
        t
        for t in trials.refresh(services, services.store.tasks.trials(task.id))
        if t.id != trial.id
    ]
    _check(trial, others)
    discarded = [_discard(services, t, trial) for t in others if t.status != "discarded"]
    session = services.store.get_session(trial.session_id)
    repo = repo_path(resolve.get_project(services, task.project_id))
    head = gitops.branch_tip(repo, session.branch) or session.base_commit
    promoted = trials.set_status(services, trial, "promoted", unless=()) or trial
    services.recorder.record(
        session,
        Promoted(
            trial_id=trial.id, task_id=task.id, head=head, discarded=[t.id for t in discarded]
        ),
        "user",
    )
    return Promotion(task=task, promoted=promoted, discarded=discarded, head=head)


def _check(trial: Trial, others: list[Trial]) -> None:
    if trial.status in trials.ACTIVE:
        raise Conflict(
            f"trial {trial.number} is still {trial.status}; wait for it or stop it "
            f"(`trial stop`), then promote"
        )
    if trial.status in ("promoted", "discarded"):
        raise Conflict(
            f"trial {trial.number} is {trial.status} already; `trial retry` or `session fork` "
            "starts a new attempt from it"
        )
    for other in others:
        if other.status == "promoted":
            raise Conflict(f"trial {other.number} of this task is promoted already")
        if other.status in trials.ACTIVE:
            raise Conflict(
                f"trial {other.number} is still {other.status}; stop it (`trial stop`) or "
                "wait for it, then promote"
            )


def _discard(services: Services, trial: Trial, winner: Trial) -> Trial:
    session = services.store.get_session(trial.session_id)
    if session.status == "active":
        sessions.archive_session(services, session)
    detail = f"trial {winner.number} was promoted"
    return trials.set_status(services, trial, "discarded", detail) or trial
