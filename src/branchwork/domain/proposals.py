"""Proposals (a session's local pull request), their reviews and line comments, and the approval
policy that decides when one may be merged. Pure data and pure rules: no I/O.

A proposal points at its session's branch head; a review is made on one head. An approval
counts only for the head it was made on (a new checkpoint makes it stale); a request for
changes stands until that reviewer reviews again, whatever the head.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from branchwork.domain.ids import short_id

MergeStrategy = Literal["merge", "squash", "rebase"]
ProposalStatus = Literal["open", "approved", "changes_requested", "merged", "closed"]
Verdict = Literal["approved", "changes_requested", "commented"]
MERGE_STRATEGIES: tuple[MergeStrategy, ...] = ("merge", "squash", "rebase")
FINISHED: frozenset[str] = frozenset({"merged", "closed"})
MAX_TITLE = 200

# Control characters other than tab and newline: in a title, a message or a name they would
# reach terminals (escape sequences) and commit messages (a CR hides what precedes it).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    """`text` with its control characters dropped (tab and newline kept)."""
    return _CONTROLS.sub("", text)


def has_controls(text: str) -> bool:
    """Whether `text` holds a control character, tab and newline included (a name must not)."""
    return any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


def one_line(text: str) -> str:
    """A title: one line (line breaks and runs of spaces become one space), no control
    characters, at most `MAX_TITLE` characters. A title is a commit's subject: a line break in
    it would start the commit's body, where it could pose as a trailer."""
    return " ".join(without_controls(text).split())[:MAX_TITLE].strip()


class ApprovalPolicy(BaseModel):
    """What a proposal needs before it may be merged into a protected branch (the project's
    main branch always is). Stored with the project; seedable from `[policy]` in
    `.branchwork.toml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_approvals: int = Field(
        default=1, ge=0, le=20, description="Distinct reviewers approving the current head."
    )
    required_checks: list[str] = Field(
        default_factory=list,
        description="Shell commands that must pass on the merge result (a scratch worktree).",
    )
    merge_strategy: MergeStrategy = Field(default="squash", description="merge | squash | rebase")
    protected_branches: list[str] = Field(
        default_factory=list,
        description="Branch names or globs merged into only under this policy (main always).",
    )
    delete_branch: bool = Field(
        default=False, description="Delete the session's branch once merged (kept by default)."
    )
    auto_propose: bool = Field(
        default=False, description="Open a proposal after every agent turn that changed code."
    )

    @field_validator("required_checks")
    @classmethod
    def _non_empty_checks(cls, checks: list[str]) -> list[str]:
        if any(not check.strip() for check in checks):
            raise ValueError("a required check is an empty command; give a shell command")
        return checks

    def protects(self, branch: str, main_branch: str) -> bool:
        """Whether merging into `branch` is under this policy."""
        return branch == main_branch or any(
            fnmatch.fnmatchcase(branch, pattern) for pattern in self.protected_branches
        )


class Proposal(BaseModel):
    """A request to merge a session's branch into `target`. `base_commit` is where the branch
    and the target meet (the diff is from there), `target_commit` the target's tip the
    conflicts were computed against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    project_id: str
    number: int = Field(ge=1)
    session_id: str
    title: str
    description: str
    target: str
    base_commit: str
    target_commit: str
    head: str
    status: ProposalStatus
    conflicts: list[str] = Field(default_factory=list)
    remote_url: str | None = None
    merged_commit: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ProposalReview(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    proposal_id: str
    reviewer: str
    verdict: Verdict
    head: str
    message: str = ""
    created_at: datetime


class ReviewComment(BaseModel):
    """A comment on line `line` of `path` as of revision `head`. `current_line` follows the line
    as later heads move it; once the line itself changes the comment is `outdated`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    proposal_id: str
    reviewer: str
    path: str
    line: int = Field(ge=1)
    head: str
    text: str
    current_line: int = Field(ge=1)
    outdated: bool = False
    created_at: datetime

    @property
    def open(self) -> bool:
        """Still to be addressed: not outdated."""
        return not self.outdated


@dataclass(frozen=True)
class Standing:
    """Where the reviews leave a proposal at `head`: who approves that head, who requests
    changes (whatever head they reviewed), and how many approvals were made on older heads."""

    approvers: frozenset[str]
    requesting_changes: frozenset[str]
    stale_approvals: int


def standing(reviews: Iterable[ProposalReview], head: str) -> Standing:
    """Each reviewer's latest approve / request-changes verdict decides their stance (a plain
    comment changes nothing); an approval counts only for the head it was made on."""
    latest: dict[str, ProposalReview] = {}
    for review in sorted(reviews, key=lambda r: (r.created_at, r.id)):
        if review.verdict != "commented":
            latest[review.reviewer] = review
    approvers = {r.reviewer for r in latest.values() if r.verdict == "approved" and r.head == head}
    stale = sum(1 for r in latest.values() if r.verdict == "approved" and r.head != head)
    requesting = {r.reviewer for r in latest.values() if r.verdict == "changes_requested"}
    return Standing(frozenset(approvers), frozenset(requesting), stale)


def status_of(standing: Standing, required_approvals: int) -> ProposalStatus:
    """The status of an open proposal: changes requested wins; approved once the approvals
    the policy asks for (at least one) are in on the current head."""
    if standing.requesting_changes:
        return "changes_requested"
    if standing.approvers and len(standing.approvers) >= required_approvals:
        return "approved"
    return "open"
