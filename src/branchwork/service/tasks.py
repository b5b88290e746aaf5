"""Use cases of tasks: create, find, list, edit, comment, close. A task's trials are in
`trials.py`; its status follows them (`domain.tasks.task_status`).

Titles, descriptions and comments are redacted like the history (they are shown and sent to
models); the check command is kept as written, since it must run.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.domain.events import utc_now
from branchwork.domain.ids import new_id
from branchwork.domain.models import Project
from branchwork.domain.replay import Budget, Spent
from branchwork.domain.tasks import (
    PRIORITIES,
    TASK_STATUSES,
    Task,
    TaskComment,
    TaskStatus,
    Trial,
    task_status,
)
from branchwork.service.base import Services
from branchwork.service.state import session_state


@dataclass(frozen=True)
class TrialFigures:
    """What one trial's session spent: turns, tokens, cost, wall time of its turns."""

    trial: Trial
    turns: int
    spent: Spent


@dataclass(frozen=True)
class TaskDetails:
    """A task with its status, trials (and what each spent), comments and totals."""

    task: Task
    status: TaskStatus
    trials: list[TrialFigures]
    comments: list[TaskComment]
    total: Spent


@dataclass(frozen=True)
class TaskSummary:
    task: Task
    status: TaskStatus
    trials: int


def new_task(
    services: Services,
    project: Project,
    title: str,
    *,
    description: str = "",
    check: str | None = None,
    labels: tuple[str, ...] | list[str] = (),
    priority: str = "normal",
    budget: Budget | None = None,
) -> Task:
    """A new task of the project, numbered after its last one."""
    redact = services.recorder.redactor(project.id).redact
    now = utc_now()
    draft = Task.model_validate(
        {
            "id": new_id(),
            "project_id": project.id,
            "number": 1,
            "title": redact(_required(title, "a task needs an objective")),
            "description": redact(_text(description)),
            "check_command": _check(check),
            "labels": [redact(label) for label in _labels(labels)],
            "priority": _priority(priority),
            "budget": budget or Budget(),
            "created_at": now,
            "updated_at": now,
        }
    )
    return services.store.tasks.add_task(draft)


def find_task(services: Services, project: Project, key: str | int | Task) -> Task:
    """A task by number (`3` or `#3`) in the project, or by id."""
    if isinstance(key, Task):
        return key
    text = str(key).strip().removeprefix("#")
    if text.isascii() and text.isdigit() and len(text) <= 9:
        found = services.store.tasks.task(project.id, int(text))
        if found is not None:
            return found
        raise NotFound(f"no task #{text} in project {project.name}; `task list` shows them")
    try:
        task = services.store.tasks.task_by_id(text.upper())
    except NotFound:
        raise NotFound(
            f"no task {key!r}; name it by its number (#3) or id — `task list` shows them"
        ) from None
    if task.project_id != project.id:
        raise NotFound(f"task {key!r} belongs to another project; name that project")
    return task


def list_tasks(
    services: Services, project: Project, *, status: str | None = None
) -> list[TaskSummary]:
    """The project's tasks with their status, optionally only those in `status`."""
    if status is not None and status not in TASK_STATUSES:
        raise InvalidInput(f"unknown task status {status!r}; use one of {', '.join(TASK_STATUSES)}")
    trials: dict[str, list[Trial]] = {}
    for trial in services.store.tasks.project_trials(project.id):
        trials.setdefault(trial.task_id, []).append(trial)
    summaries = [
        TaskSummary(t, task_status(t, trials.get(t.id, [])), len(trials.get(t.id, [])))
        for t in services.store.tasks.tasks(project.id)
    ]
    return [s for s in summaries if status is None or s.status == status]


def task_details(services: Services, task: Task) -> TaskDetails:
    trials = services.store.tasks.trials(task.id)
    figures = [trial_figures(services, t) for t in trials]
    return TaskDetails(
        task=task,
        status=task_status(task, trials),
        trials=figures,
        comments=services.store.tasks.comments(task.id),
        total=sum_spent(f.spent for f in figures),
    )


def trial_figures(services: Services, trial: Trial) -> TrialFigures:
    state = session_state(services.store, trial.session_id)
    return TrialFigures(trial=trial, turns=state.turns, spent=state.usage)


def sum_spent(items: Iterable[Spent]) -> Spent:
    total = Spent()
    for spent in items:
        total += spent
    return total


def edit_task(services: Services, task: Task, **changes: Any) -> Task:
    """Change the given fields (None leaves one as it is; `check=""` removes the check)."""
    redact = services.recorder.redactor(task.project_id).redact
    values: dict[str, Any] = {}
    if changes.get("title") is not None:
        values["title"] = redact(_required(changes["title"], "a task needs an objective"))
    if changes.get("description") is not None:
        values["description"] = redact(_text(changes["description"]))
    if changes.get("check") is not None:
        values["check_command"] = _check(changes["check"])
    if changes.get("labels") is not None:
        values["labels"] = [redact(label) for label in _labels(changes["labels"])]
    if changes.get("priority") is not None:
        values["priority"] = _priority(changes["priority"])
    if changes.get("budget") is not None:
        values["budget"] = changes["budget"]
    if changes.get("closed") is not None:
        values["closed"] = bool(changes["closed"])
    if not values:
        raise InvalidInput("nothing to change; pass what to edit (see `task edit --help`)")
    return services.store.tasks.update_task(task.id, utc_now(), **values)


def comment(services: Services, task: Task, text: str, *, author: str | None = None) -> TaskComment:
    redact = services.recorder.redactor(task.project_id).redact
    added = TaskComment(
        id=new_id(),
        task_id=task.id,
        author=author or _user(),
        text=redact(_required(text, "a comment needs text", MAX_TEXT)),
        created_at=utc_now(),
    )
    services.store.tasks.add_comment(added)
    return added


MAX_TITLE = 200
MAX_TEXT = 20_000


def _required(text: str, message: str, limit: int = MAX_TITLE) -> str:
    if not text or not text.strip():
        raise InvalidInput(message)
    if len(text.strip()) > limit:
        raise InvalidInput(f"at most {limit:,} characters, not {len(text.strip()):,}; shorten it")
    return text.strip()


def _text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"at most {MAX_TEXT:,} characters, not {len(text):,}; shorten it")
    return text


def _check(check: str | None) -> str | None:
    return check.strip() or None if check is not None else None


def _labels(labels: tuple[str, ...] | list[str]) -> list[str]:
    cleaned = [label.strip() for label in labels if label.strip()]
    return list(dict.fromkeys(cleaned))


def _priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise InvalidInput(f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
    return priority


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
