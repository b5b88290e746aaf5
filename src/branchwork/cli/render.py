"""Rendering for the CLI: Rich for people, JSON for scripts (the same models the API returns)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from branchwork.domain.events import (
    AgentMessage,
    Checkpoint,
    CommandFinished,
    CommandOutput,
    CommandStarted,
    Event,
    FileRead,
    FileWritten,
    ToolCall,
    ToolResult,
    UserMessage,
)
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import SessionState

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    print(json.dumps(data, default=str))


def print_json_lines(items: Iterable[dict[str, Any]]) -> None:
    for item in items:
        print(json.dumps(item, default=str), flush=True)


def session_json(session: Session, **extra: Any) -> dict[str, Any]:
    return {**session.model_dump(mode="json"), "short_id": session.short_id, **extra}


def project_json(project: Project) -> dict[str, Any]:
    return project.model_dump(mode="json")


def _when(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def projects_table(projects: list[Project]) -> Table:
    table = Table("name", "main", "path", "origin", title="projects")
    for p in projects:
        table.add_row(p.name, p.main_branch, p.path, p.origin or "")
    return table


def sessions_table(sessions: list[Session], current: str | None, names: dict[str, str]) -> Table:
    table = Table("", "id", "title", "project", "status", "branch", "base", "last activity")
    for s in sessions:
        table.add_row(
            "*" if s.id == current else "",
            s.short_id,
            escape(s.title),
            names.get(s.project_id, "?"),
            s.status,
            s.branch,
            s.base_commit[:10],
            _when(s.last_activity),
        )
    return table


def session_details(session: Session, project: Project, state: SessionState) -> Table:
    table = Table.grid(padding=(0, 2))
    rows = [
        ("session", f"{session.short_id}  {escape(session.title)}"),
        ("project", project.name),
        ("status", session.status),
        ("branch", session.branch),
        ("base", session.base_commit),
        ("head", state.head),
        ("worktree", session.worktree),
        ("port", f"{session.port}"),
        ("events", str(state.last_seq)),
        ("checkpoints", str(len(state.checkpoints))),
        ("commands", f"{state.commands} ({state.failed_commands} failed)"),
        ("created", _when(session.created_at)),
        ("last activity", _when(session.last_activity)),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    for todo in state.todos:
        table.add_row("[bold]sub-task[/]", f"[{'x' if todo.done else ' '}] {escape(todo.text)}")
    return table


def _event_summary(event: Event) -> str:
    p = event.payload
    if isinstance(p, UserMessage | AgentMessage):
        return escape(p.text)
    if isinstance(p, CommandStarted):
        return f"[bold]$ {escape(p.command)}[/]"
    if isinstance(p, CommandOutput):
        return escape(p.text.rstrip("\n"))
    if isinstance(p, CommandFinished):
        colour = "green" if p.status == "ok" else "red"
        return f"[{colour}]{p.status}[/] exit={p.exit_code} {p.duration_ms} ms, {p.output_bytes} B"
    if isinstance(p, FileRead | FileWritten):
        return escape(p.path)
    if isinstance(p, Checkpoint):
        return f"{p.commit[:10]} {escape(p.message)} ({len(p.files)} file(s))"
    if isinstance(p, ToolCall):
        return f"{p.name}({escape(json.dumps(p.arguments)[:200])})"
    if isinstance(p, ToolResult):
        return ("[red]error[/] " if p.is_error else "") + escape(p.output[:300])
    fields = p.model_dump(exclude={"kind"})
    return escape(", ".join(f"{k}={str(v)[:80]}" for k, v in fields.items()))


def print_event(event: Event) -> None:
    ts = event.ts.astimezone().strftime("%H:%M:%S")
    console.print(
        f"[dim]{event.seq:>4} {ts}[/] [cyan]{event.kind:<18}[/] [dim]{event.actor:<6}[/] "
        f"{_event_summary(event)}"
    )
    if isinstance(event.payload, FileWritten) and event.payload.diff:
        print_diff(event.payload.diff)


def print_diff(text: str) -> None:
    if not text.strip():
        console.print("[dim](no changes)[/]")
        return
    console.print(Syntax(text, "diff", theme="ansi_dark", background_color="default"))
