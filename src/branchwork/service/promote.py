"""Promote: one trial becomes the task's result; the others are discarded — their worktrees
freed, their branches and histories kept (`session restore` brings one back) — and the
promoted trial's work is proposed for main (its proposal opened, see `proposals.py`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from branchwork import gitops
from branchwork.domain.errors import BranchworkError, Conflict
from branchwork.domain.events import Promoted
from branchwork.domain.proposals import Proposal
from branchwork.domain.tasks import Task, Trial
from branchwork.service import proposals, resolve, sessions, trials
from branchwork.service.base import Services
from branchwork.service.scope import open_scope, repo_path


@dataclass(frozen=True)
class Promotion:
    """What `promote` did. `proposal`: the promoted trial's proposal for main (None, with
    `proposal_error` saying why, when it could not be opened: the promotion stands)."""

    task: Task
    promoted: Trial
    discarded: list[Trial]
    head: str
    proposal: Proposal | None = None
    proposal_error: str = ""


def promote(services: Services, trial: Trial) -> Promotion:
    """Mark `trial` promoted and every other trial of its task discarded. Everything is checked
    before anything changes, under the task's lock: refused while another trial works (stop
    it, or wait), when one is promoted already, or when a discarded one's session cannot be
    archived now (a command runs in it)."""
    task = services.store.tasks.task_by_id(trial.task_id)
    with trials.task_lock(services, task):
        found = trials.refresh(services, services.store.tasks.trials(task.id))
        chosen = next(t for t in found if t.id == trial.id)
        others = [t for t in found if t.id != trial.id]
        _check(services, chosen, others)
        discarded = [_discard(services, t, chosen) for t in others if t.status != "discarded"]
        session = services.store.get_session(chosen.session_id)
        repo = repo_path(resolve.get_project(services, task.project_id))
        head = gitops.branch_tip(repo, session.branch) or session.base_commit
        promoted = trials.set_status(services, chosen, "promoted", unless=("discarded",))
        services.recorder.record(
            session,
            Promoted(
                trial_id=chosen.id, task_id=task.id, head=head, discarded=[t.id for t in discarded]
            ),
            "user",
        )
    done = Promotion(task=task, promoted=promoted or chosen, discarded=discarded, head=head)
    return _propose(services, done)


def _propose(services: Services, done: Promotion) -> Promotion:
    session = services.store.get_session(done.promoted.session_id)
    title = f"Task {done.task.ref}: {done.task.title}"
    try:
        return replace(done, proposal=proposals.propose(services, session, title=title))
    except BranchworkError as exc:
        return replace(done, proposal_error=exc.message)


def _check(services: Services, trial: Trial, others: list[Trial]) -> None:
    if trials.busy(services, trial):
        raise Conflict(
            f"trial {trial.number} is still {trial.status}; wait for it or stop it "
            f"(`trial stop`), then promote"
        )
    winner = next((o for o in others if o.status == "promoted"), None)
    if winner is not None:
        raise Conflict(f"trial {winner.number} of this task is promoted already")
    if trial.status == "discarded":
        raise Conflict(
            f"trial {trial.number} was discarded; `trial retry` or `session fork --trial` "
            "starts a new attempt from it"
        )
    for other in others:
        if trials.busy(services, other):
            raise Conflict(
                f"trial {other.number} is still {other.status}; stop it (`trial stop`) or "
                "wait for it, then promote"
            )
        session = services.store.get_session(other.session_id)
        if session.status == "active":
            sessions.refuse_if_busy(open_scope(services, session, worktree=False))


def _discard(services: Services, trial: Trial, winner: Trial) -> Trial:
    session = services.store.get_session(trial.session_id)
    if session.status == "active":
        sessions.archive_session(services, session)
    detail = f"trial {winner.number} was promoted"
    _close_proposal(services, session.id, detail)
    return trials.set_status(services, trial, "discarded", detail, unless=()) or trial


def _close_proposal(services: Services, session_id: str, reason: str) -> None:
    """A discarded trial's open proposal is closed: left open, it could still be approved and
    merged, alongside the promoted trial's, into main."""
    found = services.store.proposals.open_for_session(session_id)
    if found is not None:
        proposals.close(proposals.open_proposal_scope(services, found), f"discarded: {reason}")
