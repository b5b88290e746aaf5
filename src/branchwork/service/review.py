"""A proposal's review: its diff against the target, each hunk with how it came about.

Every line a session added belongs to the checkpoint that last changed it (`git blame` over
the session's commits, `base..head`), and every checkpoint to a moment of the session's
history: an agent turn (its prompt, and the tool calls that wrote the file), a person's write,
a command, or a revert. A hunk shows the origins of its lines; a hunk that only deletes shows
the checkpoints that touched its file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from branchwork.domain.events import (
    Checkpoint,
    CommandStarted,
    Event,
    FileWritten,
    Reverted,
    ToolCall,
    TurnFinished,
    TurnStarted,
    UserMessage,
)
from branchwork.domain.proposals import ReviewComment
from branchwork.gitops import merges
from branchwork.service.proposals import ProposalDetails, ProposalScope, details

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_MUTATING_TOOLS = frozenset({"write_file", "edit_file", "run_command"})
OriginSource = Literal["agent", "person", "command", "revert"]


@dataclass(frozen=True)
class ChangeOrigin:
    """The checkpoint holding a change, and what made it: an agent turn (`prompt`, and the
    `tool_calls` that wrote the file), a person, a command, or a revert."""

    commit: str
    seq: int
    source: OriginSource
    what: str
    turn_id: str | None = None
    prompt: str = ""
    tool_calls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HunkReview:
    header: str
    text: str
    new_start: int
    new_count: int
    origins: list[ChangeOrigin]


@dataclass(frozen=True)
class FileReview:
    path: str
    header: str
    hunks: list[HunkReview]
    comments: list[ReviewComment]


@dataclass(frozen=True)
class ReviewView:
    """What `review` shows: the proposal (up to date) and its diff, file by file."""

    details: ProposalDetails
    files: list[FileReview]


@dataclass
class _Step:
    """A checkpoint's place in the history, gathered in one pass over the log."""

    commit: str
    seq: int
    source: OriginSource
    what: str
    turn_id: str | None
    prompt: str
    writes: dict[str, list[str]]
    calls: list[str]
    files: list[str]


def review(pscope: ProposalScope) -> ReviewView:
    found = details(pscope)
    proposal = found.proposal
    steps = {s.commit: s for s in _steps(pscope)}
    text = merges.diff_text(pscope.repo, proposal.base_commit, proposal.head)
    files = []
    for path, header, hunks in _parse_diff(text):
        blamed = merges.blame(pscope.repo, proposal.base_commit, proposal.head, path)
        touching = [s for s in steps.values() if path in s.writes or path in s.files]
        reviewed = [_hunk(h, blamed, steps, touching, path) for h in hunks]
        comments = [c for c in found.comments if c.path == path]
        files.append(FileReview(path=path, header=header, hunks=reviewed, comments=comments))
    return ReviewView(details=found, files=files)


def _hunk(
    hunk: tuple[str, list[str]],
    blamed: dict[int, str],
    steps: dict[str, _Step],
    touching: list[_Step],
    path: str,
) -> HunkReview:
    header, lines = hunk
    match = _HUNK.match(header)
    start = int(match.group(1)) if match else 0
    count = int(match.group(2)) if match and match.group(2) is not None else 1
    commits = {blamed[n] for n in _added_lines(start, lines) if n in blamed}
    chosen = [steps[c] for c in commits if c in steps] or touching
    origins = [_origin(s, path) for s in sorted(chosen, key=lambda s: s.seq)]
    return HunkReview(header, "\n".join(lines), start, count, origins)


def _added_lines(start: int, lines: list[str]) -> Iterator[int]:
    number = start
    for line in lines:
        if line.startswith("+"):
            yield number
            number += 1
        elif line.startswith(" "):
            number += 1


def _origin(step: _Step, path: str) -> ChangeOrigin:
    calls: list[str] = []
    if step.source == "agent":
        calls = step.writes.get(path) or [c for c in step.calls if c.startswith("run_command")]
    return ChangeOrigin(
        commit=step.commit,
        seq=step.seq,
        source=step.source,
        what=step.what,
        turn_id=step.turn_id,
        prompt=step.prompt,
        tool_calls=calls,
    )


