"""Shared CLI plumbing: options, the workspace per invocation, the error → exit-code mapping.

The CLI imports nothing of Branchwork but the public facade (`import branchwork as bw`), whose
names load on first use: a command pays only for the layers it calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

import branchwork as bw

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
SessionOpt = Annotated[
    str | None,
    typer.Option(
        "--session", "-s", help="Session id, short id or branch (default: the current dir's)."
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model, provider:name.")]
ModeOpt = Annotated[str | None, typer.Option(help="Action policy: ask | auto-edit | autopilot")]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", help="Project name (default: the current dir's).")
]
TaskOpt = Annotated[
    str | None, typer.Option("--task", "-t", help="Work on this task (#N): a new trial of it.")
]

BudgetTokensOpt = Annotated[
    int | None, typer.Option("--budget-tokens", min=1, help="Most tokens, all turns together.")
]
BudgetCostOpt = Annotated[
    float | None, typer.Option("--budget-cost", min=0.0001, help="Most dollars (known prices).")
]
BudgetTimeOpt = Annotated[
    float | None, typer.Option("--budget-time", min=1, help="Most seconds of turns.")
]
NoBudgetOpt = Annotated[bool, typer.Option("--no-budget", help="Lift every budget limit.")]


def budget_of(
    tokens: int | None, cost: float | None, seconds: float | None, lift: bool
) -> bw.Budget | None:
    """The budget the options give (None: leave it as it is)."""
    if lift:
        return bw.Budget()
    if tokens is None and cost is None and seconds is None:
        return None
    return bw.Budget(tokens=tokens, cost_usd=cost, seconds=seconds)


EXIT_USER = 2
EXIT_INFRA = 3
EXIT_CANCELLED = 130


@contextmanager
def workspace() -> Iterator[bw.Workspace]:
    ws = bw.Workspace()
    try:
        yield ws
    finally:
        ws.close()


def exit_code_for(error: bw.BranchworkError) -> int:
    if isinstance(error, bw.Cancelled):
        return EXIT_CANCELLED
    if isinstance(error, bw.InfrastructureError):
        return EXIT_INFRA
    return EXIT_USER


def debug_enabled() -> bool:
    return os.environ.get("BRANCHWORK_DEBUG", "") not in ("", "0", "false")


# The standard streams this process started without (`<&-`): `entry.py` put /dev/null in their
# place, and a command that reads stdin refuses rather than take that for empty input.
closed_stdio: set[str] = set()
