"""Routes of proposals: open one for a session, list, show, the review (the diff with the
origin of each hunk), line comments, approve, request changes, address (an agent turn on the
comments), checks, merge, close; and the project's conflict radar and approval policy.

Proposals are named by their number within the project (as the CLI shows them), so a path
only reaches the project its role was checked in. Roles: viewers read; members open
proposals, comment on lines, run the checks and have the agent address the review; the
verdicts the policy counts (approve, request changes) and merging or closing are for
maintainers. A reviewer is the authenticated user, never a name the request gives.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

import branchwork as bw
from branchwork.api.auth import (
    CurrentPrincipal,
    ProjectMaintainer,
    ProjectMember,
    ProjectViewer,
    SessionMember,
)
from branchwork.api.context import ServerContext, context
from branchwork.api.proposal_schemas import (
    AddressIn,
    ChangesIn,
    CloseIn,
    LineCommentIn,
    MergeIn,
    MergeOut,
    ProposalDetailsOut,
    ProposeIn,
    RadarOut,
    ReviewIn,
    ReviewOut,
    details_out,
    merge_out,
    radar_out,
    review_out,
)
from branchwork.api.schemas import TicketOut

router = APIRouter(tags=["proposals"])
Server = Annotated[ServerContext, Depends(context)]
Number = Annotated[int, Path(ge=1, le=999_999_999, description="Its number in the project.")]
ONE = "/api/projects/{project}/proposals/{number}"


@router.post("/api/sessions/{session_id}/proposal", status_code=201)
def propose(session: SessionMember, body: ProposeIn, server: Server) -> ProposalDetailsOut:
    """Propose the session's work for merging: its open proposal brought up to date, else a
    new one with a description written from its history. (Pushing to a remote and opening a
    pull request there stay with the CLI: they use the server's own credentials.)"""
    ws = server.ws
    opened = ws.propose(session, title=body.title, target=body.target)
    return details_out(ws.proposal(opened.number, project=opened.project_id))


@router.get("/api/projects/{project}/proposals")
def list_proposals(
    project: ProjectViewer, server: Server, finished: bool = False
) -> list[bw.Proposal]:
    """The project's proposals, newest first: open ones, and merged or closed with `finished`."""
    return server.ws.proposals(project, include_finished=finished)


@router.get(ONE)
def show(project: ProjectViewer, number: Number, server: Server) -> ProposalDetailsOut:
    """The proposal up to date with its session: reviews, comments, checks, and what its merge
    still lacks (`gate.reasons`)."""
    return details_out(server.ws.proposal(number, project=project))


@router.get(f"{ONE}/review")
def review(project: ProjectViewer, number: Number, server: Server) -> ReviewOut:
    """The proposal with its diff per file, each hunk with the turn, prompt and tool calls
    that wrote it, and the line comments on each file."""
    return review_out(server.ws.review(number, project=project))


@router.post(f"{ONE}/comments", status_code=201)
def comment(
    project: ProjectMember,
    number: Number,
    body: LineCommentIn,
    principal: CurrentPrincipal,
    server: Server,
) -> bw.ReviewComment:
    """Comment on a line of a file as the proposal's head has it."""
    return server.ws.comment(
        number, body.path, body.line, body.text, reviewer=principal.name, project=project
    )


@router.post(f"{ONE}/approve")
def approve(
    project: ProjectMaintainer,
    number: Number,
    body: ReviewIn,
    principal: CurrentPrincipal,
    server: Server,
) -> ProposalDetailsOut:
    """Approve the current head (a later checkpoint makes the approval stale)."""
    done = server.ws.approve(number, message=body.message, reviewer=principal.name, project=project)
    return details_out(done)


@router.post(f"{ONE}/request-changes")
def request_changes(
    project: ProjectMaintainer,
    number: Number,
    body: ChangesIn,
    principal: CurrentPrincipal,
    server: Server,
) -> ProposalDetailsOut:
    """Request changes: the merge is refused until this reviewer approves."""
    done = server.ws.request_changes(number, body.message, reviewer=principal.name, project=project)
    return details_out(done)


@router.post(f"{ONE}/address", status_code=202)
def address(project: ProjectMember, number: Number, body: AddressIn, server: Server) -> TicketOut:
    """Start an agent turn on the open comments and requests for changes, in the proposal's
    session, in the background (as `POST /api/sessions/{s}/messages` does)."""
    ws = server.ws
    request = ws.address_request(number, project=project)
    ticket = ws.start_turn(
        request.session,
        request.message,
        model=server.ws.network_model(body.model),
        mode=body.mode,
        max_steps=body.max_steps,
    )
    return TicketOut(session_id=ticket.session_id, first_seq=ticket.first_seq)


@router.post(f"{ONE}/checks")
def run_checks(project: ProjectMember, number: Number, server: Server) -> list[bw.CheckRun]:
    """Run the policy's required checks now on what merging would give."""
    return server.ws.check_proposal(number, project=project)


@router.post(f"{ONE}/merge")
def merge(project: ProjectMaintainer, number: Number, body: MergeIn, server: Server) -> MergeOut:
    """Merge into the target under the project's policy. Refused (403 `policy-refused`, or 409
    for a conflict), changing nothing, with the reason in `detail`."""
    return merge_out(server.ws.merge(number, strategy=body.strategy, project=project))


@router.post(f"{ONE}/close")
def close(project: ProjectMaintainer, number: Number, body: CloseIn, server: Server) -> bw.Proposal:
    return server.ws.close_proposal(number, reason=body.reason, project=project)


@router.get("/api/projects/{project}/conflicts")
def conflicts(project: ProjectViewer, server: Server) -> RadarOut:
    """The conflict radar: live sessions touching the same files, definitions or lines as each
    other and as main, with a suggested merge order."""
    return radar_out(server.ws.conflicts(project))


@router.get("/api/projects/{project}/policy")
def policy(project: ProjectViewer, server: Server) -> bw.ApprovalPolicy:
    """What a proposal needs before it may be merged (changed with `branchwork policy`)."""
    return server.ws.policy(project)
