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
