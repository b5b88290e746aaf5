"""The agent's tools: one JSON schema each (from a pydantic model), the same for every provider.

A tool returns text for the model. A `ToolFailure`, or any Branchwork user error, becomes an
error result the model reads; it never ends the turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from branchwork.agent.policy import GuardedAction
from branchwork.agent.ports import SessionPort
from branchwork.domain.events import CommandFinished, TodoUpdated
from branchwork.domain.messages import ToolSpec

MAX_RESULT_CHARS = 12_000


class ToolFailure(Exception):
    """A tool could not do what was asked; the message goes back to the model."""


@dataclass
class ToolEnv:
    port: SessionPort
    turn_id: str
    cancel: threading.Event | None = None
    on_output: Callable[[str], None] | None = None
    max_result_chars: int = MAX_RESULT_CHARS


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListFilesArgs(_Args):
    path: str = Field(default=".", description="Directory inside the worktree.")
    pattern: str | None = Field(default=None, description="Glob such as '*.py'.")


class ReadFileArgs(_Args):
    path: str
    start_line: int | None = Field(default=None, ge=1, description="First line, 1-based.")
    end_line: int | None = Field(default=None, ge=1, description="Last line, inclusive.")


class WriteFileArgs(_Args):
    path: str
    content: str


class EditFileArgs(_Args):
    path: str
    old_text: str = Field(description="Exact text to replace; must occur exactly once.")
    new_text: str


class SearchArgs(_Args):
    query: str
    regex: bool = False
    path: str | None = Field(default=None, description="Glob of paths to search, e.g. 'src/*'.")


class FindDefinitionArgs(_Args):
    name: str = Field(description="Function, class or method name.")


class RunCommandArgs(_Args):
    command: str = Field(description="Shell command, run in the worktree.")
    timeout: float | None = Field(
        default=None, gt=0, le=86_400, allow_inf_nan=False, description="Seconds."
    )


class NoArgs(_Args):
    pass


class TodoArgs(_Args):
    action: Literal["add", "done", "list"]
    text: str | None = Field(default=None, description="The sub-task, for add.")
    id: str | None = Field(default=None, description="The sub-task id, for done.")


class FinishArgs(_Args):
    summary: str = Field(description="What was done, for the user.")


Handler = Callable[[ToolEnv, Any], str]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[_Args]
    handler: Handler
    guarded: GuardedAction | None = None

    @property
    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    def parse(self, arguments: dict[str, Any]) -> Any:
        try:
            return self.args.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ToolFailure(f"invalid arguments for {self.name}: {problems}") from exc


def clip(text: str, limit: int) -> str:
    """Head and tail of a long text, with a note of what was left out."""
    if len(text) <= limit:
        return text
    half = limit // 2
    dropped = len(text) - 2 * half
    return f"{text[:half]}\n[... {dropped} characters elided ...]\n{text[-half:]}"


def _list_files(env: ToolEnv, args: ListFilesArgs) -> str:
    files = env.port.list_files(args.path, args.pattern)
    shown = files[:400]
    more = f"\n[... {len(files) - 400} more]" if len(files) > 400 else ""
    return "\n".join(shown) + more if shown else "(no files)"


def _read_file(env: ToolEnv, args: ReadFileArgs) -> str:
    text = env.port.read_file(args.path, args.start_line, args.end_line)
    return clip(text, env.max_result_chars) if text else "(empty file)"


def _write_file(env: ToolEnv, args: WriteFileArgs) -> str:
    written = env.port.write_file(args.path, args.content)
    return f"wrote {written.path} ({'created' if written.created else 'updated'})"


def _edit_file(env: ToolEnv, args: EditFileArgs) -> str:
    written = env.port.edit_file(args.path, args.old_text, args.new_text)
    return f"edited {written.path}:\n{clip(written.diff, 2000)}"


def _search(env: ToolEnv, args: SearchArgs) -> str:
    found = env.port.search(args.query, regex=args.regex, path_glob=args.path, limit=30)
    if not found.hits:
        return "no matches"
    lines = [f"{h.path}:{h.line}: {_first_line(h.snippet)}" for h in found.hits]
    if found.capped:
        lines.append(f"[more than {found.limit} matches: narrow the query or the path]")
    return clip("\n".join(lines), env.max_result_chars)


def _first_line(snippet: str) -> str:
    lines = [line for line in snippet.splitlines() if line.strip()]
    return lines[0].strip()[:200] if lines else ""


MAX_DEFINITIONS = 50


def _find_definition(env: ToolEnv, args: FindDefinitionArgs) -> str:
    found = env.port.find_definition(args.name)
    if not found:
        return f"no definition of {args.name} found"
    lines = [
        f"{d.path}:{d.start_line}-{d.end_line}: {d.kind} "
        f"{d.container + '.' if d.container else ''}{d.name}"
        for d in found[:MAX_DEFINITIONS]
    ]
    if len(found) > MAX_DEFINITIONS:
        lines.append(f"[... {len(found) - MAX_DEFINITIONS} more: qualify the name, Class.name]")
    return "\n".join(lines)


def _run_command(env: ToolEnv, args: RunCommandArgs) -> str:
    finished = env.port.run_command(
        args.command, timeout=args.timeout, cancel=env.cancel, on_output=env.on_output
    )
    return _command_report(env, finished)


def _command_report(env: ToolEnv, finished: CommandFinished) -> str:
    output = env.port.command_output(finished)
    head = f"status: {finished.status}, exit code: {finished.exit_code}\n"
    body = clip(output, env.max_result_chars) if output else "(no output)"
    if finished.status == "error" and not output:
        body = finished.output_head
    return head + body


def _git_diff(env: ToolEnv, args: NoArgs) -> str:
    return clip(env.port.diff(), env.max_result_chars) or "(no changes)"


def _todo(env: ToolEnv, args: TodoArgs) -> str:
    todos = env.port.state().todos
    if args.action == "add":
        if not args.text:
            raise ToolFailure("todo add needs `text`: the sub-task to add")
        item = TodoUpdated(item_id=str(len(todos) + 1), text=args.text, done=False)
        env.port.record(item, "agent")
        return f"added sub-task {item.item_id}: {item.text}"
    if args.action == "done":
        match = next((t for t in todos if t.id == args.id), None)
        if match is None:
            raise ToolFailure(f"no sub-task {args.id!r}; use todo list to see the ids")
        env.port.record(TodoUpdated(item_id=match.id, text=match.text, done=True), "agent")
        return f"sub-task {match.id} done"
    return "\n".join(f"{t.id}. [{'x' if t.done else ' '}] {t.text}" for t in todos) or "(none)"


def _finish(env: ToolEnv, args: FinishArgs) -> str:
    return args.summary


def _tool(
    name: str,
    description: str,
    args: type[_Args],
    handler: Any,
    guarded: GuardedAction | None = None,
) -> Tool:
    return Tool(name, description, args, handler, guarded)


BUILTIN_TOOLS: tuple[Tool, ...] = (
    _tool("list_files", "List files under a directory of the project.", ListFilesArgs, _list_files),
    _tool("read_file", "Read a text file, optionally a range of lines.", ReadFileArgs, _read_file),
    _tool("write_file", "Create or overwrite a file.", WriteFileArgs, _write_file, "write_file"),
    _tool(
        "edit_file",
        "Replace one exact, unique piece of text in a file.",
        EditFileArgs,
        _edit_file,
        "edit_file",
    ),
    _tool("search", "Search the project's code (literal text or regex).", SearchArgs, _search),
    _tool(
        "find_definition",
        "Find where a function or class is defined.",
        FindDefinitionArgs,
        _find_definition,
    ),
    _tool(
        "run_command",
        "Run a shell command in the project directory.",
        RunCommandArgs,
        _run_command,
        "run_command",
    ),
    _tool("git_diff", "Show the changes made in this session so far.", NoArgs, _git_diff),
    _tool("todo", "Keep a checklist of sub-tasks: add, done, list.", TodoArgs, _todo),
    _tool("finish", "End the turn with a summary for the user.", FinishArgs, _finish),
)
TOOLS_BY_NAME: dict[str, Tool] = {t.name: t for t in BUILTIN_TOOLS}
BUILTIN_SPECS: tuple[ToolSpec, ...] = tuple(t.spec for t in BUILTIN_TOOLS)
