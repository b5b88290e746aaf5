"""The `branchwork` command line, run in this process (Typer + Rich): parse, call the
Workspace, render. `launch.py` decides whether a warm process runs it instead."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache

import typer

import branchwork as bw
from branchwork.cli import render
from branchwork.cli._common import EXIT_INFRA, debug_enabled, exit_code_for
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


def main() -> None:
    """Entry point: errors become one red line and an exit code (tracebacks with --debug)."""
    debug, args = _split_debug(sys.argv[1:])
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
