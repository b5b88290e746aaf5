"""Bodies of the proposal, review and merge routes (what /docs shows): the CLI's `--json`
shapes, the proposal's own fields at the top."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import branchwork as bw


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProposeIn(_In):
    title: str | None = Field(default=None, max_length=500)
    target: str | None = Field(
        default=None, max_length=250, description="The branch to merge into (default: main)."
    )


class ReviewIn(_In):
    message: str = Field(default="", max_length=20_000)


class ChangesIn(_In):
    message: str = Field(min_length=1, max_length=20_000, description="What to change.")


class LineCommentIn(_In):
    path: str = Field(min_length=1, max_length=4096)
    line: int = Field(ge=1, le=10_000_000, description="The line as the proposal's head has it.")
    text: str = Field(min_length=1, max_length=20_000)


class AddressIn(_In):
    model: str | None = Field(default=None, max_length=300)
    mode: Literal["ask", "auto-edit", "autopilot"] | None = None
    max_steps: int | None = Field(default=None, ge=1, le=200)


class MergeIn(_In):
    strategy: Literal["merge", "squash", "rebase"] | None = Field(
        default=None, description="The policy's unless given."
    )


class CloseIn(_In):
    reason: str = Field(default="", max_length=20_000)


class SessionRefOut(BaseModel):
    id: str
    short_id: str
    branch: str
    title: str


class GateOut(BaseModel):
    """What stands between the proposal and a merge under the policy (checks aside: they run
    on the merge result). `reasons` empty: the merge may go ahead to its checks."""

    protected: bool
    approvals: int
    required_approvals: int
    requesting_changes: list[str]
    stale_approvals: int
    conflicts: list[str]
    open_comments: int
    reasons: list[str]


class ProposalDetailsOut(bw.Proposal):
    session: SessionRefOut
    reviews: list[bw.ProposalReview]
    comments: list[bw.ReviewComment]
    checks: list[bw.CheckRun]
    gate: GateOut
    policy: bw.ApprovalPolicy


class FileReviewOut(BaseModel):
    path: str
    hunks: list[bw.HunkReview] = Field(description="Each with the origins of its lines.")
    comments: list[bw.ReviewComment]


class ReviewOut(ProposalDetailsOut):
    files: list[FileReviewOut]


class MergeOut(BaseModel):
    proposal: bw.Proposal
    strategy: bw.MergeStrategy
    target: str
    commit: str
    checks: list[bw.CheckRun]
    branch_deleted: bool
    checkout_updated: str | None
    worktree_kept: bool


class RadarSessionOut(BaseModel):
    id: str
    short_id: str
    title: str
    branch: str
    head: str
    base: str
    files: list[str]
    definitions: dict[str, list[str]]
    lines_changed: int
    proposal: int | None
    approved: bool


class OverlapOut(BaseModel):
    first: str
    second: str
    level: str = Field(description="conflict | definition | file")
    files: list[str]
    definitions: list[str]
    conflicts: list[bw.ConflictSpot]


class MergeStepOut(BaseModel):
    id: str
    short_id: str
    reason: str


class RadarOut(BaseModel):
    main_tip: str
    sessions: list[RadarSessionOut]
    overlaps: list[OverlapOut]
    with_main: list[OverlapOut]
    order: list[MergeStepOut]


def details_out(details: bw.ProposalDetails) -> ProposalDetailsOut:
    gate = details.gate
    s = details.session
    return ProposalDetailsOut(
        **details.proposal.model_dump(),
        session=SessionRefOut(id=s.id, short_id=s.short_id, branch=s.branch, title=s.title),
        reviews=details.reviews,
        comments=details.comments,
        checks=details.checks,
        gate=GateOut(
            protected=gate.protected,
            approvals=gate.approvals,
            required_approvals=gate.required_approvals,
            requesting_changes=list(gate.requesting_changes),
            stale_approvals=gate.stale_approvals,
            conflicts=list(gate.conflicts),
            open_comments=gate.open_comments,
            reasons=gate.reasons,
        ),
        policy=details.policy,
    )


def review_out(view: bw.ReviewView) -> ReviewOut:
    files = [FileReviewOut(path=f.path, hunks=f.hunks, comments=f.comments) for f in view.files]
    return ReviewOut(**details_out(view.details).model_dump(), files=files)


def merge_out(outcome: bw.MergeOutcome) -> MergeOut:
    return MergeOut(
        proposal=outcome.proposal,
        strategy=outcome.strategy,
        target=outcome.target,
        commit=outcome.commit,
        checks=outcome.checks,
        branch_deleted=outcome.branch_deleted,
        checkout_updated=outcome.checkout_updated,
        worktree_kept=outcome.worktree_kept,
    )


def radar_out(report: bw.RadarReport) -> RadarOut:
    def overlap(o: bw.Overlap) -> OverlapOut:
        return OverlapOut(
            first=o.first,
            second=o.second,
            level=o.level,
            files=o.files,
            definitions=o.definitions,
            conflicts=o.conflicts,
        )

    sessions = [
        RadarSessionOut(
            id=c.session.id,
            short_id=c.session.short_id,
            title=c.session.title,
            branch=c.session.branch,
            head=c.head,
            base=c.base,
            files=c.files,
            definitions=c.definitions,
            lines_changed=c.lines_changed,
            proposal=c.proposal,
            approved=c.approved,
        )
        for c in report.sessions
    ]
    return RadarOut(
        main_tip=report.main_tip,
        sessions=sessions,
        overlaps=[overlap(o) for o in report.overlaps],
        with_main=[overlap(o) for o in report.with_main],
        order=[
            MergeStepOut(id=s.session.id, short_id=s.session.short_id, reason=s.reason)
            for s in report.order
        ],
    )
