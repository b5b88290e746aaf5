"""Routes of tasks and their trials: list, create, show, edit, comment; start, stop, retry and
promote trials; compare them side by side, and the diff between two; suggested tasks.

Tasks and trials are named by their numbers within the project (`/tasks/3/trials/2` is the
CLI's `3.2`), so a path can only ever reach the project its role was checked in. Reading is
for viewers; everything that changes a task or starts work is for members (a trial is a
session, which members may create and run). Comparing with fresh checks runs the task's check
command in each trial, so that is a member's POST; the viewer's GET shows the last results.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

import branchwork as bw
from branchwork.api.auth import CurrentPrincipal, ProjectMember, ProjectViewer
from branchwork.api.context import ServerContext, context
from branchwork.api.task_schemas import (
    AcceptedOut,
    CommentIn,
    ComparisonOut,
    ProgressOut,
    PromotionOut,
    SuggestIn,
    SuggestionsOut,
    TaskDetailsOut,
    TaskEditIn,
    TaskIn,
    TaskOut,
    TrialsDiffOut,
    TrialsIn,
    comparison_out,
    details_out,
    progress_out,
    promotion_out,
    task_out,
)

router = APIRouter(prefix="/api/projects/{project}/tasks", tags=["tasks"])
suggestions = APIRouter(prefix="/api/projects/{project}/suggestions", tags=["tasks"])
Server = Annotated[ServerContext, Depends(context)]
Number = Annotated[int, Path(ge=1, le=999_999_999, description="Its number in the project.")]
Status = Annotated[
    str | None, Query(pattern="^(open|in_progress|done|closed)$", description="Only these.")
]


def _one(ws: bw.Workspace, project: bw.Project, task: int) -> TaskOut:
    details = ws.task_details(task, project=project)
    return TaskOut(**details.task.model_dump(), status=details.status, trials=len(details.trials))


@router.get("")
def list_tasks(project: ProjectViewer, server: Server, status: Status = None) -> list[TaskOut]:
    """The project's tasks, with the status their trials give them."""
    return [task_out(s) for s in server.ws.tasks(project, status=status)]


@router.post("", status_code=201)
def new_task(project: ProjectMember, body: TaskIn, server: Server) -> TaskOut:
    ws = server.ws
    task = ws.new_task(
        body.title,
        project=project,
        description=body.description,
        check=body.check,
        labels=body.labels,
        priority=body.priority,
    )
    return _one(ws, project, task.number)


@router.get("/{task}")
def show_task(project: ProjectViewer, task: Number, server: Server) -> TaskDetailsOut:
    """The task, its trials with what each spent (and their sessions), its comments, totals."""
    ws = server.ws
    details = ws.task_details(task, project=project)
    sessions = {f.trial.session_id: ws.session(f.trial.session_id) for f in details.trials}
    return details_out(details, sessions)


@router.patch("/{task}")
def edit_task(project: ProjectMember, task: Number, body: TaskEditIn, server: Server) -> TaskOut:
    """Change what is given; `closed` closes or reopens it."""
    ws = server.ws
    ws.edit_task(
        task,
        project=project,
        title=body.title,
        description=body.description,
        check=body.check,
        labels=body.labels,
        priority=body.priority,
        closed=body.closed,
    )
    return _one(ws, project, task)


@router.post("/{task}/comments", status_code=201)
def comment_task(
    project: ProjectMember,
    task: Number,
    body: CommentIn,
    principal: CurrentPrincipal,
    server: Server,
) -> bw.TaskComment:
    return server.ws.comment_task(task, body.text, project=project, author=principal.name)


@router.post("/{task}/trials", status_code=201)
def start_trials(
    project: ProjectMember, task: Number, body: TrialsIn, server: Server
) -> list[bw.Trial]:
    """Start attempts from main's tip, each in its own session, run in the background (at most
    the project's `concurrent_turns` at once). Follow them with GET …/trials or the project's
    stream."""
    return server.ws.start_trials(
        task,
        project=project,
        n=body.n,
        models=server.ws.network_models(body.models),
        prompt_variants=body.prompt_variants,
    )


@router.get("/{task}/trials")
def trial_progress(project: ProjectViewer, task: Number, server: Server) -> list[ProgressOut]:
    """Where each trial is: status, steps, tokens, cost, time, last action."""
    return [progress_out(p) for p in server.ws.trial_progress(task, project=project)]


@router.get("/{task}/trials/{trial}")
def show_trial(project: ProjectViewer, task: Number, trial: Number, server: Server) -> bw.Trial:
    return server.ws.trial(f"{task}.{trial}", project=project)


@router.post("/{task}/trials/{trial}/stop")
def stop_trial(project: ProjectMember, task: Number, trial: Number, server: Server) -> bw.Trial:
    """Cancel its turn (or end its queued worker); the trial becomes `failed`, "stopped"."""
    return server.ws.stop_trial(f"{task}.{trial}", project=project)


@router.post("/{task}/trials/{trial}/retry", status_code=201)
def retry_trial(project: ProjectMember, task: Number, trial: Number, server: Server) -> bw.Trial:
    """A new trial like this one (same model, prompt variant and base); this one stays."""
    return server.ws.retry_trial(f"{task}.{trial}", project=project)


@router.post("/{task}/trials/{trial}/promote")
def promote(project: ProjectMember, task: Number, trial: Number, server: Server) -> PromotionOut:
    """This trial becomes the task's result; the others are discarded (their worktrees freed,
    branches and histories kept)."""
    return promotion_out(server.ws.promote(f"{task}.{trial}", project=project))


@router.get("/{task}/compare")
def compare(project: ProjectViewer, task: Number, server: Server) -> ComparisonOut:
    """The trials side by side with their last check results (none are run)."""
    return comparison_out(server.ws.compare(task, project=project, run_checks=False))


@router.post("/{task}/compare")
def compare_checked(
    project: ProjectMember, task: Number, server: Server, recheck: bool = False
) -> ComparisonOut:
    """The trials side by side, the task's check run where a trial moved since its last one
    (everywhere with `recheck`)."""
    return comparison_out(server.ws.compare(task, project=project, recheck=recheck))


@router.get("/{task}/diff")
def trials_diff(
    project: ProjectViewer,
    task: Number,
    server: Server,
    one: Annotated[int, Query(ge=1, le=999_999_999)],
    other: Annotated[int, Query(ge=1, le=999_999_999)],
) -> TrialsDiffOut:
    """The diff between two trials' branches."""
    text = server.ws.trials_diff(task, str(one), str(other), project=project)
    return TrialsDiffOut(one=one, other=other, diff=text)


@suggestions.post("")
def suggest(project: ProjectMember, body: SuggestIn, server: Server) -> SuggestionsOut:
    """Tasks worth doing, with evidence: TODO/FIXME comments on main, the project's task checks
    that fail there, and the model's proposals when `model` is given. (Checks of one's own
    choosing stay with the CLI's `suggest --check`.) Kept for `accept`."""
    found = server.ws.suggest(project, model=server.ws.network_model(body.model))
    return SuggestionsOut(suggestions=found.suggestions, notes=found.notes)


@suggestions.post("/{number}/accept", status_code=201)
def accept(project: ProjectMember, number: Number, server: Server) -> AcceptedOut:
    """Create the task of suggestion `number` (of the last suggest) and its first trial."""
    task, trial = server.ws.accept_suggestion(number, project=project)
    return AcceptedOut(task=task, trial=trial)
