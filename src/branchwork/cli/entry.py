"""The `branchwork` command line, run in this process (Typer + Rich): parse, call the
Workspace, render. `launch.py` decides whether a warm process runs it instead."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cache

import typer

import branchwork as bw
from branchwork.cli import render
from branchwork.cli._common import EXIT_INFRA, closed_stdio, debug_enabled, exit_code_for
from branchwork.cli.app import app
from branchwork.cli.render import safe


def _split_debug(argv: list[str]) -> tuple[bool, list[str]]:
    """`--debug` is ours only before a `--` (after it, it belongs to the command being run)."""
    end = argv.index("--") if "--" in argv else len(argv)
    ours = [a for a in argv[:end] if a != "--debug"]
    return len(ours) != end or debug_enabled(), ours + argv[end:]


@cache
def command() -> Callable[..., object]:
    """The click command Typer builds from `app`: ~40 ms, paid once per process (a warm
    process builds it before forking). `app` turns pretty exceptions off, so calling it is
    what `app(...)` does."""
    return typer.main.get_command(app)


def _not_utf8(args: list[str]) -> str | None:
    """Why the command cannot be taken: an argument, or the current directory (unless only
    help or the version is asked), made of bytes that are not UTF-8. The history is UTF-8."""
    for number, arg in enumerate(args, 1):
        if not _is_utf8(arg):
            return f"argument {number} ({_shown(arg)}) is not valid UTF-8; write it in UTF-8"
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # a deleted directory: the command says so, if it needs one
    if _is_utf8(cwd) or not set(args) - {"--help", "-h", "--version"}:
        return None
    return (
        f"the current directory ({_shown(cwd)}) is not valid UTF-8, and Branchwork records "
        "paths as UTF-8: rename it, or run from another directory and name the session"
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """Its bytes as they were (`os.fsdecode` made it), the odd ones escaped: `\\xff`."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _closed_stdio_to_null() -> None:
    """A stream the caller closed (`>&-`) goes to /dev/null: what it would show is dropped, as
    asked, instead of ending the command with a traceback halfway; and its descriptor number
    cannot be taken by a file opened later (the database), which a command run with our
    stdout would then write into. `closed_stdio` names them: a closed stdin is no input, which
    `write` must not take for an empty file."""
    closed_stdio.clear()
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        if getattr(sys, name) is not None:
            continue
        closed_stdio.add(name)
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def main() -> None:
    """Entry point: errors become one red line and an exit code (tracebacks with --debug)."""
    _closed_stdio_to_null()
    debug, args = _split_debug(sys.argv[1:])
    refusal = _not_utf8(args)
    if refusal is not None:
        render.err_console.print(f"[red]error:[/] {safe(refusal)}")
        raise SystemExit(2)
    try:
        command()(args=args, prog_name="branchwork")
    except bw.BranchworkError as exc:
        if debug:
            raise
        render.err_console.print(f"[red]error:[/] {safe(exc.message)}")
        raise SystemExit(exit_code_for(exc)) from None
    except OSError as exc:
        if debug:
            raise
        render.err_console.print(
            f"[red]error:[/] {safe(str(exc))} (rerun with --debug for details)"
        )
        raise SystemExit(EXIT_INFRA) from None
    except KeyboardInterrupt:
        render.err_console.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None
