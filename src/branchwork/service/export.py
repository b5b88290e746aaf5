"""A session's whole history as one file to keep or read offline: JSON lines (every event as
`log --json` prints it) or one self-contained HTML page (no script, no external file).

The HTML page shows every event in order; what an event only points to (a command's full
output, a large diff, a terminal transcript) is read from the blob store and put in, so nothing
is left out. Both are streamed: a long session is never held in memory whole.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Literal

from branchwork.domain.errors import InvalidInput
from branchwork.domain.events import (
    AgentMessage,
    ApprovalDecided,
    ApprovalRequested,
    Checkpoint,
    CommandFinished,
    CommandOutput,
    CommandStarted,
    Event,
    FileWritten,
    Reasoning,
    TerminalClosed,
    ToolCall,
    ToolResult,
    TurnFinished,
    UserMessage,
)
from branchwork.domain.models import Project, Session
from branchwork.service.base import Services
from branchwork.service.commands import command_output
from branchwork.service.history import LogQuery, stream_event_lines

Format = Literal["jsonl", "html"]
FORMATS: tuple[Format, ...] = ("jsonl", "html")

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
color:#1d232a;background:#fbfbfa}
h1{font-size:1.4rem;margin-bottom:.2rem} .meta{color:#667;margin-bottom:1.5rem}
.ev{border-left:3px solid #d5d9de;padding:.3rem .8rem;margin:.5rem 0}
.ev header{font-size:12px;color:#778} .ev header b{color:#334}
.user_message{border-color:#2b6cb0;background:#eef4fb} .agent_message{border-color:#2f855a}
.approval_requested{border-color:#d69e2e;background:#fffaf0} .turn_finished{border-color:#805ad5}
pre{white-space:pre-wrap;word-break:break-word;background:#f1f2f4;padding:.5rem;margin:.3rem 0;
font:12.5px/1.4 ui-monospace,monospace} .text{white-space:pre-wrap}
.add{color:#22863a;background:#f0fff4;display:block} .del{color:#b31d28;background:#ffeef0;
display:block} .hunk{color:#6f42c1;display:block}
"""


def check_format(value: str) -> Format:
    for known in FORMATS:
        if value == known:
            return known
    raise InvalidInput(f"unknown export format {value!r}; use one of {', '.join(FORMATS)}")


def export_session(
    services: Services, session: Session, project: Project, fmt: Format
) -> Iterator[str]:
    """The session's history as `fmt`, in pieces (write them one after the other)."""
    if fmt == "jsonl":
        return (line + "\n" for line in stream_event_lines(services, session, LogQuery()))
    return _html(services, session, project)


def _html(services: Services, session: Session, project: Project) -> Iterator[str]:
    title = html.escape(session.title)
    yield (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<style>{_STYLE}</style><h1>{title}</h1><div class=meta>project "
        f"{html.escape(project.name)} · branch <code>{html.escape(session.branch)}</code> · "
        f"base <code>{session.base_commit[:12]}</code> · session <code>{session.id}</code></div>\n"
    )
    for event in services.store.iter_events(session.id):
        yield _event_html(services, event)
    yield "</html>\n"


def _event_html(services: Services, event: Event) -> str:
    head = (
        f"<header><b>{event.kind}</b> #{event.seq} · {event.actor} · "
        f"{event.ts.strftime('%Y-%m-%d %H:%M:%S')} UTC</header>"
    )
    return f'<div class="ev {event.kind}" id="e{event.seq}">{head}{_body(services, event)}</div>\n'


def _body(services: Services, event: Event) -> str:  # noqa: C901 (one branch per kind, flat)
    p = event.payload
    if isinstance(p, UserMessage | AgentMessage):
        return _text(p.text)
    if isinstance(p, Reasoning):
        return f"<details><summary>reasoning</summary>{_text(p.text)}</details>"
    if isinstance(p, ToolCall):
        return f"<code>{html.escape(p.name)}</code>{_pre(json.dumps(p.arguments, indent=1))}"
    if isinstance(p, ToolResult):
        return f"<details><summary>{html.escape(p.name)} result</summary>{_pre(p.output)}</details>"
    if isinstance(p, CommandStarted):
        return _pre(f"$ {p.command}")
    if isinstance(p, CommandOutput):
        return ""  # the whole output is shown with command_finished
    if isinstance(p, CommandFinished):
        output = command_output(services, p)
        return f"{p.status}, exit code {p.exit_code}, {p.duration_ms} ms{_pre(output)}"
    if isinstance(p, FileWritten):
        diff = p.diff if p.diff_blob is None else _blob(services, p.diff_blob)
        return f"<code>{html.escape(p.path)}</code> ({p.operation}){_diff(diff)}"
    if isinstance(p, Checkpoint):
        return f"<code>{p.commit[:12]}</code> {html.escape(p.message)} ({len(p.files)} files)"
    if isinstance(p, ApprovalRequested):
        return f"{html.escape(p.summary)}{_pre(p.detail)}"
    if isinstance(p, ApprovalDecided):
        verdict = "approved" if p.approved else "refused"
        return f"{verdict} {html.escape(p.reason)}"
    if isinstance(p, TurnFinished):
        return f"{p.status} after {p.steps} steps {html.escape(p.detail)}"
    if isinstance(p, TerminalClosed):
        text = (
            p.transcript_tail if p.transcript_blob is None else _blob(services, p.transcript_blob)
        )
        return f"<details><summary>transcript</summary>{_pre(text)}</details>"
    return _pre(p.model_dump_json(indent=1, exclude={"kind"}))


def _blob(services: Services, digest: str) -> str:
    return services.store.get_blob(digest).decode("utf-8", "replace")


def _text(text: str) -> str:
    return f"<div class=text>{html.escape(text)}</div>"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _diff(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        css = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        css = "hunk" if line.startswith("@@") else css
        escaped = html.escape(line)
        lines.append(f'<span class="{css}">{escaped}</span>' if css else escaped + "\n")
    return f"<pre>{''.join(lines)}</pre>"
