"""`branchwork session …`: create, list, show, switch, archive, restore."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from branchwork.cli import render
from branchwork.cli._common import (
    BudgetCostOpt,
    BudgetTimeOpt,
    BudgetTokensOpt,
    JsonOpt,
    ModelOpt,
    ModeOpt,
    NoBudgetOpt,
    ProjectOpt,
    budget_of,
    workspace,
)

session_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Sessions: a branch, a worktree and a history.",
    no_args_is_help=True,
)
SessionArg = Annotated[str | None, typer.Argument(help="Session id, short id or branch.")]


@session_app.command("new")
def new_cmd(
    project: ProjectOpt = None,
    title: Annotated[str | None, typer.Option(help="What the session is for.")] = None,
    from_ref: Annotated[
        str | None, typer.Option("--from", help="Start from this ref instead of main.")
    ] = None,
    switch: Annotated[
        bool, typer.Option(help="Make it the current session of its project.")
    ] = True,
    mode: ModeOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a session: its own branch from main's tip and its own worktree."""
    with workspace() as ws:
        session = ws.new_session(
            project, title=title, from_ref=from_ref, mode=mode, model=model, current=switch
        )
        render.warnings(ws.recent_events(session, limit=20))
    if as_json:
        render.print_json(render.session_json(session))
        return
    render.console.print(
        f"session [bold]{session.short_id}[/] on branch {session.branch}\n"
        f"worktree {session.worktree}  (PORT={session.port})"
    )


@session_app.command("list")
def list_cmd(
    project: ProjectOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Include archived, all projects.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List sessions (status, branch, base, last activity)."""
    with workspace() as ws:
        listing = ws.session_listing(
            project, include_archived=all_, all_projects=all_ and not project
        )
    if as_json:
        render.print_json([render.session_json(s) for s in listing.sessions])
        return
    render.console.print(render.sessions_table(listing))


@session_app.command("show")
def show_cmd(session: SessionArg = None, as_json: JsonOpt = False) -> None:
    """Show a session: branch, worktree, head, checkpoints, sub-tasks."""
    with workspace() as ws:
        details = ws.session_details(session)
    if as_json:
        state = details.state.model_dump(mode="json")
        render.print_json(render.session_json(details.session, state=state))
        return
    render.console.print(render.session_details(details))


@session_app.command("config")
def config_cmd(
    session: SessionArg = None,
    mode: ModeOpt = None,
    model: ModelOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    budget_time: BudgetTimeOpt = None,
    no_budget: NoBudgetOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the session's own mode, model (they override the project's) and budget
    (tokens, dollars and seconds of turns it may use, from its start)."""
    budget = budget_of(budget_tokens, budget_cost, budget_time, no_budget)
    with workspace() as ws:
        details = ws.configure_session(session, mode=mode, model=model, budget=budget)
    target = details.session
    if as_json:
        state = details.state.model_dump(mode="json")
        render.print_json(render.session_json(target, state=state))
    else:
        render.console.print(
            f"mode: {target.mode or 'project default'}, model: {target.model or 'default'}, "
            f"budget: {render.budget_text(details.state.budget)}"
        )


@session_app.command("fork")
def fork_cmd(
    session: SessionArg = None,
    at: Annotated[
        str | None,
        typer.Option(help="A checkpoint (sha prefix, -N, base) or an event seq; default: newest."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="What the fork is for.")] = None,
    trial: Annotated[
        bool, typer.Option("--trial", help="Make the fork a new trial of the parent's task.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a new session from a point of another: its branch begins at that checkpoint, its
    conversation is the parent's up to there (linked, not copied). The parent is not changed."""
    with workspace() as ws:
        fork = ws.fork_session(session, at=at, title=title, as_trial=trial)
    if as_json:
        render.print_json(render.session_json(fork))
        return
    render.console.print(
        f"session [bold]{fork.short_id}[/] forked from {fork.parent_short_id} at event "
        f"{fork.parent_seq}, on branch {escape(fork.branch)}\nworktree {escape(fork.worktree)}"
    )


@session_app.command("switch")
def switch_cmd(
    session: Annotated[str, typer.Argument(help="Session id, short id or branch.")],
    as_json: JsonOpt = False,
) -> None:
    """Make a session the current one of its project, for later commands run in that project."""
    with workspace() as ws:
        target = ws.switch_session(session)
    if as_json:
        render.print_json(render.session_json(target))
    else:
        render.console.print(f"current session: {target.short_id} ({escape(target.branch)})")


@session_app.command("archive")
def archive_cmd(
    session: SessionArg = None,
    force: Annotated[bool, typer.Option(help="Even while a command seems to run.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove the worktree; the branch and the history are kept."""
    with workspace() as ws:
        target = ws.archive_session(session, force=force)
    if as_json:
        render.print_json(render.session_json(target))
    else:
        render.console.print(f"archived {target.short_id}; branch {escape(target.branch)} kept")


@session_app.command("restore")
def restore_cmd(
    session: Annotated[str, typer.Argument(help="Session id, short id or branch.")],
    as_json: JsonOpt = False,
) -> None:
    """Recreate the worktree from the branch tip and reactivate the session."""
    with workspace() as ws:
        target = ws.restore_session(session)
    if as_json:
        render.print_json(render.session_json(target))
    else:
        render.console.print(f"restored {target.short_id} at {escape(target.worktree)}")
