"""Command execution and the worktree boundary.

Runners (local, bubblewrap) behind one exec template, secret redaction of everything a command
prints, and the path check every file tool goes through.
"""

from branchwork.sandbox.bubblewrap import bubblewrap_available, bubblewrap_problem
from branchwork.sandbox.paths import relative_to_worktree, resolve_in_worktree
from branchwork.sandbox.redact import RedactingStream, Redactor
from branchwork.sandbox.runner import (
    BubblewrapRunner,
    CommandResult,
    CommandSpec,
    ExecTemplate,
    LocalRunner,
    OutputCallback,
    Runner,
    Status,
    make_runner,
)

__all__ = [
    "BubblewrapRunner",
    "CommandResult",
    "CommandSpec",
    "ExecTemplate",
    "LocalRunner",
    "OutputCallback",
    "RedactingStream",
    "Redactor",
    "Runner",
    "Status",
    "bubblewrap_available",
    "bubblewrap_problem",
    "make_runner",
    "relative_to_worktree",
    "resolve_in_worktree",
]
