"""Rendering of proposals, reviews, merges and the conflict radar: Rich for people, JSON (the
service's models, dumped) for scripts."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from rich.table import Table

from branchwork.cli import render
from branchwork.cli.render import print_diff, safe

if TYPE_CHECKING:
    from branchwork import (
        ApprovalPolicy,
        CheckRun,
        MergeOutcome,
        Proposal,
        ProposalDetails,
        RadarReport,
        ReviewComment,
        ReviewView,
    )

_STATUS_COLOUR = {
    "open": "yellow",
    "approved": "green",
    "changes_requested": "red",
    "merged": "magenta",
    "closed": "dim",
}


# -- JSON ---------------------------------------------------------------------------------------


def proposal_json(proposal: Proposal) -> dict[str, Any]:
    return proposal.model_dump(mode="json")


def details_json(details: ProposalDetails) -> dict[str, Any]:
    """The proposal's own fields at the top (with its `id`), and what a review shows."""
    return {
        **proposal_json(details.proposal),
        "session": {"id": details.session.id, "branch": details.session.branch},
        "reviews": [r.model_dump(mode="json") for r in details.reviews],
        "comments": [c.model_dump(mode="json") for c in details.comments],
        "checks": [c.model_dump(mode="json") for c in details.checks],
        "gate": {**dataclasses.asdict(details.gate), "reasons": details.gate.reasons},
        "policy": details.policy.model_dump(mode="json"),
    }


def review_json(view: ReviewView) -> dict[str, Any]:
    return {
        **details_json(view.details),
        "files": [
            {
                "path": f.path,
                "hunks": [dataclasses.asdict(h) for h in f.hunks],
                "comments": [c.model_dump(mode="json") for c in f.comments],
            }
            for f in view.files
        ],
    }


def outcome_json(outcome: MergeOutcome) -> dict[str, Any]:
    return {
        "id": outcome.proposal.id,
        "proposal": proposal_json(outcome.proposal),
        "strategy": outcome.strategy,
        "target": outcome.target,
        "commit": outcome.commit,
        "checks": [c.model_dump(mode="json") for c in outcome.checks],
        "branch_deleted": outcome.branch_deleted,
        "checkout_updated": outcome.checkout_updated,
        "worktree_kept": outcome.worktree_kept,
    }


def radar_json(report: RadarReport) -> dict[str, Any]:
    return {
        "project": report.project.name,
        "main_tip": report.main_tip,
        "sessions": [
            {
                "id": c.session.id,
                "short_id": c.session.short_id,
                "branch": c.session.branch,
                "head": c.head,
                "base": c.base,
                "files": c.files,
                "definitions": c.definitions,
                "lines_changed": c.lines_changed,
                "proposal": c.proposal,
            }
            for c in report.sessions
        ],
        "overlaps": [_overlap_json(o) for o in report.overlaps],
        "with_main": [_overlap_json(o) for o in report.with_main],
        "order": [{"id": s.session.id, "reason": s.reason} for s in report.order],
    }


def _overlap_json(overlap: Any) -> dict[str, Any]:
    return {**dataclasses.asdict(overlap), "level": overlap.level}


# -- people -------------------------------------------------------------------------------------


def _status(status: str) -> str:
    colour = _STATUS_COLOUR.get(status, "white")
    return f"[{colour}]{status.replace('_', ' ')}[/]"


def proposal_opened(proposal: Proposal) -> str:
    lines = [
        f"proposal [bold]#{proposal.number}[/] {_status(proposal.status)}: "
        f"{safe(proposal.title)} → {safe(proposal.target)} (head {proposal.head[:10]})"
    ]
    if proposal.conflicts:
        lines.append(
            f"[red]conflicts with {proposal.target} in[/] {safe(', '.join(proposal.conflicts))}"
        )
    if proposal.remote_url:
        lines.append(f"pull request: {safe(proposal.remote_url)}")
    lines.append(f"[dim]next: branchwork review {proposal.number}[/]")
    return "\n".join(lines)


