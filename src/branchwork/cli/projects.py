"""`branchwork project …`: register, list, show, configure, remove; env vars and secrets."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

import branchwork as bw
from branchwork.cli import render
from branchwork.cli._common import (
    BudgetCostOpt,
    BudgetTimeOpt,
    BudgetTokensOpt,
    JsonOpt,
    NoBudgetOpt,
    ProjectOpt,
    budget_of,
    workspace,
)

project_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Register git repositories and configure them.",
    no_args_is_help=True,
)
env_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Per-project environment variables and secrets.",
    no_args_is_help=True,
)
project_app.add_typer(env_app, name="env")

NameArg = Annotated[str | None, typer.Argument(help="Project name (default: the current dir's).")]


@project_app.command("add")
def add_cmd(
    source: Annotated[str, typer.Argument(help="Path of a local repository, or a URL to clone.")],
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder's).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a repository. A local one is used in place; your checkout is never touched."""
    with workspace() as ws:
        project = ws.add_project(source, name=name)
    if as_json:
        render.print_json(render.project_json(project))
    else:
        render.console.print(
            f"project [bold]{escape(project.name)}[/] ({escape(project.path)}), "
            f"main branch {escape(project.main_branch)}"
        )


@project_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List registered projects."""
    with workspace() as ws:
        projects = ws.projects()
    if as_json:
        render.print_json([render.project_json(p) for p in projects])
    else:
        render.console.print(render.projects_table(projects))


@project_app.command("show")
def show_cmd(name: NameArg = None, as_json: JsonOpt = False) -> None:
    """Show a project and its configuration."""
    with workspace() as ws:
        project = ws.project(name)
    if as_json:
        render.print_json(render.project_json(project))
        return
    render.console.print(render.projects_table([project]))
    render.console.print(project.config.model_dump())


@project_app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="Project name.")],
    force: Annotated[bool, typer.Option(help="Also when sessions are active.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Forget a project. Your repository and the session branches in it are kept."""
    with workspace() as ws:
        project = ws.remove_project(name, force=force)
    if as_json:
        render.print_json({"id": project.id, "removed": True})
    else:
        render.console.print(
            f"removed project {escape(project.name)}; {escape(project.path)} is untouched"
        )


@project_app.command("config")
def config_cmd(
    name: NameArg = None,
    setup: Annotated[str | None, typer.Option(help="Command run in each new worktree.")] = None,
    copy: Annotated[
        list[str] | None, typer.Option("--copy", help="Glob of untracked files to copy in.")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="ask | auto-edit | autopilot")] = None,
    model: Annotated[str | None, typer.Option(help="Default model, provider:name.")] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="How commands run: auto | bubblewrap | local.")
    ] = None,
    network: Annotated[
        str | None, typer.Option(help="Whether commands reach the network: on | off.")
    ] = None,
    concurrent_turns: Annotated[
        int | None, typer.Option(min=1, help="Trials running turns at once; the rest queue.")
    ] = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    budget_time: BudgetTimeOpt = None,
    no_budget: NoBudgetOpt = False,
    pool_size: Annotated[
        int | None, typer.Option(min=0, max=16, help="Worktrees kept ready at main's tip.")
    ] = None,
    pool_setup: Annotated[
        bool | None,
        typer.Option("--pool-setup/--no-pool-setup", help="Run the setup in them ahead of time."),
    ] = None,
    disk_quota: Annotated[
        int | None, typer.Option(min=0, help="MB of worktrees before a warning (0: none).")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Re-read .branchwork.toml from main.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or change the project's session configuration; a budget counts all the project's
    sessions together."""
    budget = budget_of(budget_tokens, budget_cost, budget_time, no_budget)
    with workspace() as ws:
        project = ws.configure_project(
            name,
            setup=setup,
            copy_files=copy,
            mode=mode,
            model=model,
            sandbox=sandbox,
            network=network,
            concurrent_turns=concurrent_turns,
            budget=budget,
            pool_size=pool_size,
            pool_setup=pool_setup,
            disk_quota_mb=disk_quota,
            reload=reload,
        )
    if as_json:
        render.print_json(project.config.model_dump(mode="json") | {"id": project.id})
    else:
        render.console.print(project.config.model_dump())


@env_app.command("set")
def env_set_cmd(
    assignment: Annotated[str, typer.Argument(help="KEY=VALUE")],
    secret: Annotated[bool, typer.Option(help="Keep the value out of every record.")] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a variable passed to every command of the project's sessions."""
    key, sep, value = assignment.partition("=")
    if not sep:
        raise bw.InvalidInput(f"{assignment!r} is not KEY=VALUE; write it as KEY=VALUE")
    with workspace() as ws:
        ws.set_env(project, key, value, secret=secret)
    if as_json:
        render.print_json({"id": key, "key": key, "secret": secret})
    else:
        render.console.print(f"{key} set{' (secret)' if secret else ''}")


@env_app.command("unset")
def env_unset_cmd(key: str, project: ProjectOpt = None) -> None:
    """Remove a variable or secret."""
    with workspace() as ws:
        ws.unset_env(project, key)
    render.console.print(f"{key} removed")


@env_app.command("list")
def env_list_cmd(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the project's variables; secret values are masked."""
    with workspace() as ws:
        entries = ws.env(project)
    if as_json:
        render.print_json([{"key": e.key, "value": e.value, "secret": e.secret} for e in entries])
        return
    for e in entries:
        render.console.print(f"{e.key}={escape(e.value)}{'  [dim](secret)[/]' if e.secret else ''}")
