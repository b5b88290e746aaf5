"""`branchwork task …`, `trial …`, `compare`, `promote`, `suggest`: tasks and their attempts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live

import branchwork as bw
from branchwork.cli import render, render_tasks
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

if TYPE_CHECKING:
    from branchwork import Workspace

task_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Tasks: objectives, worked on by trials (one session each).",
    no_args_is_help=True,
)
trial_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Trials: attempts at a task, run side by side.",
    no_args_is_help=True,
)
TaskArg = Annotated[str, typer.Argument(help="Task number (3 or #3) or id.")]
TrialArg = Annotated[str, typer.Argument(help="Trial: TASK.N (3.2), its id, or its session.")]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="A label (repeatable).")]
CheckOpt = Annotated[
    str | None, typer.Option("--check", help="A command that passes when the task is done.")
]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d", help="Details.")]
PriorityOpt = Annotated[str | None, typer.Option(help="low | normal | high | urgent")]
POLL_S = 0.1


@task_app.command("new")
def new_cmd(
    title: Annotated[str, typer.Argument(help="The objective, such as 'Add E2E tests'.")],
    description: DescriptionOpt = None,
    check: CheckOpt = None,
    label: LabelOpt = None,
    priority: PriorityOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    budget_time: BudgetTimeOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a task. Its budget (tokens, dollars, seconds) is split among its trials."""
    with workspace() as ws:
        task = ws.new_task(
            title,
            project=project,
            description=description or "",
            check=check,
            labels=label or (),
            priority=priority or "normal",
            budget=budget_of(budget_tokens, budget_cost, budget_time, False),
        )
    if as_json:
        render.print_json(render_tasks.task_json(task, "open"))
        return
    render.console.print(f"task [bold]{task.ref}[/] {render.safe(task.title)}")


