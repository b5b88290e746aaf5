"""The `branchwork` command line (Typer + Rich): parse, call the Workspace, render."""

from __future__ import annotations

import sys

from branchwork.cli._common import debug_enabled, exit_code_for
from branchwork.cli.render import err_console
from branchwork.domain.errors import BranchworkError


def main() -> None:
    """Entry point: errors become one red line and an exit code (tracebacks with --debug)."""
    from branchwork.cli.app import app

    argv = sys.argv[1:]
    debug = "--debug" in argv or debug_enabled()
    args = [a for a in argv if a != "--debug"]
    try:
        app(args=args, prog_name="branchwork")
    except BranchworkError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc.message}", markup=True, highlight=False)
        raise SystemExit(exit_code_for(exc)) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None
