"""Tasks, their comments and trials: rows of the store, each method one transaction.

Numbers (task #3, its trial 2) are given out inside the inserting transaction, so that two
processes adding at once never get the same one.
"""
# The SQL strings are built only from this module's constants and field names checked against
# fixed sets (S608 sees f-strings); every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from branchwork.domain.errors import NotFound
from branchwork.domain.replay import Budget
from branchwork.domain.tasks import Task, TaskComment, Trial
from branchwork.store.executor import Executor, Row
from branchwork.store.rows import Codec

T = TypeVar("T")

TASK_COLUMNS = (
    "id",
    "project_id",
    "number",
    "title",
    "description",
    "check_command",
    "labels",
    "priority",
    "closed",
    "budget",
    "created_at",
    "updated_at",
)
TRIAL_COLUMNS = (
    "id",
    "task_id",
    "number",
    "session_id",
    "model",
    "prompt_variant",
    "status",
    "detail",
    "pid",
    "host",
    "created_at",
    "updated_at",
)
COMMENT_COLUMNS = ("id", "task_id", "author", "text", "created_at")
_TRIAL_FIELDS = frozenset(("status", "detail", "pid", "host", "updated_at"))
_TASK_FIELDS = frozenset(
    ("title", "description", "check_command", "labels", "priority", "closed", "budget")
)


def _cols(names: Sequence[str]) -> str:
    return ", ".join(names)


def _params(names: Sequence[str]) -> str:
    return ", ".join(f":{n}" for n in names)


_NEXT_TASK = "SELECT COALESCE(MAX(number), 0) + 1 FROM tasks WHERE project_id = :pid"
_NEXT_TRIAL = "SELECT COALESCE(MAX(number), 0) + 1 FROM trials WHERE task_id = :tid"
_INSERT_TASK = f"INSERT INTO tasks ({_cols(TASK_COLUMNS)}) VALUES ({_params(TASK_COLUMNS)})"
_INSERT_TRIAL = f"INSERT INTO trials ({_cols(TRIAL_COLUMNS)}) VALUES ({_params(TRIAL_COLUMNS)})"
_INSERT_COMMENT = (
    f"INSERT INTO task_comments ({_cols(COMMENT_COLUMNS)}) VALUES ({_params(COMMENT_COLUMNS)})"
)
_TASK_SELECT = f"SELECT {_cols(TASK_COLUMNS)} FROM tasks"
_TRIAL_SELECT = f"SELECT {_cols(TRIAL_COLUMNS)} FROM trials"
_TASK_BY_NUMBER = f"{_TASK_SELECT} WHERE project_id = :pid AND number = :n"
_TASK_BY_ID = f"{_TASK_SELECT} WHERE id = :id"
_TASKS_OF = f"{_TASK_SELECT} WHERE project_id = :pid ORDER BY number"
_TRIALS_OF = f"{_TRIAL_SELECT} WHERE task_id = :tid ORDER BY number"
_TRIALS_OF_PROJECT = (
    f"{_TRIAL_SELECT} WHERE task_id IN (SELECT id FROM tasks WHERE project_id = :pid) "
    "ORDER BY task_id, number"
)
_TRIAL_BY_ID = f"{_TRIAL_SELECT} WHERE id = :id"
_TRIAL_OF_SESSION = f"{_TRIAL_SELECT} WHERE session_id = :sid"
_COMMENTS_OF = (
    f"SELECT {_cols(COMMENT_COLUMNS)} FROM task_comments WHERE task_id = :tid "
    "ORDER BY created_at, id"
)


