"""How tasks, trials, comparisons and suggestions look on a terminal and in JSON."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from rich.table import Table

from branchwork.cli import render
from branchwork.cli.render import money, safe, tokens_text

if TYPE_CHECKING:
    from branchwork import (
        Comparison,
        Spent,
        Suggestion,
        Task,
        TaskDetails,
        TaskSummary,
        Trial,
        TrialComparison,
        TrialProgress,
    )

STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "done": "green",
    "failed": "red",
    "stuck": "yellow",
    "promoted": "bold green",
    "discarded": "dim",
    "open": "",
    "in_progress": "cyan",
    "closed": "dim",
}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def task_json(task: Task, status: str | None, **extra: Any) -> dict[str, Any]:
    data = task.model_dump(mode="json")
    if status is not None:
        data["status"] = status
    return {**data, **extra}


def trial_json(trial: Trial, **extra: Any) -> dict[str, Any]:
    return {**trial.model_dump(mode="json"), **extra}


def spent_json(spent: Spent) -> dict[str, Any]:
    return {**spent.model_dump(mode="json"), "tokens": spent.tokens}


def details_json(details: TaskDetails) -> dict[str, Any]:
    return task_json(
        details.task,
        details.status,
        trials=[
            trial_json(f.trial, turns=f.turns, spent=spent_json(f.spent)) for f in details.trials
        ],
        comments=[c.model_dump(mode="json") for c in details.comments],
        total=spent_json(details.total),
    )


def tasks_table(found: list[TaskSummary]) -> Table:
    table = Table("#", "title", "status", "trials", "priority", "labels", "check", title="tasks")
    for s in found:
        t = s.task
        table.add_row(
            str(t.number),
            safe(t.title),
            styled(s.status),
            str(s.trials),
            t.priority,
            safe(", ".join(t.labels)),
            safe(t.check_command or ""),
        )
    return table


def spent_text(spent: Spent) -> str:
    used = tokens_text(spent.input_tokens, spent.output_tokens, estimated=spent.estimated)
    cost = money(spent.cost_usd if spent.priced else None)
    return f"{used}, {cost}, {spent.turn_ms / 1000:.1f} s"


def print_details(details: TaskDetails) -> None:
    task = details.task
    render.console.print(f"[bold]task {task.ref}[/] {safe(task.title)}  {styled(details.status)}")
    if task.description:
        render.console.print(safe(task.description))
    facts = [f"priority {task.priority}"]
    if task.labels:
        facts.append("labels " + ", ".join(task.labels))
    if task.check_command:
        facts.append(f"check `{task.check_command}`")
    render.console.print("[dim]" + safe("; ".join(facts)) + "[/]")
    table = Table("trial", "status", "model", "session", "turns", "used", "detail", title="trials")
    for f in details.trials:
        t = f.trial
        table.add_row(
            str(t.number),
            styled(t.status),
            safe(t.model or "default"),
            t.session_id[-8:].lower(),
            str(f.turns),
            spent_text(f.spent),
            safe(t.detail),
        )
    render.console.print(table)
    render.console.print(f"total: {spent_text(details.total)}")
    for c in details.comments:
        when = c.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        render.console.print(f"[bold]{safe(c.author)}[/] [dim]{when}[/] {safe(c.text)}")


def progress_table(progress: list[TrialProgress]) -> Table:
    table = Table("trial", "status", "model", "steps", "tokens", "cost", "time", "last action")
    for p in progress:
        table.add_row(
            str(p.trial.number),
            styled(p.trial.status),
            safe(p.trial.model or "default"),
            str(p.steps),
            f"{p.tokens:,}",
            money(p.cost_usd),
            f"{p.elapsed_s:.1f} s",
            safe(p.last_action[:60]),
        )
    return table


def _check_cell(c: TrialComparison) -> str:
    if c.check is None:
        return f"[dim]{safe(c.check_note)}[/]"
    verdict = "[green]pass[/]" if c.check.passed else f"[red]fail[/] (exit {c.check.exit_code})"
    again = "" if c.check.fresh else " [dim](earlier)[/]"
    return f"{verdict} {c.check.duration_ms / 1000:.1f} s{again}"


def print_comparison(comparison: Comparison) -> None:
    task = comparison.task
    render.console.print(f"[bold]task {task.ref}[/] {safe(task.title)}")
    table = Table(
        "trial", "status", "model", "files", "+/-", "check", "turns", "tokens", "cost", "time"
    )
    for c in comparison.trials:
        spent = c.spent
        table.add_row(
            str(c.trial.number),
            styled(c.trial.status),
            safe(c.trial.model or "default"),
            str(len(c.files)),
            f"[green]+{c.added}[/] [red]-{c.removed}[/]",
            _check_cell(c),
            str(c.turns),
            f"{spent.tokens:,}",
            money(spent.cost_usd if spent.priced else None),
            f"{spent.turn_ms / 1000:.1f} s",
        )
    render.console.print(table)
    for c in comparison.trials:
        render.console.print(f"[bold]trial {c.trial.number}[/] {safe(c.approach)}")
        for f in c.files[:10]:
            stat = "binary" if f.added is None else f"+{f.added} -{f.removed}"
            render.console.print(f"  [dim]{safe(f.path)} {stat}[/]")


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    return {
        "task": task_json(comparison.task, None),
        "trials": [_compared_json(c) for c in comparison.trials],
    }


def _compared_json(c: TrialComparison) -> dict[str, Any]:
    return trial_json(
        c.trial,
        session=c.session.short_id,
        branch=c.session.branch,
        head=c.head,
        files=[dataclasses.asdict(f) for f in c.files],
        added=c.added,
        removed=c.removed,
        check=dataclasses.asdict(c.check) if c.check is not None else None,
        check_note=c.check_note,
        turns=c.turns,
        spent=spent_json(c.spent),
        approach=c.approach,
    )


def suggestions_table(found: list[Suggestion]) -> Table:
    table = Table("#", "from", "task", "evidence", title="suggestions (`suggest accept N`)")
    for s in found:
        table.add_row(str(s.number), s.source, safe(s.title), safe(s.evidence[:120]))
    return table