@task_app.command("list")
def list_cmd(
    status: Annotated[
        str | None,
        typer.Option(help="Only tasks in this status: open | in_progress | done | closed"),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the project's tasks with their status (it follows their trials)."""
    with workspace() as ws:
        found = ws.tasks(project, status=status)
    if as_json:
        render.print_json(
            [render_tasks.task_json(s.task, s.status, trials=s.trials) for s in found]
        )
        return
    render.console.print(render_tasks.tasks_table(found))


@task_app.command("show")
def show_cmd(task: TaskArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Show a task: its trials with what each spent, its comments, the totals."""
    with workspace() as ws:
        details = ws.task_details(task, project=project)
    if as_json:
        render.print_json(render_tasks.details_json(details))
        return
    render_tasks.print_details(details)


@task_app.command("edit")
def edit_cmd(
    task: TaskArg,
    title: Annotated[str | None, typer.Option(help="A new objective.")] = None,
    description: DescriptionOpt = None,
    check: Annotated[str | None, typer.Option(help="A new check ('' removes it).")] = None,
    label: LabelOpt = None,
    priority: PriorityOpt = None,
    close: Annotated[
        bool | None, typer.Option("--close/--open", help="Close the task, or reopen it.")
    ] = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_cost: BudgetCostOpt = None,
    budget_time: BudgetTimeOpt = None,
    no_budget: NoBudgetOpt = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a task (labels given replace its labels)."""
    with workspace() as ws:
        edited = ws.edit_task(
            task,
            project=project,
            title=title,
            description=description,
            check=check,
            labels=label,
            priority=priority,
            budget=budget_of(budget_tokens, budget_cost, budget_time, no_budget),
            closed=close,
        )
    if as_json:
        render.print_json(render_tasks.task_json(edited, None))
        return
    render.console.print(f"task [bold]{edited.ref}[/] {render.safe(edited.title)} updated")


@task_app.command("comment")
def comment_cmd(
    task: TaskArg,
    text: Annotated[str, typer.Argument(help="The comment.")],
    author: Annotated[str | None, typer.Option(help="Who writes (default: your login).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Add a comment to a task."""
    with workspace() as ws:
        added = ws.comment_task(task, text, project=project, author=author)
    render.console.print(f"comment by {render.safe(added.author)} added")


@task_app.command("start")
def start_cmd(
    task: TaskArg,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Its model.")] = None,
    prompt_variant: Annotated[str | None, typer.Option(help="Extra instructions.")] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start working on a task yourself: a trial with its own session, made current, in which
    `ask` and `chat` go on."""
    with workspace() as ws:
        trial = ws.start_task(task, project=project, model=model, prompt_variant=prompt_variant)
        session = ws.session(trial.session_id)
    if as_json:
        render.print_json(render_tasks.trial_json(trial))
        return
    render.console.print(
        f"trial {trial.number} of task {render.safe(task)}: session [bold]{session.short_id}[/] on "
        f"branch {render.safe(session.branch)}\nworktree {render.safe(session.worktree)}"
    )


# -- trials ------------------------------------------------------------------------------------


@trial_app.command("start")
def trial_start_cmd(
    task: TaskArg,
    n: Annotated[int | None, typer.Option("--n", "-n", min=1, help="How many trials.")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="A model for all, or one per trial.")
    ] = None,
    prompt_variant: Annotated[
        list[str] | None, typer.Option(help="Extra instructions, for all or one per trial.")
    ] = None,
    detach: Annotated[
        bool, typer.Option(help="Return at once; they run in the background.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start attempts at a task, each in its own session and branch from main's tip, run by the
    agent side by side (at most the project's `concurrent_turns` at once, the rest queued),
    with a live table of their progress until they end; exits 0 when one of them is done.
    Ctrl-C leaves them running. With --json (or --detach) it returns at once."""
    with workspace() as ws:
        started = ws.start_trials(
            task, project=project, n=n, models=model or (), prompt_variants=prompt_variant or ()
        )
        if as_json or detach:
            if as_json:
                render.print_json([render_tasks.trial_json(t) for t in started])
            else:
                render.console.print(f"{len(started)} trial(s) started; `task show {task}`")
            return
        finished = _watch(ws, task, project, {t.id for t in started})
    raise typer.Exit(0 if any(t.status == "done" for t in finished) else 1)


def _watch(ws: Workspace, task: str, project: str | None, ids: set[str]) -> list[bw.Trial]:
    """The live table of the trials started until they have all finished (Ctrl-C stops
    watching, not them)."""
    try:
        with Live(console=render.console, refresh_per_second=4) as live:
            while True:
                progress = [
                    p for p in ws.trial_progress(task, project=project) if p.trial.id in ids
                ]
                live.update(render_tasks.progress_table(progress))
                if all(p.trial.finished for p in progress):
                    return [p.trial for p in progress]
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        render.console.print(
            f"[dim]trials go on in the background: `task show {task}`, `trial stop TRIAL`[/]"
        )
        raise typer.Exit(130) from None


@trial_app.command("stop")
def trial_stop_cmd(trial: TrialArg, project: ProjectOpt = None) -> None:
    """Stop a queued or running trial (a running turn ends with a summary of its work)."""
    with workspace() as ws:
        stopped = ws.stop_trial(trial, project=project)
    render.console.print(
        f"trial {stopped.number}: {stopped.status} ({render.safe(stopped.detail)})"
    )


@trial_app.command("retry")
def trial_retry_cmd(trial: TrialArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """A new attempt like this one (same model, prompt variant and base), run in the background."""
    with workspace() as ws:
        again = ws.retry_trial(trial, project=project)
    if as_json:
        render.print_json(render_tasks.trial_json(again))
        return
    render.console.print(f"trial {again.number} started ({again.status})")


@trial_app.command("log")
def trial_log_cmd(trial: TrialArg, project: ProjectOpt = None) -> None:
    """What the trial's background worker printed (its session's `log` has the history)."""
    with workspace() as ws:
        text = ws.trial_log(trial, project=project)
    render.print_lines([text.rstrip("\n")] if text else [], live=False)


# -- compare, promote, suggest -----------------------------------------------------------------


def compare_cmd(
    task: TaskArg,
    diff: Annotated[
        tuple[str, str] | None, typer.Option(help="The diff between two trials: --diff 1 2.")
    ] = None,
    no_checks: Annotated[bool, typer.Option("--no-checks", help="Do not run checks.")] = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Run every check again, moved or not.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare a task's trials: status, files changed, the task's check on each (re-run only
    where the trial moved), turns, tokens, cost, time and approach."""
    with workspace() as ws:
        if diff is not None:
            render.print_diff(ws.trials_diff(task, diff[0], diff[1], project=project))
            return
        comparison = ws.compare(task, project=project, run_checks=not no_checks, recheck=recheck)
    if as_json:
        render.print_json(render_tasks.comparison_json(comparison))
        return
    render_tasks.print_comparison(comparison)


def promote_cmd(trial: TrialArg, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Make a trial the task's result; the others are discarded (worktrees freed, branches
    and histories kept)."""
    with workspace() as ws:
        done = ws.promote(trial, project=project)
    if as_json:
        render.print_json(
            {
                "task": done.task.number,
                "promoted": render_tasks.trial_json(done.promoted),
                "discarded": [render_tasks.trial_json(t) for t in done.discarded],
                "head": done.head,
                "proposal": done.proposal.number if done.proposal else None,
                "proposal_error": done.proposal_error,
            }
        )
        return
    render.console.print(
        f"trial {done.promoted.number} of task {done.task.ref} promoted at {done.head[:10]}; "
        f"{len(done.discarded)} other trial(s) discarded (branches kept)"
    )
    if done.proposal is not None:
        render.console.print(
            f"proposal #{done.proposal.number} opened for {render.safe(done.proposal.target)}: "
            f"`review {done.proposal.number}`, `approve`, `merge`"
        )
    else:
        render.err_console.print(f"[yellow]no proposal:[/] {render.safe(done.proposal_error)}")


def suggest_cmd(
    words: Annotated[list[str] | None, typer.Argument(help="[PROJECT], or: accept N")] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="A check to run on main (repeatable).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Also ask this model, from the repo map.")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Suggest tasks, each with its evidence: TODO/FIXME comments, checks failing on main (those
    given and those of the project's tasks), and with --model the model's proposals.
    `suggest accept N` creates suggestion N's task and its first trial's session."""
    args = words or []
    with workspace() as ws:
        if args[:1] == ["accept"]:
            if len(args) != 2 or not args[1].isdigit():
                raise bw.InvalidInput("give the suggestion's number: suggest accept N")
            task, trial = ws.accept_suggestion(int(args[1]), project=project)
            session = ws.session(trial.session_id)
            title = render.safe(task.title)
            render.console.print(
                f"task [bold]{task.ref}[/] {title}: trial {trial.number}, session "
                f"{session.short_id} (current) — go on with `ask …` or `chat`"
            )
            return
        if len(args) > 1:
            raise bw.InvalidInput("give at most a project: suggest [PROJECT]")
        found = ws.suggest(args[0] if args else project, checks=check or (), model=model)
    for note in found.notes:
        render.err_console.print(f"[yellow]note:[/] {render.safe(note)}")
    if as_json:
        render.print_json([s.model_dump(mode="json") for s in found.suggestions])
        return
    render.console.print(render_tasks.suggestions_table(found.suggestions))
