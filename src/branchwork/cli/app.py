"""The `branchwork` command: parse, call the Workspace, render. No logic lives here."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

import branchwork as bw
from branchwork.cli import render
from branchwork.cli._common import JsonOpt, SessionOpt, closed_stdio, workspace
from branchwork.cli.chat import ask_cmd, chat_cmd
from branchwork.cli.context import context_app, index_cmd, search_cmd, symbols_cmd
from branchwork.cli.lifecycle import du_cmd, gc_cmd, pool_cmd
from branchwork.cli.projects import project_app
from branchwork.cli.proposals import proposal_app, register_proposal_commands
from branchwork.cli.server import export_cmd, serve_cmd, user_app
from branchwork.cli.sessions import session_app
from branchwork.cli.tasks import compare_cmd, promote_cmd, suggest_cmd, task_app, trial_app

if TYPE_CHECKING:
    from branchwork import WriteOutcome

app = typer.Typer(
    rich_markup_mode="markdown",
    name="branchwork",
    help="Persistent, branch-scoped sessions for AI coding agents on real git projects.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(project_app, name="project")
app.add_typer(session_app, name="session")
app.add_typer(context_app, name="context")
app.add_typer(task_app, name="task")
app.add_typer(trial_app, name="trial")
app.command("compare")(compare_cmd)
app.command("promote")(promote_cmd)
app.command("suggest")(suggest_cmd)
app.command("chat")(chat_cmd)
app.command("ask")(ask_cmd)
app.command("index")(index_cmd)
app.command("search")(search_cmd)
app.command("symbols")(symbols_cmd)
app.add_typer(proposal_app, name="proposal")
register_proposal_commands(app)
app.command("gc")(gc_cmd)
app.command("du")(du_cmd)
app.command("pool")(pool_cmd)
app.add_typer(user_app, name="user")
app.command("serve")(serve_cmd)
app.command("export")(export_cmd)


def _version(value: bool) -> None:
    if value:
        print(f"branchwork {bw.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Persistent, branch-scoped sessions for AI coding agents on real git projects."""


@app.command("config")
def config_cmd(as_json: JsonOpt = False) -> None:
    """Show the deployment settings in effect (env vars BRANCHWORK_*, branchwork.toml)."""
    data = bw.load_settings().public_dict()
    if as_json:
        render.print_json(data)
        return
    for key, value in data.items():
        render.console.print(f"[bold]{key}[/] = {escape(str(value))}")


@app.command("log")
def log_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Only these kinds.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """Show a session's history as a timeline (or JSON lines), streamed from the store."""
    with workspace() as ws:
        if as_json:
            lines = ws.event_lines(session, kinds=kind, follow=follow)
            render.print_lines(lines, live=follow)
            return
        for event in ws.iter_events(session, kinds=kind, follow=follow):
            render.print_event(event)


@app.command("cancel")
def cancel_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop the agent turn running in a session, from any terminal."""
    with workspace() as ws:
        target = ws.session(session)
        asked = ws.cancel_turn(target)
    if as_json:
        render.print_json({"id": target.id, "cancel_requested": asked})
    elif asked:
        render.console.print(f"asked the turn in {target.short_id} to stop")
    else:
        render.console.print(f"no turn is running in {target.short_id}")


@app.command("read")
def read_cmd(
    path: str,
    session: SessionOpt = None,
    start: Annotated[int | None, typer.Option(min=1, help="First line (1-based).")] = None,
    end: Annotated[int | None, typer.Option(min=1, help="Last line (inclusive).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a file of the session's worktree."""
    with workspace() as ws:
        text = ws.read_file(session, path, start_line=start, end_line=end)
    if as_json:
        render.print_json({"path": path, "start_line": start, "end_line": end, "content": text})
    else:
        sys.stdout.write(text)


@app.command("write")
def write_cmd(path: str, session: SessionOpt = None, as_json: JsonOpt = False) -> None:
    """Write stdin (UTF-8 text) to a file of the session's worktree (recorded with its diff)."""
    if "stdin" in closed_stdio:  # `<&-`: nothing to write, not an empty file
        raise bw.InvalidInput(
            "stdin is closed; give the content on stdin (`... | branchwork write PATH`, or "
            "`< /dev/null` for an empty file)"
        )
    raw = sys.stdin.buffer.read()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bw.InvalidInput(
            f"stdin is not UTF-8 text (byte {exc.start}); `write` handles text files, copy other "
            "files into the worktree with `branchwork run -- cp SOURCE PATH`"
        ) from exc
    with workspace() as ws:
        outcome = ws.write_file(session, path, content)
    _print_write(outcome, as_json)


