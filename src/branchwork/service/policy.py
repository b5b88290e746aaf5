"""The approval policy of a project: read it, change it, and say what a proposal still lacks.

The policy lives in the project's configuration (`ProjectConfig.policy`), so it is stored with
the project and seeded like the rest from `[policy]` in `.branchwork.toml` (read when the
project is added, or with `project config --reload`). The check commands of a merge are the
project's, never those of the branch being merged: a session cannot relax its own gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from branchwork.domain.errors import InvalidInput
from branchwork.domain.models import Project
from branchwork.domain.proposals import ApprovalPolicy, Proposal, ReviewComment, Standing
from branchwork.service.base import Services


@dataclass(frozen=True)
class PolicyChanges:
    """Changes to a policy; None leaves a setting as it is (an empty list clears a list)."""

    required_approvals: int | None = None
    required_checks: list[str] | None = None
    merge_strategy: str | None = None
    protected_branches: list[str] | None = None
    delete_branch: bool | None = None
    auto_propose: bool | None = None

    def updates(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def set_policy(services: Services, project: Project, changes: PolicyChanges) -> ApprovalPolicy:
    """Change the project's approval policy; the whole new policy is validated first."""
    merged = {**project.config.policy.model_dump(), **changes.updates()}
    try:
        policy = ApprovalPolicy.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid approval policy: {problems}") from exc
    config = project.config.model_copy(update={"policy": policy})
    services.store.save_project(project.model_copy(update={"config": config}))
    return policy


@dataclass(frozen=True)
class MergeGate:
    """What stands between a proposal and a merge under the policy (checks aside: they run on
    the merge result). `protected`: whether the target is under the policy at all."""

    protected: bool
    approvals: int
    required_approvals: int
    requesting_changes: tuple[str, ...]
    stale_approvals: int
    conflicts: tuple[str, ...]
    open_comments: int

    @property
    def reasons(self) -> list[str]:
        """Why the merge is refused now (empty: it may go ahead to its checks)."""
        found = []
        if self.protected and self.approvals < self.required_approvals:
            stale = f"; {self.stale_approvals} on an older head" if self.stale_approvals else ""
            found.append(
                f"{self.approvals} of {self.required_approvals} required approval(s) on the "
                f"current head{stale}"
            )
        if self.protected and self.requesting_changes:
            found.append(f"changes requested by {', '.join(self.requesting_changes)}")
        if self.conflicts:
            found.append(f"conflicts with the target in {', '.join(self.conflicts)}")
        return found


def gate(
    project: Project, proposal: Proposal, standing: Standing, comments: list[ReviewComment]
) -> MergeGate:
    policy = project.config.policy
    return MergeGate(
        protected=policy.protects(proposal.target, project.main_branch),
        approvals=len(standing.approvers),
        required_approvals=policy.required_approvals,
        requesting_changes=tuple(sorted(standing.requesting_changes)),
        stale_approvals=standing.stale_approvals,
        conflicts=tuple(proposal.conflicts),
        open_comments=sum(1 for c in comments if c.open),
    )
