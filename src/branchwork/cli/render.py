"""Rendering for the CLI: Rich for people, JSON for scripts (the same models the API returns)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from branchwork._lazy import lazy_module

if TYPE_CHECKING:
    from rich import progress as rich_progress, syntax as rich_syntax

    # rendering dispatches on `kind`: no models are loaded for --help
    from branchwork import (
        Budget,
        Check,
        Compacted,
        DiskUsage,
        Event,
        GcReport,
        Project,
        RebuildReport,
        Reference,
        Session,
        SessionDetails,
        SessionListing,
        SessionState,
        Symbol,
        TurnResult,
    )
else:  # loaded on first use (pygments alone is ~10 ms of start-up)
    rich_progress = lazy_module("rich.progress")
    rich_syntax = lazy_module("rich.syntax")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def open_consoles() -> None:
    """Make the consoles again for this process's terminal and environment. A console reads
    its colours and width when it is made; a warm child (`cli/warm.py`) takes its caller's
    terminal and environment after the import made them."""
    global console, err_console
    console = Console(highlight=False)
    err_console = Console(stderr=True, highlight=False, soft_wrap=True)


# Control characters (ESC …) in text from a repository, a model or a command would reach the
# terminal as escape sequences: they are dropped from everything shown (tab and newline stay).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """`text` for Rich markup: its markup escaped, its control characters dropped."""
    return escape(_CONTROLS.sub("", text))


def symbol_line(item: Symbol | Reference) -> str:
    """A definition (its kind) or a reference (its line of text), with where it is."""
    where = f"[cyan]{safe(item.path)}[/]:[bold]{item.line}[/]"
    kind = getattr(item, "kind", None)
    what = kind or ("definition" if getattr(item, "is_definition", False) else "reference")
    return f"{where} {what} {safe(getattr(item, 'text', '') or item.name)}"


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr; yields the `progress(done, total)` callback."""
    p = rich_progress
    columns = (p.TextColumn(label), p.BarColumn(), p.MofNCompleteColumn(), p.TimeElapsedColumn())
    with p.Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def checks_table(checks: list[Check]) -> Table:
    table = Table.grid(padding=(0, 2))
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[red]problem[/]"
        table.add_row(f"[bold]{safe(check.name)}[/]", mark, safe(check.detail))
    return table


def rebuild_summary(report: RebuildReport) -> str:
    lines = [
        f"projects registered again: {', '.join(report.projects) or 'none'}",
        f"sessions recovered: {', '.join(report.sessions) or 'none'} "
        "(files and branches intact; their histories before now are gone)",
    ]
    lines += [f"[yellow]skipped[/] {safe(item)}" for item in report.skipped]
    return "\n".join(lines)


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    print(json.dumps(data, default=str))


def print_json_lines(items: Iterable[dict[str, Any]], *, live: bool = True) -> None:
    """One JSON document per line on stdout."""
    print_lines((json.dumps(item, default=str) for item in items), live=live)


def print_lines(lines: Iterable[str], *, live: bool = True) -> None:
    """Lines on stdout. `live`: each is flushed as it comes (a follower reads it at once);
    otherwise the output is buffered (a long log streams fast)."""
    write, flush = sys.stdout.write, sys.stdout.flush
    for line in lines:
        write(line + "\n")
        if live:
            flush()
    flush()


def session_json(session: Session, **extra: Any) -> dict[str, Any]:
    return {**session.model_dump(mode="json"), "short_id": session.short_id, **extra}


def project_json(project: Project) -> dict[str, Any]:
    return project.model_dump(mode="json")