@app.command("edit")
def edit_cmd(
    path: str,
    old: Annotated[str, typer.Option("--old", help="Exact text to replace (must be unique).")],
    new: Annotated[str, typer.Option("--new", help="Replacement text.")],
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace one exact occurrence of text in a file of the session's worktree."""
    with workspace() as ws:
        outcome = ws.edit_file(session, path, old, new)
    _print_write(outcome, as_json)


def _print_write(outcome: WriteOutcome, as_json: bool) -> None:
    if as_json:
        ckpt = outcome.checkpoint.commit if outcome.checkpoint else None
        render.print_json({**outcome.written.model_dump(mode="json"), "checkpoint": ckpt})
        return
    render.print_diff(outcome.written.diff)
    if outcome.checkpoint:
        render.console.print(f"[dim]checkpoint {outcome.checkpoint.commit[:10]}[/]")


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_cmd(
    command: Annotated[list[str], typer.Argument(help="The command, after `--`.")],
    session: SessionOpt = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before it is killed.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a command in the session's worktree: streamed, recorded, checkpointed.

    One argument is run by the shell (`branchwork run -- "make test | tail"`); several are run
    as they are (`branchwork run -- pytest -q`). Exits with the command's exit code.
    """
    _refuse_options_before_dashes(command)
    line: str | list[str] = command[0] if len(command) == 1 else command
    stream = None if as_json else _write_through
    with workspace() as ws, _ctrl_c_cancels() as cancel:
        outcome = ws.run(session, line, timeout=timeout, on_output=stream, cancel=cancel)
    finished = outcome.finished
    if as_json:
        render.print_json({**finished.model_dump(mode="json"), "id": finished.command_id})
    elif finished.exit_code is None and finished.status == "error":  # it never started
        render.err_console.print(f"[red]error:[/] {render.safe(finished.output_head)}")
    elif finished.status != "ok":
        render.err_console.print(f"[red]{finished.status}[/] (exit code {finished.exit_code})")
    raise typer.Exit(_run_exit_code(finished.status, finished.exit_code))


def _refuse_options_before_dashes(command: list[str]) -> None:
    """An option `run` does not know, given before `--`, is a mistake, not part of the
    command (`run --jsn -- pwd` would otherwise run `--jsn pwd`)."""
    argv = sys.argv
    after = argv[argv.index("--") + 1 :] if "--" in argv else None
    if after is not None and len(command) > len(after):
        unknown = " ".join(command[: len(command) - len(after)])
        raise bw.InvalidInput(f"unknown option(s) {unknown!r} for run; see `branchwork run --help`")
    if after is None and command[0].startswith("-"):
        raise bw.InvalidInput(f"unknown option {command[0]!r}; put the command after `--`")


@contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """While the block runs, Ctrl-C stops the command (recorded as cancelled) instead of
    interrupting Branchwork mid-write."""
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_through(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _run_exit_code(status: str, exit_code: int | None) -> int:
    if status == "timeout":
        return 124
    if status == "cancelled":
        return 130
    return exit_code if exit_code is not None else 127


@app.command("checkpoint")
def checkpoint_cmd(
    message: Annotated[str, typer.Option("--message", "-m")] = "checkpoint",
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Commit the worktree's state to the session branch."""
    with workspace() as ws:
        saved = ws.checkpoint(session, message)
    if as_json:
        render.print_json(saved.model_dump(mode="json") | {"id": saved.commit} if saved else None)
    elif saved:
        render.console.print(f"checkpoint {saved.commit[:10]}: {len(saved.files)} file(s)")
    else:
        render.console.print("nothing changed since the last checkpoint")


@app.command("diff")
def diff_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    against: Annotated[
        str, typer.Option(help="`base` (default), `main`, or a checkpoint (sha prefix, -N).")
    ] = "base",
    as_json: JsonOpt = False,
) -> None:
    """Show what the session changed (uncommitted edits included)."""
    with workspace() as ws:
        text = ws.diff(session, against=against)
    if as_json:
        render.print_json({"against": against, "diff": text})
    else:
        render.print_diff(text)


@app.command("revert")
def revert_cmd(
    to: Annotated[str, typer.Option("--to", help="Checkpoint sha prefix, -N, or base.")],
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore the files of a checkpoint, as a new checkpoint (history is kept)."""
    with workspace() as ws:
        reverted = ws.revert(session, to=to)
    if as_json:
        render.print_json({**reverted.model_dump(mode="json"), "id": reverted.commit})
    else:
        render.console.print(
            f"reverted to {reverted.to_checkpoint[:10]} as checkpoint {reverted.commit[:10]}"
        )


@app.command("doctor")
def doctor_cmd(
    rebuild: Annotated[
        bool,
        typer.Option(help="Recover projects and sessions from their branches and worktrees."),
    ] = False,
    refresh: Annotated[bool, typer.Option(help="Probe the sandbox again.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the installation: git, data directory, database, which command runner is in force
    and why, the default model. With --rebuild, register again what a lost database forgot."""
    if rebuild:
        report = bw.Workspace.rebuild()
        if as_json:
            render.print_json(dataclasses.asdict(report))
        else:
            render.console.print(render.rebuild_summary(report))
        return
    checks = bw.Workspace.diagnose(refresh=refresh)
    if as_json:
        render.print_json([dataclasses.asdict(c) for c in checks])
    else:
        render.console.print(render.checks_table(checks))
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)
