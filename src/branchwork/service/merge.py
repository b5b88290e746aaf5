"""Merging a proposal: only under the project's policy, and never at the cost of anyone's work.

The order of a merge, each step refusing with the reason before anything changes:
1. the session's turn lease is taken (no turn runs meanwhile) and its pending edits are
   checkpointed; the proposal follows its session (a new head makes approvals stale);
2. the policy: approvals on the current head, no standing request for changes;
3. the merge is previewed with `git merge-tree` (a conflict names its files and hunks) and
   its result built as commit objects only (merge commit, squash commit, or rebased commits);
4. if the target is checked out somewhere (your checkout), that checkout must be clean;
5. the required checks run on the result in a scratch worktree (a failure shows its output);
6. under the repository lock, with the session's head and the target's tip as they were, the
   target moves: a fast-forward inside the checkout that has it (files and ref together), else
   a compare-and-swap of the ref;
7. the session is marked merged (the `merged` event), its worktree removed (kept, with a note,
   if it changed meanwhile), its branch kept or deleted as the policy says.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from branchwork import gitops
from branchwork.domain.errors import Conflict, InvalidInput, PolicyRefused
from branchwork.domain.events import CheckRun, Merged
from branchwork.domain.proposals import MERGE_STRATEGIES, MergeStrategy, Proposal, standing
from branchwork.gitops import merges
from branchwork.service import pool
from branchwork.service.base import Services
from branchwork.service.chat import turn_lease
from branchwork.service.checks import run_checks
from branchwork.service.describe import commit_message, trailers
from branchwork.service.policy import gate
from branchwork.service.proposals import (
    ProposalScope,
    open_proposal_scope,
    proposal_lock,
    refuse_finished,
    refuse_lost_target,
    retire_worktree,
    sync,
)
from branchwork.service.resolve import forget_current
from branchwork.service.scope import open_scope, running_commands, take_checkpoint


@dataclass(frozen=True)
class MergeOutcome:
    """A merged proposal: the commit the target now points at, the checks that ran on it, and
    what became of the session (its branch deleted or kept, the checkout fast-forwarded)."""

    proposal: Proposal
    strategy: MergeStrategy
    target: str
    commit: str
    checks: list[CheckRun]
    branch_deleted: bool
    checkout_updated: str | None
    worktree_kept: bool = False


@dataclass(frozen=True)
class _Plan:
    strategy: MergeStrategy
    target_tip: str
    head: str
    commit: str
    protected: bool


def merge(services: Services, proposal: Proposal, strategy: str | None = None) -> MergeOutcome:
    """Merge the proposal into its target (see the module docstring for the steps)."""
    pscope = open_proposal_scope(services, proposal)
    chosen = _strategy(strategy or pscope.policy.merge_strategy)
    with turn_lease(services, pscope.scope.session, threading.Event()):
        pscope = _prepared(pscope)
        plan = _plan(pscope, chosen)
        checks: list[CheckRun] = []
        if plan.protected:
            checks = check_result(pscope, plan.commit, "merge")
        return _land(pscope, plan, checks)


def _refuse_moved_session(pscope: ProposalScope, head: str) -> None:
    repo, session = pscope.repo, pscope.scope.session
    if not gitops.branch_exists(repo, session.branch):
        return
    now = gitops.resolve_commit(repo, session.branch)
    if now != head:
        raise Conflict(
            f"session {session.short_id} changed while the merge was prepared ({now[:10]}); "
            "review the new head and merge again"
        )


def _strategy(name: str) -> MergeStrategy:
    for strategy in MERGE_STRATEGIES:
        if strategy == name:
            return strategy
    raise InvalidInput(f"unknown merge strategy {name!r}; use one of {', '.join(MERGE_STRATEGIES)}")


def _prepared(pscope: ProposalScope) -> ProposalScope:
    """No command may be running in the session; its pending edits become a checkpoint (which
    the proposal then follows: what is merged is what was reviewed)."""
    session = pscope.scope.session
    if session.status == "active":
        scope = open_scope(pscope.services, session)
        running = running_commands(scope)
        if running:
            raise Conflict(
                f"`{running[0]}` is still running in session {session.short_id}; wait for it "
                "or stop it, then merge"
            )
        take_checkpoint(scope, "before merge", automatic=True)
    return pscope.with_proposal(sync(pscope))


def _plan(pscope: ProposalScope, strategy: MergeStrategy) -> _Plan:
    proposal = refuse_finished(pscope.proposal)
    refuse_lost_target(pscope)
    project = pscope.scope.project
    reviews = pscope.store.reviews(proposal.id)
    found = gate(project, proposal, standing(reviews, proposal.head), [])
    refused = [r for r in found.reasons if not r.startswith("conflicts")]
    if refused:
        raise PolicyRefused(
            f"proposal #{proposal.number} cannot be merged into {proposal.target} yet: "
            f"{'; '.join(refused)}. {_remedy(proposal, found.requesting_changes)}"
        )
    commit = _build(pscope, strategy)
    checkout = merges.worktree_of(pscope.repo, proposal.target)
    if checkout is not None:
        merges.refuse_unclean(checkout, proposal.target, proposal.target_commit, commit)
    return _Plan(strategy, proposal.target_commit, proposal.head, commit, found.protected)


def _remedy(proposal: Proposal, requesting: tuple[str, ...]) -> str:
    if requesting:
        return (
            f"Address the requests (`address {proposal.number}`); they stand until "
            f"{', '.join(requesting)} approve"
        )
    return f"Review it (`review {proposal.number}`) and approve it (`approve {proposal.number}`)"


def _build(pscope: ProposalScope, strategy: MergeStrategy) -> str:
    """The merge result as commit objects on the target's tip (nothing points at them yet)."""
    proposal, repo = pscope.proposal, pscope.repo
    preview = merges.preview_merge(repo, proposal.target, proposal.head)
    if not preview.clean:
        raise Conflict(conflict_report(proposal, preview.conflicts))
    approvers = sorted(standing(pscope.store.reviews(proposal.id), proposal.head).approvers)
    session_id = pscope.scope.session.id
    if strategy == "squash":
        _refuse_empty(pscope, preview.tree == merges.tree_of(repo, proposal.target_commit))
        message = commit_message(proposal, session_id, approvers)
        return merges.squash_commit(repo, proposal.target_commit, preview, message)
    if strategy == "merge":
        message = commit_message(proposal, session_id, approvers, merge=True)
        return merges.merge_commit(repo, proposal.target_commit, preview, proposal.head, message)
    replayed = merges.rebase_commits(
        repo,
        proposal.target_commit,
        proposal.base_commit,
        proposal.head,
        trailers(proposal, session_id, approvers),
    )
    if replayed.tip is None:
        where = f"replaying checkpoint {(replayed.conflicting_commit or '')[:10]}: "
        raise Conflict(where + conflict_report(proposal, replayed.conflicts))
    _refuse_empty(pscope, replayed.tip == proposal.target_commit)
    return replayed.tip


