"""Pure data: tasks (objectives), their comments and their trials (attempts, one session each).

A task's status is not stored: it follows its trials (`task_status`), except that a person may
close it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from branchwork.domain.events import TrialStatus
from branchwork.domain.replay import Budget

TaskStatus = Literal["open", "in_progress", "done", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]

TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
PRIORITIES: tuple[str, ...] = get_args(Priority)
TRIAL_STATUSES: tuple[str, ...] = get_args(TrialStatus)
# A trial in one of these has stopped working; the others may still change.
FINISHED_TRIAL_STATUSES = frozenset({"done", "failed", "stuck", "promoted", "discarded"})


class Task(BaseModel):
    """An objective ("Add E2E tests"), numbered per project (#1, #2 …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    project_id: str
    number: int = Field(ge=1)
    title: str
    description: str = ""
    check_command: str | None = Field(
        default=None, description="A command that shows whether an attempt succeeded."
    )
    labels: list[str] = Field(default_factory=list)
    priority: Priority = "normal"
    closed: bool = False
    budget: Budget = Field(
        default_factory=Budget, description="What all its trials may spend, split among them."
    )
    created_at: datetime
    updated_at: datetime

    @property
    def ref(self) -> str:
        return f"#{self.number}"


class TaskComment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    task_id: str
    author: str
    text: str
    created_at: datetime


class Trial(BaseModel):
    """One attempt at a task: a model, maybe a prompt variant, and the session doing the work.
    `pid`/`host`: the process running it in the background, while it is queued or running."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    task_id: str
    number: int = Field(ge=1)
    session_id: str
    model: str | None = None
    prompt_variant: str | None = None
    status: TrialStatus
    detail: str = ""
    pid: int | None = None
    host: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_TRIAL_STATUSES


def task_status(task: Task, trials: Iterable[Trial]) -> TaskStatus:
    """Closed by a person; else done once a trial is promoted; in progress while it has a trial
    that is not discarded; open otherwise."""
    if task.closed:
        return "closed"
    statuses = {t.status for t in trials}
    if "promoted" in statuses:
        return "done"
    if statuses - {"discarded"}:
        return "in_progress"
    return "open"