# -- the history, in one pass -------------------------------------------------------------------

_KINDS = [
    "turn_started",
    "turn_finished",
    "user_message",
    "tool_call",
    "file_written",
    "command_started",
    "checkpoint",
    "reverted",
]


@dataclass
class _Walk:
    turn: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    last_call: ToolCall | None = None
    last_command: str = ""
    writes: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    steps: list[_Step] = field(default_factory=list)


def _steps(pscope: ProposalScope) -> list[_Step]:
    walk = _Walk()
    store, session_id = pscope.services.store, pscope.scope.session.id
    for event in store.iter_events(session_id, kinds=_KINDS):
        _visit(walk, event)
    return walk.steps


def _visit(walk: _Walk, event: Event) -> None:
    p = event.payload
    if isinstance(p, TurnStarted):
        walk.turn, walk.last_call, walk.calls = p.turn_id, None, []
    elif isinstance(p, TurnFinished):
        walk.turn = None
    elif isinstance(p, UserMessage) and p.turn_id:
        walk.prompts[p.turn_id] = _first_line(p.text)
    elif isinstance(p, ToolCall):
        walk.last_call = p
        if p.name in _MUTATING_TOOLS:
            walk.calls.append(_call_label(p))
    elif isinstance(p, FileWritten):
        label = _call_label(walk.last_call) if walk.turn and walk.last_call else ""
        walk.writes.setdefault(p.path, []).append(label or f"{event.actor} {p.operation} {p.path}")
    elif isinstance(p, CommandStarted):
        walk.last_command = p.command
    elif isinstance(p, Checkpoint | Reverted):
        walk.steps.append(_step(walk, event, p))
        walk.writes = {}


def _step(walk: _Walk, event: Event, p: Checkpoint | Reverted) -> _Step:
    if isinstance(p, Reverted):
        source: OriginSource = "revert"
        what = f"revert to checkpoint {p.to_checkpoint[:10]}"
    elif walk.turn is not None:
        source, what = "agent", f"agent turn: {walk.prompts.get(walk.turn, '')}"
    elif p.message.startswith("run: "):
        source, what = "command", f"command `{p.message.removeprefix('run: ')}`"
    else:
        source, what = "person", f"outside a turn: {p.message}"
    turn = walk.turn if source == "agent" else None
    return _Step(
        commit=p.commit,
        seq=event.seq,
        source=source,
        what=what,
        turn_id=turn,
        prompt=walk.prompts.get(turn, "") if turn else "",
        writes=walk.writes,
        calls=list(walk.calls) if turn else [],
        files=list(p.files),
    )


def _call_label(call: ToolCall | None) -> str:
    if call is None:
        return ""
    target = call.arguments.get("path") or call.arguments.get("command") or ""
    return f"{call.name}({str(target)[:80]}) [{call.call_id}]"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""


def _parse_diff(text: str) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """(path, file header, [(hunk header, hunk lines)]) of each file of a unified diff."""
    files: list[tuple[str, str, list[tuple[str, list[str]]]]] = []
    header: list[str] = []
    hunks: list[tuple[str, list[str]]] = []
    path = ""
    for line in text.splitlines():
        if line.startswith("diff --git "):
            if header:
                files.append((path, "\n".join(header), hunks))
            header, hunks, path = [line], [], _path_of(line)
        elif line.startswith("@@"):
            hunks.append((line, []))
        elif hunks:
            hunks[-1][1].append(line)
        else:
            header.append(line)
            name = merges.diff_name(line[4:]) if line.startswith("+++ ") else ""
            if name.startswith("b/"):
                path = name[2:]
    if header:
        files.append((path, "\n".join(header), hunks))
    return files


def _path_of(line: str) -> str:
    """The new path of `diff --git a/X b/Y` (quoted paths are rare; `+++ b/` corrects it)."""
    rest = line.removeprefix("diff --git ")
    half = rest.find(" b/")
    return rest[half + 3 :] if half >= 0 else rest
