"""Rendering for the CLI: Rich for people, JSON for scripts (the same models the API returns)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from branchwork.domain.events import (
    AgentMessage,
    ApprovalDecided,
    ApprovalRequested,
    Archived,
    Checkpoint,
    CommandFinished,
    CommandOutput,
    CommandStarted,
    ContextRef,
    Event,
    FileRead,
    FileWritten,
    Interrupted,
    Note,
    Reasoning,
    Restored,
    Reverted,
    SessionCreated,
    TodoUpdated,
    ToolCall,
    ToolResult,
    TurnFinished,
    TurnStarted,
    UserMessage,
)
from branchwork.domain.models import Project, Session
from branchwork.domain.replay import SessionState

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


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
        table.add_row(escape(p.name), escape(p.main_branch), escape(p.path), escape(p.origin or ""))
    return table


def sessions_table(sessions: list[Session], current: str | None, names: dict[str, str]) -> Table:
    table = Table("", "id", "title", "project", "status", "branch", "base", "last activity")
    for s in sessions:
        table.add_row(
            "*" if s.id == current else "",
            s.short_id,
            escape(s.title),
            escape(names.get(s.project_id, "?")),
            s.status,
            escape(s.branch),
            s.base_commit[:10],
            _when(s.last_activity),
        )
    return table


def session_details(session: Session, project: Project, state: SessionState) -> Table:
    table = Table.grid(padding=(0, 2))
    rows = [
        ("session", f"{session.short_id}  {escape(session.title)}"),
        ("project", escape(project.name)),
        ("status", session.status),
        ("branch", escape(session.branch)),
        ("base", session.base_commit),
        ("head", state.head),
        ("worktree", escape(session.worktree)),
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
    for kinds, describe in _SUMMARIES:
        if isinstance(p, kinds):
            return describe(p)
    fields = p.model_dump(exclude={"kind"})
    return escape(", ".join(f"{k}={str(v)[:80]}" for k, v in fields.items()))


def _finished(p: Any) -> str:
    colour = "green" if p.status == "ok" else "red"
    return f"[{colour}]{p.status}[/] exit={p.exit_code} {p.duration_ms} ms, {p.output_bytes} B"


def _turn_finished(p: Any) -> str:
    colour = "green" if p.status == "completed" else "yellow"
    detail = f": {escape(p.detail)}" if p.detail else ""
    return (
        f"[{colour}]{p.status}[/] {p.steps} step(s), "
        f"{p.input_tokens}→{p.output_tokens} tokens{detail}"
    )


def _decided(p: Any) -> str:
    verdict = "[green]approved[/]" if p.approved else "[red]denied[/]"
    return verdict + (f" ({escape(p.reason)})" if p.reason else "")


_SUMMARIES: list[tuple[Any, Callable[[Any], str]]] = [
    ((UserMessage, AgentMessage, Note), lambda p: escape(p.text)),
    (Reasoning, lambda p: f"[dim]{escape(p.text)}[/]"),
    (SessionCreated, lambda p: f"{p.branch} from {p.from_ref} at {p.base_commit[:10]}"),
    (CommandStarted, lambda p: f"[bold]$ {escape(p.command)}[/]"),
    (CommandOutput, lambda p: escape(p.text.rstrip(chr(10)))),
    (CommandFinished, _finished),
    ((FileRead, FileWritten), lambda p: escape(p.path)),
    (Checkpoint, lambda p: f"{p.commit[:10]} {escape(p.message)} ({len(p.files)} file(s))"),
    (Reverted, lambda p: f"to {p.to_checkpoint[:10]}, as {p.commit[:10]}"),
    ((Archived, Restored), lambda p: f"head {p.head[:10]}"),
    (ToolCall, lambda p: f"{p.name}({escape(json.dumps(p.arguments)[:200])})"),
    (ToolResult, lambda p: ("[red]error[/] " if p.is_error else "") + escape(p.output[:300])),
    (TurnStarted, lambda p: f"{p.model}, mode {p.mode}"),
    (TurnFinished, _turn_finished),
    (ApprovalRequested, lambda p: escape(p.summary)),
    (ApprovalDecided, _decided),
    (TodoUpdated, lambda p: f"[{'x' if p.done else ' '}] {escape(p.text)}"),
    (ContextRef, lambda p: f"{p.lookup} {escape(p.query)!r}: {len(p.results)} result(s)"),
    (Interrupted, lambda p: escape(p.reason)),
]


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


def _compact_args(arguments: dict[str, Any]) -> str:
    shown = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("\n", "⏎")
        shown.append(f"{key}={text[:60]}{'…' if len(text) > 60 else ''}")
    return escape(", ".join(shown))


def _result_preview(p: ToolResult) -> str:
    lines = p.output.splitlines() or [""]
    if p.name == "run_command":
        lines = lines[:1]
    preview = "\n    ".join(escape(line[:160]) for line in lines[:4])
    more = f"\n    [dim]… {len(lines) - 4} more lines[/]" if len(lines) > 4 else ""
    return f"  [{'red' if p.is_error else 'dim'}]⎿ {preview}[/]{more}"


def print_chat_event(event: Event) -> None:
    """How a chat shows the events of a turn (answer text and command output are streamed)."""
    p = event.payload
    if isinstance(p, ToolCall):
        console.print(f"\n[cyan]⏺ {escape(p.name)}[/]({_compact_args(p.arguments)})")
    elif isinstance(p, ToolResult):
        console.print(_result_preview(p))
    elif isinstance(p, FileWritten):
        print_diff(p.diff)
    elif isinstance(p, ApprovalDecided):
        console.print(f"  {_decided(p)}")
    elif isinstance(p, TodoUpdated):
        console.print(f"  {'☑' if p.done else '☐'} {escape(p.text)}")
    elif isinstance(p, Checkpoint):
        console.print(f"[dim]checkpoint {p.commit[:10]} ({len(p.files)} file(s))[/]")
    elif isinstance(p, Interrupted | Note):
        console.print(f"[yellow]{escape(getattr(p, 'reason', '') or getattr(p, 'text', ''))}[/]")
