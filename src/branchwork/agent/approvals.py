"""Who answers when the policy asks: a person at a prompt, or the caller's fixed answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from branchwork.domain.events import ApprovalRequested


@dataclass(frozen=True)
class Answer:
    approved: bool
    reason: str = ""


class Approver(Protocol):
    def __call__(self, request: ApprovalRequested) -> Answer: ...


@dataclass(frozen=True)
class FixedApprover:
    """A non-interactive answer: approve everything (`--yes`), or refuse with a reason."""

    approve: bool
    reason: str = ""

    def __call__(self, request: ApprovalRequested) -> Answer:
        return Answer(self.approve, self.reason)


NON_INTERACTIVE_REFUSAL = FixedApprover(
    approve=False,
    reason="no one can approve in a non-interactive run; rerun with --yes to approve, or with "
    "--mode autopilot",
)