class TaskRecords:
    """The tasks part of the store (`Store.tasks`)."""

    def __init__(self, executor: Executor, codec: Codec) -> None:
        self._executor = executor
        self._codec = codec

    # -- tasks ------------------------------------------------------------------------------

    def add_task(self, draft: Task) -> Task:
        """Insert `draft` with the project's next number."""
        with self._executor.write() as tx:
            (row,) = tx.rows(_NEXT_TASK, {"pid": draft.project_id})
            task = draft.model_copy(update={"number": int(row[0])})
            tx.run(_INSERT_TASK, self._task_params(task))
        return task

    def task(self, project_id: str, number: int) -> Task | None:
        return self._one(_TASK_BY_NUMBER, {"pid": project_id, "n": number}, self._task)

    def task_by_id(self, task_id: str) -> Task:
        found = self._one(_TASK_BY_ID, {"id": task_id}, self._task)
        if found is None:
            raise NotFound(f"no task {task_id!r}; `task list` shows them")
        return found

    def tasks(self, project_id: str) -> list[Task]:
        with self._executor.read() as tx:
            return [self._task(r) for r in tx.rows(_TASKS_OF, {"pid": project_id})]

    def update_task(self, task_id: str, now: datetime, **values: Any) -> Task:
        unknown = set(values) - _TASK_FIELDS
        if unknown:
            raise ValueError(f"not a task field: {', '.join(sorted(unknown))}")
        params = self._task_params(self.task_by_id(task_id).model_copy(update=values))
        params["updated_at"] = self._codec.param(now)
        assignments = ", ".join(f"{k} = :{k}" for k in (*values, "updated_at"))
        with self._executor.write() as tx:
            tx.run(f"UPDATE tasks SET {assignments} WHERE id = :id", params)
        return self.task_by_id(task_id)

    # -- comments ---------------------------------------------------------------------------

    def add_comment(self, comment: TaskComment) -> None:
        params = comment.model_dump()
        params["created_at"] = self._codec.param(comment.created_at)
        with self._executor.write() as tx:
            tx.run(_INSERT_COMMENT, params)

    def comments(self, task_id: str) -> list[TaskComment]:
        with self._executor.read() as tx:
            found = tx.rows(_COMMENTS_OF, {"tid": task_id})
        return [self._comment(r) for r in found]

    # -- trials -----------------------------------------------------------------------------

    def add_trial(self, draft: Trial) -> Trial:
        """Insert `draft` with the task's next trial number."""
        with self._executor.write() as tx:
            (row,) = tx.rows(_NEXT_TRIAL, {"tid": draft.task_id})
            trial = draft.model_copy(update={"number": int(row[0])})
            tx.run(_INSERT_TRIAL, self._trial_params(trial))
        return trial

    def next_trial_number(self, task_id: str) -> int:
        with self._executor.read() as tx:
            (row,) = tx.rows(_NEXT_TRIAL, {"tid": task_id})
        return int(row[0])

    def trial(self, trial_id: str) -> Trial:
        found = self._one(_TRIAL_BY_ID, {"id": trial_id}, self._trial)
        if found is None:
            raise NotFound(f"no trial {trial_id!r}; `task show TASK` lists its trials")
        return found

    def trials(self, task_id: str) -> list[Trial]:
        with self._executor.read() as tx:
            return [self._trial(r) for r in tx.rows(_TRIALS_OF, {"tid": task_id})]

    def project_trials(self, project_id: str) -> list[Trial]:
        with self._executor.read() as tx:
            return [self._trial(r) for r in tx.rows(_TRIALS_OF_PROJECT, {"pid": project_id})]

    def trial_of_session(self, session_id: str) -> Trial | None:
        return self._one(_TRIAL_OF_SESSION, {"sid": session_id}, self._trial)

    def update_trial(
        self, trial_id: str, now: datetime, *, unless: Sequence[str] = (), **values: Any
    ) -> Trial | None:
        """Set fields of the trial; None (and nothing changed) when its status is one of
        `unless` — so that a stopped or promoted trial is not overwritten by a late worker."""
        unknown = set(values) - _TRIAL_FIELDS
        if unknown:
            raise ValueError(f"not a trial field: {', '.join(sorted(unknown))}")
        params = {**values, "id": trial_id, "updated_at": self._codec.param(now)}
        assignments = ", ".join(f"{k} = :{k}" for k in (*values, "updated_at"))
        guard = ""
        if unless:
            guard = " AND status NOT IN (" + ", ".join(f":u{i}" for i in range(len(unless))) + ")"
            params.update({f"u{i}": s for i, s in enumerate(unless)})
        with self._executor.write() as tx:
            changed = tx.run(f"UPDATE trials SET {assignments} WHERE id = :id{guard}", params)
        return self.trial(trial_id) if changed else None

    # -- rows -------------------------------------------------------------------------------

    def _one(self, query: str, params: dict[str, Any], convert: Callable[[Row], T]) -> T | None:
        with self._executor.read() as tx:
            found = tx.rows(query, params)
        return convert(found[0]) if found else None

    def _task_params(self, task: Task) -> dict[str, Any]:
        data = task.model_dump(exclude={"budget", "labels"})
        data["labels"] = json.dumps(task.labels)
        data["budget"] = task.budget.model_dump_json(exclude_none=True)
        data["closed"] = bool(task.closed)
        data["created_at"] = self._codec.param(task.created_at)
        data["updated_at"] = self._codec.param(task.updated_at)
        return data

    def _task(self, row: Row) -> Task:
        data = dict(zip(TASK_COLUMNS, row, strict=True))
        data["labels"] = json.loads(data["labels"])
        data["budget"] = Budget.model_validate_json(data["budget"])
        data["closed"] = bool(data["closed"])
        data["created_at"] = self._codec.value(data["created_at"])
        data["updated_at"] = self._codec.value(data["updated_at"])
        return Task.model_validate(data)

    def _trial_params(self, trial: Trial) -> dict[str, Any]:
        data = trial.model_dump()
        data["created_at"] = self._codec.param(trial.created_at)
        data["updated_at"] = self._codec.param(trial.updated_at)
        return data

    def _trial(self, row: Row) -> Trial:
        data = dict(zip(TRIAL_COLUMNS, row, strict=True))
        data["created_at"] = self._codec.value(data["created_at"])
        data["updated_at"] = self._codec.value(data["updated_at"])
        return Trial.model_validate(data)

    def _comment(self, row: Row) -> TaskComment:
        data = dict(zip(COMMENT_COLUMNS, row, strict=True))
        data["created_at"] = self._codec.value(data["created_at"])
        return TaskComment.model_validate(data)