def _refuse_empty(pscope: ProposalScope, empty: bool) -> None:
    """A squash or a rebase that would add nothing (the target has every change already, as
    when two sessions made the same change) is refused rather than landing an empty commit."""
    if empty:
        proposal = pscope.proposal
        raise Conflict(
            f"{proposal.target} has every change of proposal #{proposal.number} already; "
            f"nothing to merge. Close it (`close {proposal.number}`)"
        )


def conflict_report(proposal: Proposal, conflicts: list[merges.ConflictFile]) -> str:
    """The conflicts, file by file with their hunks, and what to do."""
    parts = []
    for conflict in conflicts:
        hunks = ", ".join(
            f"lines {h.start_line}-{h.end_line}"
            if h.end_line > h.start_line
            else f"line {h.start_line}"
            for h in conflict.hunks
        )
        parts.append(f"{conflict.path} ({conflict.kind}{': ' + hunks if hunks else ''})")
    return (
        f"proposal #{proposal.number} conflicts with {proposal.target} in {'; '.join(parts)}; "
        "nothing was changed. Bring the session up to date with it (ask the agent to merge "
        f"{proposal.target} in and resolve them), then merge again"
    )


def check(services: Services, proposal: Proposal) -> list[CheckRun]:
    """Run the policy's checks now on what merging the proposal would give (`check_run` with
    purpose `proposal`), without merging; a failure is a result, not an error."""
    pscope = open_proposal_scope(services, proposal)
    pscope = pscope.with_proposal(refuse_finished(sync(pscope)))
    refuse_lost_target(pscope)
    if not pscope.policy.required_checks:
        raise InvalidInput(
            "the project's policy has no required checks; add some (`policy --check CMD`)"
        )
    return check_result(pscope, _build(pscope, "squash"), "proposal")


def check_result(
    pscope: ProposalScope, commit: str, purpose: Literal["proposal", "merge"]
) -> list[CheckRun]:
    """Run the policy's checks on `commit`; on a merge, a failure refuses it with its output."""
    checks = pscope.policy.required_checks
    ran = run_checks(pscope.scope, commit, checks, purpose=purpose, proposal_id=pscope.proposal.id)
    failed = [c for c in ran if not c.passed]
    if failed and purpose == "merge":
        first = failed[0]
        raise PolicyRefused(
            f"required check `{first.check}` failed on the merge result (exit code "
            f"{first.exit_code}); nothing was merged. Its output ends with:\n"
            f"{first.output_tail.rstrip()}\n"
            f"Fix it in the session, then merge again (`log --kind check_run` has every run)"
        )
    return ran


def _land(pscope: ProposalScope, plan: _Plan, checks: list[CheckRun]) -> MergeOutcome:
    """Move the target, then retire the session; under the proposal's lock, so that no reader
    sees the target moved before the merge is recorded."""
    repo, proposal, session = pscope.repo, pscope.proposal, pscope.scope.session
    services = pscope.services
    with proposal_lock(services, proposal.id):
        with gitops.repo_lock(services.lock_dir, repo):
            _refuse_moved_session(pscope, plan.head)
            checkout = merges.advance_branch(repo, proposal.target, plan.target_tip, plan.commit)
            kept = retire_worktree(pscope, plan.head)
            deleted = pscope.policy.delete_branch and not kept
            if deleted:  # git refuses while the branch is checked out somewhere
                deleted = gitops.delete_branch(repo, session.branch)
        merged = Merged(
            proposal_id=proposal.id,
            strategy=plan.strategy,
            target=proposal.target,
            commit=plan.commit,
            branch_deleted=deleted,
        )
        services.recorder.set_status(session, "merged", merged)
        forget_current(services, session)
        done = pscope.store.update(proposal.id, status="merged", merged_commit=plan.commit)
    if proposal.target == pscope.scope.project.main_branch:
        pool.request_refill(services, pscope.scope.project)  # its worktrees hold the old main
    return MergeOutcome(
        proposal=done,
        strategy=plan.strategy,
        target=proposal.target,
        commit=plan.commit,
        checks=checks,
        branch_deleted=deleted,
        checkout_updated=str(checkout) if checkout else None,
        worktree_kept=kept,
    )
