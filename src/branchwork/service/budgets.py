"""Budgets: what a session, and all the sessions of a project together, may spend in tokens,
dollars or seconds of turns. A session's budget is an event (`budget_set`, so it comes back with
the session); a project's is its configuration. A turn that reaches one ends as `budget` with a
summary; the next message is refused until the budget is raised or lifted."""

from __future__ import annotations

from branchwork.agent import Limits
from branchwork.domain.errors import Conflict
from branchwork.domain.events import BudgetSet
from branchwork.domain.models import Project
from branchwork.domain.replay import Budget, Spent
from branchwork.domain.tasks import Task
from branchwork.service.base import Services
from branchwork.service.scope import SessionScope
from branchwork.service.state import session_state


def project_budget(project: Project) -> Budget:
    config = project.config
    return Budget(
        tokens=config.budget_tokens, cost_usd=config.budget_cost_usd, seconds=config.budget_seconds
    )


def project_spent(services: Services, project: Project) -> Spent:
    """What all the project's sessions spent, summed."""
    total = Spent()
    for session in services.store.list_sessions(project.id, include_archived=True):
        total += session_state(services.store, session.id).usage
    return total


def turn_limits(scope: SessionScope, max_steps: int) -> Limits:
    """What the next turn may spend; refused when a budget is already reached."""
    state = session_state(scope.services.store, scope.session.id)
    limits = Limits(
        max_steps=max_steps,
        session_budget=state.budget,
        session_spent=state.usage,
        project_budget=project_budget(scope.project),
        project_spent=project_spent(scope.services, scope.project),
    )
    _refuse_when_reached(scope, limits)
    return limits


def _refuse_when_reached(scope: SessionScope, limits: Limits) -> None:
    short = scope.session.short_id
    reached = limits.session_budget.exceeded(limits.session_spent)
    if reached:
        raise Conflict(
            f"the budget of session {short} is reached ({reached}); raise it or lift it "
            f"(`session config {short} --budget-tokens N`, `--no-budget`) to go on"
        )
    reached = limits.project_budget.exceeded(limits.project_spent)
    if reached:
        raise Conflict(
            f"the budget of project {scope.project.name!r} is reached ({reached}); raise it "
            f"or lift it (`project config --budget-tokens N`, `--no-budget`) to go on"
        )


def set_budget(scope: SessionScope, budget: Budget) -> Budget:
    """The session's budget from now on (every limit None: no budget)."""
    scope.record(
        BudgetSet(tokens=budget.tokens, cost_usd=budget.cost_usd, seconds=budget.seconds),
        "user",
    )
    return budget


def trial_share(services: Services, task: Task, new_trials: int) -> Budget | None:
    """What each of `new_trials` new trials of `task` may spend: what the task's budget has not
    given out yet (to each trial so far, its own budget or what it spent, whichever is more;
    discarded trials included: spent is spent), split evenly. None when the task has no budget;
    refused when nothing is left."""
    limit = task.budget
    if limit == Budget():
        return None
    given = [_given(services, t.session_id) for t in services.store.tasks.trials(task.id)]
    tokens = _left(limit.tokens, sum(g[0] for g in given), new_trials, "tokens", task)
    cost = _left(limit.cost_usd, sum(g[1] for g in given), new_trials, "cost", task)
    seconds = _left(limit.seconds, sum(g[2] for g in given), new_trials, "time", task)
    return Budget(tokens=None if tokens is None else int(tokens), cost_usd=cost, seconds=seconds)


def _given(services: Services, session_id: str) -> tuple[float, float, float]:
    state = session_state(services.store, session_id)
    budget, spent = state.budget, state.usage
    return (
        max(budget.tokens or 0, spent.tokens),
        max(budget.cost_usd or 0.0, spent.cost_usd),
        max(budget.seconds or 0.0, spent.turn_ms / 1000),
    )


def _left(limit: float | None, given: float, n: int, what: str, task: Task) -> float | None:
    if limit is None:
        return None
    share = (limit - given) / n
    if (what == "tokens" and share < 1) or share <= 0:
        raise Conflict(
            f"the {what} budget of task {task.ref} is given out to its trials; raise it "
            f"(`task edit {task.number} --budget-{what} N`) to start more"
        )
    return share
