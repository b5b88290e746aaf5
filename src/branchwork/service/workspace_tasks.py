"""The tasks part of the `Workspace` facade: tasks, trials, comparison, promotion, forks and
suggestions. A mixin of `Workspace` (see there): one facade, kept in files of a readable size.

Tasks are named by number (`3`, `#3`) within the project (named, else the working directory's)
or by id; trials by `TASK.N` (`3.2`), by id, or by their session.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from branchwork._lazy import lazy_module
from branchwork.domain.errors import Cancelled
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import Budget
from branchwork.domain.tasks import Task, TaskComment, Trial
from branchwork.service.refs import ProjectRef, SessionRef

if TYPE_CHECKING:
    from branchwork.service import compare, forks, promote, suggest, tasks, trials
    from branchwork.service.base import Services
    from branchwork.service.compare import Comparison
    from branchwork.service.promote import Promotion
    from branchwork.service.suggest import Suggestions
    from branchwork.service.tasks import TaskDetails, TaskSummary
    from branchwork.service.trials import TrialProgress
else:
    compare = lazy_module("branchwork.service.compare")
    forks = lazy_module("branchwork.service.forks")
    promote = lazy_module("branchwork.service.promote")
    suggest = lazy_module("branchwork.service.suggest")
    tasks = lazy_module("branchwork.service.tasks")
    trials = lazy_module("branchwork.service.trials")

TaskRef = Task | str | int
TrialRef = Trial | str


class TaskMethods:
    """Use cases of tasks and trials, on `Workspace`."""

    if TYPE_CHECKING:
        _services: Services

        def project(self, ref: ProjectRef = None) -> Project: ...
        def session(self, ref: SessionRef = None) -> Session: ...

    # -- tasks ------------------------------------------------------------------------------

    def new_task(
        self,
        title: str,
        *,
        project: ProjectRef = None,
        description: str = "",
        check: str | None = None,
        labels: Sequence[str] = (),
        priority: str = "normal",
        budget: Budget | None = None,
    ) -> Task:
        """A new task: the objective, how to check an attempt, labels, priority, and a budget
        its trials share."""
        return tasks.new_task(
            self._services,
            self.project(project),
            title,
            description=description,
            check=check,
            labels=list(labels),
            priority=priority,
            budget=budget,
        )

    def task(self, ref: TaskRef, *, project: ProjectRef = None) -> Task:
        if isinstance(ref, Task):
            return self._services.store.tasks.task_by_id(ref.id)
        return tasks.find_task(self._services, self.project(project), ref)

    def tasks(self, project: ProjectRef = None, *, status: str | None = None) -> list[TaskSummary]:
        """The project's tasks with their status (open, in_progress, done, closed)."""
        return tasks.list_tasks(self._services, self.project(project), status=status)

    def task_details(self, ref: TaskRef, *, project: ProjectRef = None) -> TaskDetails:
        """The task, its status, its trials with what each spent, its comments and totals."""
        task = self.task(ref, project=project)
        trials.refresh(self._services, self._services.store.tasks.trials(task.id))
        return tasks.task_details(self._services, task)

    def edit_task(
        self,
        ref: TaskRef,
        *,
        project: ProjectRef = None,
        title: str | None = None,
        description: str | None = None,
        check: str | None = None,
        labels: Sequence[str] | None = None,
        priority: str | None = None,
        budget: Budget | None = None,
        closed: bool | None = None,
    ) -> Task:
        """Change what is given (`check=""` removes the check, `closed` closes or reopens)."""
        return tasks.edit_task(
            self._services,
            self.task(ref, project=project),
            title=title,
            description=description,
            check=check,
            labels=None if labels is None else list(labels),
            priority=priority,
            budget=budget,
            closed=closed,
        )

    def comment_task(
        self, ref: TaskRef, text: str, *, project: ProjectRef = None, author: str | None = None
    ) -> TaskComment:
        return tasks.comment(self._services, self.task(ref, project=project), text, author=author)

    # -- trials -----------------------------------------------------------------------------

    def start_task(
        self,
        ref: TaskRef,
        *,
        project: ProjectRef = None,
        model: str | None = None,
        prompt_variant: str | None = None,
    ) -> Trial:
        """Start working on the task by hand: a trial with its own session (made current), in
        which `ask`/`chat` go on; its status follows the turns run in it."""
        task = self.task(ref, project=project)
        return trials.create_trial(
            self._services, task, model=model, prompt_variant=prompt_variant, current=True
        )

    def start_trials(
        self,
        ref: TaskRef,
        *,
        project: ProjectRef = None,
        n: int | None = None,
        models: Sequence[str] = (),
        prompt_variants: Sequence[str] = (),
    ) -> list[Trial]:
        """Start `n` attempts at the task from main's tip, each in its own session, run in the
        background (at most the project's `concurrent_turns` at once; the rest queue). A model
        or prompt variant for all, or one per trial."""
        return trials.start_trials(
            self._services,
            self.task(ref, project=project),
            n=n,
            models=models,
            variants=prompt_variants,
        )

    def trial(self, ref: TrialRef, *, project: ProjectRef = None) -> Trial:
        if isinstance(ref, Trial):
            found = self._services.store.tasks.trial(ref.id)
        else:  # only `TASK.N` needs the project
            where = self.project(project) if project is not None or "." in ref else None
            found = trials.find_trial(self._services, where, ref)
        return trials.refresh(self._services, [found])[0]

    def trial_progress(self, ref: TaskRef, *, project: ProjectRef = None) -> list[TrialProgress]:
        """Where each trial of the task is: status, steps, tokens, cost, time, last action."""
        return trials.progress(self._services, self.task(ref, project=project))

    def wait_for_trials(
        self, ref: TaskRef, *, project: ProjectRef = None, timeout: float | None = None
    ) -> list[Trial]:
        """Wait until no trial of the task works (queued, or running a turn); `Cancelled` after
        `timeout`. Returns the task's trials."""
        task = self.task(ref, project=project)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = trials.refresh(self._services, self._services.store.tasks.trials(task.id))
            if not any(trials.busy(self._services, t) for t in found):
                return found
            if deadline is not None and time.monotonic() > deadline:
                raise Cancelled(f"trials of task {task.ref} still running after {timeout} s")
            time.sleep(0.2)

    def stop_trial(self, ref: TrialRef, *, project: ProjectRef = None) -> Trial:
        return trials.stop_trial(self._services, self.trial(ref, project=project))

    def retry_trial(self, ref: TrialRef, *, project: ProjectRef = None) -> Trial:
        """A new attempt like the one given (same model, prompt variant and base)."""
        return trials.retry_trial(self._services, self.trial(ref, project=project))

    def trial_log(self, ref: TrialRef, *, project: ProjectRef = None) -> str:
        """What the trial's background worker printed ("" when it printed nothing)."""
        path = trials.log_path(self._services, self.trial(ref, project=project))
        return path.read_text(errors="replace") if path.exists() else ""

    def compare(
        self,
        ref: TaskRef,
        *,
        project: ProjectRef = None,
        run_checks: bool = True,
        recheck: bool = False,
    ) -> Comparison:
        """The task's trials side by side, each with the task's check (run again only where
        the trial moved since, or everywhere with `recheck`)."""
        task = self.task(ref, project=project)
        return compare.compare(self._services, task, run_checks=run_checks, recheck=recheck)

    def trials_diff(self, ref: TaskRef, one: str, other: str, *, project: ProjectRef = None) -> str:
        """The diff between two trials' branches (trial numbers within the task)."""
        return compare.trials_diff(self._services, self.task(ref, project=project), one, other)

    def promote(self, ref: TrialRef, *, project: ProjectRef = None) -> Promotion:
        """The trial becomes the task's result; the others are discarded (worktrees freed,
        branches and histories kept)."""
        return promote.promote(self._services, self.trial(ref, project=project))

    # -- forks ------------------------------------------------------------------------------

    def fork_session(
        self,
        ref: SessionRef = None,
        *,
        at: str | None = None,
        title: str | None = None,
        as_trial: bool = False,
        current: bool = True,
    ) -> Session:
        """A new session going on from `ref` at `at` (a checkpoint — sha prefix, `-N`, `base` —
        or an event seq; default: its newest), with the parent's conversation up to there.
        With `as_trial`, a new trial of the parent's task. It becomes its project's current
        session unless not `current`."""
        return forks.fork_session(
            self._services,
            self.session(ref),
            at=at,
            title=title,
            as_trial=as_trial,
            current=current,
        )

    # -- suggestions ------------------------------------------------------------------------

    def suggest(
        self, project: ProjectRef = None, *, checks: Sequence[str] = (), model: str | None = None
    ) -> Suggestions:
        """Tasks worth doing, with evidence: TODO/FIXME comments, failing checks, and the
        model's proposals when a model is given."""
        return suggest.suggest(
            self._services, self.project(project), checks_to_run=checks, model=model
        )

    def accept_suggestion(self, number: int, *, project: ProjectRef = None) -> tuple[Task, Trial]:
        """Create the task of suggestion `number` (of the last `suggest`) and its first trial."""
        return suggest.accept(self._services, self.project(project), number)