def proposals_table(found: list[Proposal]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("#", "status", "title", "into", "head", "updated"):
        table.add_column(column)
    for p in found:
        table.add_row(
            str(p.number),
            _status(p.status),
            safe(p.title),
            safe(p.target),
            p.head[:10],
            p.updated_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        )
    return table


def status_line(details: ProposalDetails) -> str:
    p, gate = details.proposal, details.gate
    lacks = "; ".join(gate.reasons)
    after = f" — still needs: {safe(lacks)}" if lacks else " — ready to merge"
    if p.finished:
        after = ""
    return f"proposal #{p.number} {_status(p.status)}{after}"


def print_details(details: ProposalDetails) -> None:
    p = details.proposal
    render.console.print(f"[bold]#{p.number} {safe(p.title)}[/]  {_status(p.status)}")
    render.console.print(
        f"session {details.session.short_id} ({safe(details.session.branch)}) → "
        f"{safe(p.target)}; head {p.head[:10]}, base {p.base_commit[:10]}"
    )
    render.console.print(status_line(details))
    if p.remote_url:
        render.console.print(f"pull request: {safe(p.remote_url)}")
    render.console.print()
    render.console.print(safe(p.description))
    for review in details.reviews:
        note = f": {safe(review.message)}" if review.message else ""
        stale = " [dim](older head)[/]" if review.head != p.head else ""
        render.console.print(f"• {safe(review.reviewer)} {_status(review.verdict)}{stale}{note}")
    for comment in details.comments:
        render.console.print(comment_line(comment))
    for check in details.checks:
        render.console.print(check_line(check))


def comment_line(comment: ReviewComment) -> str:
    state = " [dim](outdated)[/]" if comment.outdated else ""
    return (
        f"💬 {safe(comment.reviewer)} on [cyan]{safe(comment.path)}[/]:"
        f"{comment.current_line}{state}: {safe(comment.text)}"
    )


def check_line(check: CheckRun) -> str:
    verdict = "[green]passed[/]" if check.passed else f"[red]failed[/] (exit {check.exit_code})"
    return f"check {verdict} `{safe(check.check)}` on {check.head[:10]} ({check.purpose})"


def print_review(view: ReviewView) -> None:
    print_details(view.details)
    for file in view.files:
        render.console.print(f"\n[bold cyan]{safe(file.path)}[/]")
        for hunk in file.hunks:
            print_diff(f"{hunk.header}\n{hunk.text}\n")
            for origin in hunk.origins:
                calls = f" — {safe(', '.join(origin.tool_calls))}" if origin.tool_calls else ""
                render.console.print(
                    f"  [dim]↳ {safe(origin.what)}{calls} (checkpoint {origin.commit[:10]}, "
                    f"event {origin.seq})[/]"
                )
        for comment in file.comments:
            render.console.print(comment_line(comment))


def merged_line(outcome: MergeOutcome) -> str:
    p = outcome.proposal
    parts = [
        f"merged #{p.number} into {safe(outcome.target)} by {outcome.strategy} as "
        f"{outcome.commit[:10]}"
    ]
    if outcome.checks:
        parts.append(f"{len(outcome.checks)} check(s) passed")
    if outcome.checkout_updated:
        parts.append(f"{safe(outcome.checkout_updated)} fast-forwarded")
    parts.append("branch deleted" if outcome.branch_deleted else "branch kept")
    if outcome.worktree_kept:
        parts.append("[yellow]the session's worktree was kept: it changed meanwhile[/]")
    return "; ".join(parts)


def print_radar(report: RadarReport) -> None:
    if not report.sessions:
        render.console.print("no live session has changes")
        return
    names = {c.session.id: c.session.short_id for c in report.sessions}
    for overlap in [*report.overlaps, *report.with_main]:
        first, second = (
            names.get(overlap.first, overlap.first),
            names.get(overlap.second, overlap.second),
        )
        colour = {"conflict": "red", "definition": "yellow", "file": "cyan"}[overlap.level]
        where = ", ".join(overlap.definitions or overlap.files)
        render.console.print(f"[{colour}]{overlap.level}[/] {first} × {second}: {safe(where)}")
        for spot in overlap.conflicts:
            lines = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spot.lines)
            render.console.print(
                f"    {safe(spot.path)} lines {lines}" if lines else f"    {safe(spot.path)}"
            )
    if not report.overlaps and not report.with_main:
        render.console.print("[green]no overlaps[/]: the live sessions touch different files")
    render.console.print("\n[bold]suggested merge order[/]")
    for n, step in enumerate(report.order, 1):
        render.console.print(
            f"{n}. {step.session.short_id} {safe(step.session.title)} — {safe(step.reason)}"
        )


def policy_text(policy: ApprovalPolicy, main_branch: str) -> str:
    protected = ", ".join([main_branch, *policy.protected_branches])
    checks = "; ".join(f"`{c}`" for c in policy.required_checks) or "none"
    return "\n".join(
        [
            f"required approvals: {policy.required_approvals}",
            f"required checks: {safe(checks)}",
            f"merge strategy: {policy.merge_strategy}",
            f"protected branches: {safe(protected)}",
            f"after a merge: branch {'deleted' if policy.delete_branch else 'kept'}",
            f"auto-propose: {'on' if policy.auto_propose else 'off'}",
        ]
    )
