"""`branchwork propose`, `proposal list|show|check`, `review`, `approve`, `request-changes`,
`comment`, `address`, `merge`, `close`, `conflicts`, `policy`: from a session to main."""

from __future__ import annotations

from typing import Annotated

import typer

import branchwork as bw
from branchwork.cli import render, render_proposals as show
from branchwork.cli._common import JsonOpt, ModelOpt, ModeOpt, ProjectOpt, workspace
from branchwork.cli.chat import STATUS_EXIT, StepsOpt, TurnDriver, YesOpt

proposal_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Proposals: a session's work offered for merging into main.",
    no_args_is_help=True,
)
ProposalArg = Annotated[str, typer.Argument(help="Proposal number (3 or #3), or its id.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Reviewer name (default: your login name).")
]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="What to say.")]


def propose_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title (default: the session's).")] = None,
    target: Annotated[str | None, typer.Option(help="Branch to merge into (main).")] = None,
    push: Annotated[bool, typer.Option("--push", help="Push the branch to the remote.")] = False,
    github: Annotated[bool, typer.Option("--github", help="Open a GitHub pull request.")] = False,
    gitlab: Annotated[bool, typer.Option("--gitlab", help="Open a GitLab merge request.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose the session's work for merging: diff against main, a description written from
    its history, conflicts checked without touching any worktree. Proposing again updates it."""
    if github and gitlab:
        raise bw.InvalidInput("choose one of --github and --gitlab")
    host = "github" if github else "gitlab" if gitlab else None
    with workspace() as ws:
        proposal = ws.propose(session, title=title, target=target, push=push, host=host)
    if as_json:
        render.print_json(show.proposal_json(proposal))
    else:
        render.console.print(show.proposal_opened(proposal))


@proposal_app.command("list")
def list_cmd(
    project: ProjectOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Merged and closed ones too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the project's proposals (open ones, newest first)."""
    with workspace() as ws:
        found = ws.proposals(project, include_finished=all_)
    if as_json:
        render.print_json([show.proposal_json(p) for p in found])
    else:
        render.console.print(show.proposals_table(found))


@proposal_app.command("show")
def show_cmd(proposal: ProposalArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show a proposal: status, what its merge still lacks, description, reviews, comments,
    checks."""
    with workspace() as ws:
        details = ws.proposal(proposal, project=project)
    if as_json:
        render.print_json(show.details_json(details))
    else:
        show.print_details(details)


@proposal_app.command("check")
def check_cmd(proposal: ProposalArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Run the policy's required checks now on what merging the proposal would give."""
    with workspace() as ws:
        ran = ws.check_proposal(proposal, project=project)
    if as_json:
        render.print_json([c.model_dump(mode="json") for c in ran])
    else:
        for check in ran:
            render.console.print(show.check_line(check))
    raise typer.Exit(0 if all(c.passed for c in ran) else 1)


def review_cmd(proposal: ProposalArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show the proposal's diff, each hunk with the turn, prompt and tool call that wrote it."""
    with workspace() as ws:
        view = ws.review(proposal, project=project)
    if as_json:
        render.print_json(show.review_json(view))
    else:
        show.print_review(view)


def approve_cmd(
    proposal: ProposalArg,
    message: Annotated[str, typer.Option("--message", "-m", help="A remark.")] = "",
    by: ByOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve the proposal's current head (a later checkpoint makes the approval stale)."""
    with workspace() as ws:
        details = ws.approve(proposal, message=message, reviewer=by, project=project)
    _print_after_review(details, as_json)


def request_changes_cmd(
    proposal: ProposalArg,
    message: MessageOpt,
    by: ByOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Request changes: the merge waits until you approve."""
    with workspace() as ws:
        details = ws.request_changes(proposal, message, reviewer=by, project=project)
    _print_after_review(details, as_json)


def _print_after_review(details: bw.ProposalDetails, as_json: bool) -> None:
    if as_json:
        render.print_json(show.details_json(details))
    else:
        render.console.print(show.status_line(details))


def comment_cmd(
    proposal: ProposalArg,
    where: Annotated[str, typer.Argument(metavar="PATH:LINE", help="The line, as in app.py:12.")],
    message: MessageOpt,
    by: ByOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Comment on a line of the proposal's head; `address` sends open comments to the agent."""
    path, _, line = where.rpartition(":")
    if not path or not line.isdigit():
        raise bw.InvalidInput(f"{where!r} is not PATH:LINE; write it as app.py:12")
    with workspace() as ws:
        comment = ws.comment(proposal, path, int(line), message, reviewer=by, project=project)
    if as_json:
        render.print_json(comment.model_dump(mode="json"))
    else:
        render.console.print(
            f"comment on {comment.path}:{comment.line} ({comment.id[-8:].lower()})"
        )


def address_cmd(
    proposal: ProposalArg,
    model: ModelOpt = None,
    mode: ModeOpt = None,
    yes: YesOpt = False,
    max_steps: StepsOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one agent turn on the proposal's open review comments, each with its code. Exits
    as `ask` does; with --json, prints the turn's events as JSON lines."""
    with workspace() as ws:
        request = ws.address_request(proposal, project=project)
        driver = TurnDriver(ws, interactive=False, as_json=as_json, approve_all=yes)
        result = driver.run(request.session.id, request.message, model, mode, max_steps)
    if not as_json:
        render.console.print(render.turn_summary(result))
    raise typer.Exit(STATUS_EXIT.get(result.status, 1))


def merge_cmd(
    proposal: ProposalArg,
    strategy: Annotated[
        str | None, typer.Option(help="merge | squash | rebase (default: the policy's).")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge the proposal under the project's policy. Refused with the reason, changing
    nothing, until it is met; never overwrites a checkout with uncommitted changes."""
    with workspace() as ws:
        outcome = ws.merge(proposal, strategy=strategy, project=project)
    if as_json:
        render.print_json(show.outcome_json(outcome))
    else:
        render.console.print(show.merged_line(outcome))


def close_cmd(
    proposal: ProposalArg,
    reason: Annotated[str, typer.Option("--message", "-m", help="Why.")] = "",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a proposal without merging it (the session and its branch stay)."""
    with workspace() as ws:
        closed = ws.close_proposal(proposal, reason=reason, project=project)
    if as_json:
        render.print_json(show.proposal_json(closed))
    else:
        render.console.print(f"proposal #{closed.number} closed")


def conflicts_cmd(
    project: Annotated[
        str | None, typer.Argument(help="Project (default: the current dir's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The conflict radar: live sessions touching the same files, functions or lines as each
    other and as main now, and a suggested merge order."""
    with workspace() as ws:
        report = ws.conflicts(project)
    if as_json:
        render.print_json(show.radar_json(report))
    else:
        show.print_radar(report)


def policy_cmd(
    project: ProjectOpt = None,
    approvals: Annotated[
        int | None, typer.Option("--approvals", min=0, help="Approvals required.")
    ] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="A required check command (repeat).")
    ] = None,
    no_checks: Annotated[bool, typer.Option("--no-checks", help="Require no checks.")] = False,
    strategy: Annotated[str | None, typer.Option(help="merge | squash | rebase")] = None,
    protect: Annotated[
        list[str] | None,
        typer.Option("--protect", help="A protected branch or glob (repeat; '' for none)."),
    ] = None,
    delete_branch: Annotated[
        bool | None,
        typer.Option("--delete-branch/--keep-branch", help="The session's branch once merged."),
    ] = None,
    auto_propose: Annotated[
        bool | None,
        typer.Option("--auto-propose/--no-auto-propose", help="Propose after each changing turn."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the project's approval policy, or change it with the options."""
    if no_checks and check:  # which one was meant? Dropping the checks would relax the gate
        raise bw.InvalidInput("--no-checks and --check contradict each other; give one of them")
    checks = [] if no_checks else check
    changes = (approvals, checks, strategy, protect, delete_branch, auto_propose)
    with workspace() as ws:
        if all(value is None for value in changes):
            policy = ws.policy(project)
        else:
            policy = ws.set_policy(
                project,
                required_approvals=approvals,
                required_checks=checks,
                merge_strategy=strategy,
                protected_branches=[p for p in protect if p] if protect is not None else None,
                delete_branch=delete_branch,
                auto_propose=auto_propose,
            )
        main = ws.project(project).main_branch
    if as_json:
        render.print_json(policy.model_dump(mode="json"))
    else:
        render.console.print(show.policy_text(policy, main))


def register_proposal_commands(app: typer.Typer) -> None:
    """The top-level commands of the proposal workflow (`proposal …` is its own group)."""
    app.command("propose")(propose_cmd)
    app.command("review")(review_cmd)
    app.command("approve")(approve_cmd)
    app.command("request-changes")(request_changes_cmd)
    app.command("comment")(comment_cmd)
    app.command("address")(address_cmd)
    app.command("merge")(merge_cmd)
    app.command("close")(close_cmd)
    app.command("conflicts")(conflicts_cmd)
    app.command("policy")(policy_cmd)
