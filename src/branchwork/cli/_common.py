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
