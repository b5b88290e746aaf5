"""Command execution and the worktree boundary.

Runners (local, bubblewrap) behind one exec template, the choice between them (`choose_runner`:
bubblewrap wherever it works), resource limits, output files, secret redaction of everything a
command prints, and the path check every file tool goes through.
"""

from branchwork.sandbox.choice import (
    Backend,
    RunnerChoice,
    choose_runner,
    make_runner,
    runner_choice,
)
from branchwork.sandbox.limits import Limits
from branchwork.sandbox.outputs import remove_stale_outputs
from branchwork.sandbox.paths import relative_to_worktree, resolve_in_worktree
from branchwork.sandbox.probe import (
    Probe,
    bubblewrap_available,
    bubblewrap_problem,
    probe_bubblewrap,
)
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
)

__all__ = [
    "Backend",
    "BubblewrapRunner",
    "CommandResult",
    "CommandSpec",
    "ExecTemplate",
    "Limits",
    "LocalRunner",
    "OutputCallback",
    "Probe",
    "RedactingStream",
    "Redactor",
    "Runner",
    "RunnerChoice",
    "Status",
    "bubblewrap_available",
    "bubblewrap_problem",
    "choose_runner",
    "make_runner",
    "probe_bubblewrap",
    "relative_to_worktree",
    "remove_stale_outputs",
    "resolve_in_worktree",
    "runner_choice",
]