def _when(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def projects_table(projects: list[Project]) -> Table:
    table = Table("name", "main", "path", "origin", title="projects")
    for p in projects:
        table.add_row(safe(p.name), safe(p.main_branch), safe(p.path), safe(p.origin or ""))
    return table


def sessions_table(listing: SessionListing) -> Table:
    """`*` marks each project's current session."""
    table = Table("", "id", "title", "project", "status", "branch", "base", "last activity")
    names = listing.project_names
    for s in listing.sessions:
        table.add_row(
            "*" if s.id in listing.current_ids else "",
            s.short_id,
            safe(s.title),
            safe(names.get(s.project_id, "?")),
            s.status,
            safe(s.branch),
            s.base_commit[:10],
            _when(s.last_activity),
        )
    return table


def session_details(details: SessionDetails) -> Table:
    session, project, state = details.session, details.project, details.state
    table = Table.grid(padding=(0, 2))
    rows = [
        ("session", f"{session.short_id}  {safe(session.title)}"),
        ("project", safe(project.name)),
        ("status", session.status),
        ("branch", safe(session.branch)),
        ("base", session.base_commit),
        ("head", state.head),
        ("worktree", safe(session.worktree)),
        ("port", f"{session.port}"),
        ("events", str(state.last_seq)),
        ("checkpoints", str(len(state.checkpoints))),
        ("commands", f"{state.commands} ({state.failed_commands} failed)"),
        ("turns", f"{state.turns}" + (f" (last: {state.last_turn_status})" if state.turns else "")),
        ("used", _spent(state)),
        ("budget", _budget(state)),
        ("created", _when(session.created_at)),
        ("last activity", _when(session.last_activity)),
    ]
    if session.parent_id:
        rows.insert(3, ("forked from", f"{session.parent_short_id} at event {session.parent_seq}"))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    for todo in state.todos:
        table.add_row("[bold]sub-task[/]", f"[{'x' if todo.done else ' '}] {safe(todo.text)}")
    return table


def _spent(state: SessionState) -> str:
    spent = state.usage
    tokens = tokens_text(spent.input_tokens, spent.output_tokens, estimated=spent.estimated)
    cost = money(spent.cost_usd if spent.priced else None)
    return (
        f"{tokens} in {spent.model_calls} model call(s), {cost}, "
        f"{spent.model_ms / 1000:.1f} s of model time, {spent.turn_ms / 1000:.1f} s of turns"
    )


def _budget(state: SessionState) -> str:
    return budget_text(state.budget)


def budget_text(budget: Budget) -> str:
    parts = [
        f"{budget.tokens:,} tokens" if budget.tokens else "",
        f"${budget.cost_usd:.2f}" if budget.cost_usd else "",
        f"{budget.seconds:.0f} s" if budget.seconds else "",
    ]
    return ", ".join(p for p in parts if p) or "none"


def _event_summary(event: Event) -> str:
    describe = _SUMMARIES.get(event.kind)
    if describe is not None:
        return describe(event.payload)
    fields = event.payload.model_dump(exclude={"kind"})
    return safe(", ".join(f"{k}={str(v)[:80]}" for k, v in fields.items()))


def _finished(p: Any) -> str:
    colour = "green" if p.status == "ok" else "red"
    return f"[{colour}]{p.status}[/] exit={p.exit_code} {p.duration_ms} ms, {p.output_bytes} B"


def _turn_finished(p: Any) -> str:
    colour = "green" if p.status == "completed" else "yellow"
    detail = f": {safe(p.detail)}" if p.detail else ""
    return (
        f"[{colour}]{p.status}[/] {p.steps} step(s), "
        f"{tokens_text(p.input_tokens, p.output_tokens)}, {money(p.cost_usd)}, "
        f"{p.duration_ms / 1000:.1f} s{detail}"
    )


def _model_call(p: Any) -> str:
    used = tokens_text(p.input_tokens, p.output_tokens, estimated=p.usage_source == "estimated")
    first = f", first token {p.ttft_ms} ms" if p.ttft_ms is not None else ""
    return f"{safe(p.model)} ({p.purpose}): {used}, {p.latency_ms} ms{first}, {money(p.cost_usd)}"


def _budget_set(p: Any) -> str:
    parts = [
        f"{p.tokens:,} tokens" if p.tokens else "",
        f"${p.cost_usd:.2f}" if p.cost_usd else "",
        f"{p.seconds:.0f} s" if p.seconds else "",
    ]
    return "budget: " + (", ".join(x for x in parts if x) or "none")


def _decided(p: Any) -> str:
    verdict = "[green]approved[/]" if p.approved else "[red]denied[/]"
    return verdict + (f" ({safe(p.reason)})" if p.reason else "")


def _text(p: Any) -> str:
    return safe(p.text)


_SUMMARIES: dict[str, Callable[[Any], str]] = {
    "user_message": _text,
    "agent_message": _text,
    "note": _text,
    "reasoning": lambda p: f"[dim]{safe(p.text)}[/]",
    "session_created": lambda p: f"{p.branch} from {p.from_ref} at {p.base_commit[:10]}",
    "command_started": lambda p: f"[bold]$ {safe(p.command)}[/]",
    "command_output": lambda p: safe(p.text.rstrip(chr(10))),
    "command_finished": _finished,
    "file_read": lambda p: safe(p.path),
    "file_written": lambda p: safe(p.path),
    "checkpoint": lambda p: f"{p.commit[:10]} {safe(p.message)} ({len(p.files)} file(s))",
    "reverted": lambda p: f"to {p.to_checkpoint[:10]}, as {p.commit[:10]}",
    "archived": lambda p: f"head {p.head[:10]}",
    "restored": lambda p: f"head {p.head[:10]}",
    "tool_call": lambda p: f"{p.name}({safe(json.dumps(p.arguments)[:200])})",
    "tool_result": lambda p: ("[red]error[/] " if p.is_error else "") + safe(p.output[:300]),
    "turn_started": lambda p: f"{p.model}, mode {p.mode}",
    "turn_finished": _turn_finished,
    "approval_requested": lambda p: safe(p.summary),
    "approval_decided": _decided,
    "todo_updated": lambda p: f"[{'x' if p.done else ' '}] {safe(p.text)}",
    "context_ref": lambda p: f"{p.lookup} {safe(p.query)!r}: {len(p.results)} result(s)",
    "interrupted": lambda p: safe(p.reason),
    "model_call": _model_call,
    "budget_set": _budget_set,
    "compacted": lambda p: f"{p.messages} entries summarised: {safe(p.summary[:300])}",
    "trial_started": lambda p: (
        f"task #{p.task_number}, trial {p.trial_number}: {safe(p.objective)}"
        + (f" ({safe(p.model)})" if p.model else "")
    ),
    "trial_updated": lambda p: p.status + (f": {safe(p.detail)}" if p.detail else ""),
    "promoted": lambda p: f"at {p.head[:10]}; {len(p.discarded)} other trial(s) discarded",
    "forked": lambda p: f"from {p.parent_id[-8:].lower()} at event {p.parent_seq}, {p.commit[:10]}",
    "check_run": lambda p: (
        f"{'[green]passed[/]' if p.passed else '[red]failed[/]'} {safe(p.check)} "
        f"on {p.head[:10]} ({p.duration_ms} ms)"
    ),
    "proposal_opened": lambda p: f"#{p.number} {safe(p.title)} into {p.target}",
    "proposal_updated": lambda p: (
        f"head {p.head[:10]}"
        + (f", {p.stale_approvals} approval(s) stale" if p.stale_approvals else "")
        + (f", conflicts in {safe(', '.join(p.conflicts))}" if p.conflicts else "")
    ),
    "review": lambda p: (
        f"{safe(p.reviewer)}: {p.verdict.replace('_', ' ')}"
        + (f" ({safe(p.message)})" if p.message else "")
    ),
    "comment": lambda p: f"{safe(p.reviewer)} on {safe(p.path)}:{p.line}: {safe(p.text)}",
    "merged": lambda p: f"into {p.target} by {p.strategy} as {p.commit[:10]}",
    "proposal_closed": lambda p: safe(p.reason) or "closed",
    "terminal_opened": lambda p: f"{safe(p.user)}: {safe(p.shell)}",
    "terminal_closed": lambda p: f"{p.transcript_bytes} bytes, exit {p.exit_code}",
}


def print_event(event: Event) -> None:
    ts = event.ts.astimezone().strftime("%H:%M:%S")
    console.print(
        f"[dim]{event.seq:>4} {ts}[/] [cyan]{event.kind:<18}[/] [dim]{event.actor:<6}[/] "
        f"{_event_summary(event)}"
    )
    diff = getattr(event.payload, "diff", "")
    if diff:
        print_diff(diff)


PLAIN_DIFF_BYTES = 512 * 1024  # larger diffs are printed as they are, not highlighted


def print_diff(text: str) -> None:
    if not text.strip():
        console.print("[dim](no changes)[/]")
        return
    text = _CONTROLS.sub("", text)  # a file's escape sequences are not the terminal's
    if len(text) > PLAIN_DIFF_BYTES:
        print_lines([text.rstrip("\n")], live=False)
        return
    console.print(rich_syntax.Syntax(text, "diff", theme="ansi_dark", background_color="default"))


def _compact_args(arguments: dict[str, Any]) -> str:
    shown = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("\n", "⏎")
        shown.append(f"{key}={text[:60]}{'…' if len(text) > 60 else ''}")
    return safe(", ".join(shown))


def _result_preview(p: Any) -> str:
    lines = p.output.splitlines() or [""]
    if p.name == "run_command":
        lines = lines[:1]
    preview = "\n    ".join(safe(line[:160]) for line in lines[:4])
    more = f"\n    [dim]… {len(lines) - 4} more lines[/]" if len(lines) > 4 else ""
    return f"  [{'red' if p.is_error else 'dim'}]⎿ {preview}[/]{more}"


_CHAT_VIEWS: dict[str, Callable[[Any], str]] = {
    "tool_call": lambda p: f"\n[cyan]⏺ {safe(p.name)}[/]({_compact_args(p.arguments)})",
    "tool_result": _result_preview,
    "approval_decided": lambda p: f"  {_decided(p)}",
    "todo_updated": lambda p: f"  {'☑' if p.done else '☐'} {safe(p.text)}",
    "checkpoint": lambda p: f"[dim]checkpoint {p.commit[:10]} ({len(p.files)} file(s))[/]",
    "interrupted": lambda p: f"[yellow]{safe(p.reason)}[/]",
    "note": lambda p: f"[yellow]{safe(p.text)}[/]",
    "compacted": lambda p: f"[dim]compacted {p.messages} earlier entries into a summary[/]",
}


def print_chat_event(event: Event) -> None:
    """How a chat shows the events of a turn (answer text and command output are streamed)."""
    if event.kind == "file_written":
        print_diff(getattr(event.payload, "diff", ""))
        return
    view = _CHAT_VIEWS.get(event.kind)
    if view is not None:
        console.print(view(event.payload))


def money(cost: float | None) -> str:
    return "cost unknown" if cost is None else f"${cost:.4f}"


def tokens_text(input_tokens: int, output_tokens: int, *, estimated: bool = False) -> str:
    mark = "~" if estimated else ""
    return f"{mark}{input_tokens:,}→{mark}{output_tokens:,} tokens"


def turn_summary(result: TurnResult) -> str:
    """The line that ends a turn: how, in how many steps, what it used."""
    colour = "green" if result.status == "completed" else "yellow"
    usage = result.usage
    used = tokens_text(
        usage.input_tokens, usage.output_tokens, estimated=usage.source == "estimated"
    )
    line = (
        f"[{colour}]{result.status}[/] after {result.steps} step(s), {used}, "
        f"{money(result.cost_usd)}, {result.duration_ms / 1000:.1f} s"
    )
    return line + (f": {safe(result.detail)}" if result.detail else "")


def compaction_line(compacted: Compacted | None) -> str:
    if compacted is None:
        return "nothing to compact yet (the conversation is short)"
    return f"compacted {compacted.messages} entries into a summary:\n{safe(compacted.summary)}"


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class LiveTurn:
    """What a turn shows while it runs: the streamed answer, tool calls and command output, and
    while the model thinks, a line on stderr with the step and the elapsed time (on a terminal
    only). The answer never runs into what follows it: a line is ended before anything else."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._line_open = False
        self._step = 0
        self._thinking_since: float | None = None
        self._spinning = False
        self._frame = 0
        self._live = err_console.is_terminal
        self._streamed = False  # answer text shown since the last event

    def step(self, number: int) -> None:
        with self._lock:
            self._step, self._thinking_since = number, time.monotonic()

    def text(self, chunk: str) -> None:
        self._write(chunk, style=None)

    def output(self, chunk: str) -> None:
        self._write(chunk, style="dim")

    def event(self, event: Event) -> None:
        """An event of the turn; an answer that was not streamed (the harness's own) is shown
        whole."""
        with self._lock:
            self._quiet()
            self._end_line()
            if event.kind == "agent_message" and not self._streamed:
                console.print(getattr(event.payload, "text", ""), markup=False, highlight=False)
            self._streamed = False
            print_chat_event(event)

    def tick(self) -> None:
        """Called every few tenths of a second from the main thread: redraw the spinner."""
        with self._lock:
            if not self._live or self._thinking_since is None:
                return
            seconds = time.monotonic() - self._thinking_since
            self._frame = (self._frame + 1) % len(SPINNER)
            err_console.file.write(
                f"\r{SPINNER[self._frame]} thinking… step {self._step}, {seconds:.1f} s\033[K"
            )
            err_console.file.flush()
            self._spinning = True

    def close(self) -> None:
        with self._lock:
            self._quiet()
            self._end_line()

    def _write(self, chunk: str, *, style: str | None) -> None:
        with self._lock:
            self._quiet()
            console.print(chunk, end="", markup=False, highlight=False, style=style)
            self._line_open = not chunk.endswith("\n")
            self._streamed = self._streamed or style is None

    def _quiet(self) -> None:
        """Stop the spinner (the model answers, or a tool runs) and erase its line."""
        self._thinking_since = None
        if self._spinning:
            err_console.file.write("\r\033[K")
            err_console.file.flush()
            self._spinning = False

    def _end_line(self) -> None:
        if self._line_open:
            console.print()
            self._line_open = False


def more(hint: str) -> None:
    """Say that a result was capped, and how to see the rest (on stderr: stdout stays data)."""
    if hint:
        err_console.print(f"[yellow]{safe(hint)}[/]")


def warnings(events: Iterable[Event]) -> None:
    """The warning notes among `events` (a quota reached, a setup failed), on stderr."""
    for event in events:
        data = event.payload.model_dump()
        if event.kind == "note" and data.get("level") == "warning":
            err_console.print(f"[yellow]warning:[/] {safe(str(data['text']))}")


def size(n: int) -> str:
    """Bytes for people: `512 B`, `3.4 MB`."""
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def disk_table(usage: DiskUsage) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("project", "session", "status", "disk", "note"):
        table.add_column(column, justify="right" if column == "disk" else "left")
    for project in usage.projects:
        quota = f"quota {size(project.quota_bytes)}" if project.quota_bytes else ""
        over = "[red]over quota[/]" if project.over_quota else quota
        table.add_row(f"[bold]{safe(project.project)}[/]", "", "", size(project.total_bytes), over)
        for session in project.sessions:
            note = "evicted (restored on use)" if session.evicted else ""
            label = f"{session.short_id} {safe(session.title)}"
            table.add_row("", label, session.status, size(session.bytes), note)
        if project.pool_bytes:
            table.add_row("", "(pool)", "", size(project.pool_bytes), "")
    table.add_row("(index)", "", "", size(usage.index_bytes), "")
    table.add_row("(database)", "", "", size(usage.database_bytes), "")
    return table


def gc_summary(report: GcReport) -> str:
    verb = "would free" if report.dry_run else "freed"
    lines = [f"{'[dry run] ' if report.dry_run else ''}{verb} {size(report.freed_bytes)}"]
    for action in report.actions:
        where, why = safe(action.path), safe(action.reason)
        lines.append(f"  {action.action:6} {size(action.bytes):>9}  {where}  ({why})")
    done = "to collect" if report.dry_run else "collected"
    lines.append(
        f"  index: {report.views_forgotten} unused view(s), "
        f"{report.contents_collected} unused content(s) {done}"
    )
    lines.extend(f"  kept {safe(reason)}" for reason in report.skipped)
    return "\n".join(lines)
