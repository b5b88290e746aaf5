"""Who answers when the policy asks: a person at a prompt, or the caller's fixed answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from branchwork.domain.events import Actor, ApprovalRequested


@dataclass(frozen=True)
class Answer:
    """A decision; `by` is who made it: a person (`user`) or a rule set in advance (`system`)."""

    approved: bool
    reason: str = ""
    by: Actor = "user"


class Approver(Protocol):
    def __call__(self, request: ApprovalRequested) -> Answer: ...


@dataclass(frozen=True)
class FixedApprover:
    """A non-interactive answer: approve everything (`--yes`), or refuse with a reason."""

    approve: bool
    reason: str = ""

    def __call__(self, request: ApprovalRequested) -> Answer:
        return Answer(self.approve, self.reason, by="system")


NON_INTERACTIVE_REFUSAL = FixedApprover(
    approve=False,
    reason="no one can approve in a non-interactive run; rerun with --yes to approve, or with "
    "--mode autopilot",
)
