"""`address`: one agent turn that gets a proposal's open review comments with their code.

The comments still open (not outdated) and the standing requests for changes
are put in one message, each comment with the lines around it as the proposal's head has them,
and sent to the session's agent as any message is (`chat.send_message`: the same turn, lease,
policy and history). Once the turn changed code its proposal follows the new head, and the
comments whose lines changed become outdated.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from branchwork.agent import Approver, TurnHooks, TurnResult
from branchwork.domain.errors import Conflict
from branchwork.domain.models import Session
from branchwork.domain.proposals import Proposal, ReviewComment, standing
from branchwork.gitops import merges
from branchwork.providers import Model
from branchwork.service.chat import send_message
from branchwork.service.proposals import ProposalScope, refuse_finished, sync
from branchwork.service.scope import require_active

CONTEXT_LINES = 3


@dataclass(frozen=True)
class AddressRequest:
    """The message that addresses a proposal's review, and the session it goes to (for a
    front-end that runs the turn itself, as `ask` does)."""

    session: Session
    proposal: Proposal
    message: str


def address(
    pscope: ProposalScope,
    *,
    model: str | Model | None = None,
    mode: str | None = None,
    approver: Approver | None = None,
    hooks: TurnHooks | None = None,
    cancel: threading.Event | None = None,
    max_steps: int | None = None,
) -> TurnResult:
    """Run the turn that addresses the review (see the module docstring)."""
    request = address_request(pscope)
    return send_message(
        pscope.services,
        request.session,
        request.message,
        model=model,
        mode=mode,
        approver=approver,
        hooks=hooks,
        cancel=cancel,
        max_steps=max_steps,
    )


def address_request(pscope: ProposalScope) -> AddressRequest:
    """The message that carries the open comments and requests to the session's agent."""
    require_active(pscope.scope.session)
    proposal = refuse_finished(sync(pscope))
    comments = [c for c in pscope.store.comments(proposal.id) if c.open]
    reviews = pscope.store.reviews(proposal.id)
    requesting = standing(reviews, proposal.head).requesting_changes
    requests = [
        r
        for r in reviews
        if r.verdict == "changes_requested" and r.reviewer in requesting and r.message
    ]
    if not comments and not requests:
        raise Conflict(
            f"proposal #{proposal.number} has no open review comment or request for changes; "
            f"comment on it first (`comment {proposal.number} PATH:LINE -m …`)"
        )
    parts = [_intro(proposal)]
    parts += [f"Changes requested by {r.reviewer}: {r.message}" for r in requests]
    parts += [_comment_block(pscope, proposal, n, c) for n, c in enumerate(comments, 1)]
    return AddressRequest(pscope.scope.session, proposal, "\n\n".join(parts))


def _intro(proposal: Proposal) -> str:
    return (
        f'Address the review of proposal #{proposal.number} "{proposal.title}" (into '
        f"{proposal.target}). Change the code as each comment below asks (line numbers are "
        "those of the files now), then say in a few words what you did for each."
    )


def _comment_block(pscope: ProposalScope, proposal: Proposal, n: int, c: ReviewComment) -> str:
    data = merges.file_at(pscope.repo, proposal.head, c.path) or b""
    lines = data.decode("utf-8", errors="replace").splitlines()
    first = max(1, c.current_line - CONTEXT_LINES)
    last = min(len(lines), c.current_line + CONTEXT_LINES)
    code = "\n".join(
        f"{'>' if number == c.current_line else ' '} {number:>4} | {lines[number - 1]}"
        for number in range(first, last + 1)
    )
    return (
        f"Comment {n} by {c.reviewer} on {c.path} line {c.current_line}:\n{c.text}\n"
        f"```\n{code}\n```"
    )
