"""Shared CLI plumbing: the workspace per invocation, and the error → exit-code mapping."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from branchwork.domain.errors import (
    BranchworkError,
    Cancelled,
    ControlSignal,
    InfrastructureError,
    InvalidInput,
)
from branchwork.domain.models import ActionMode
from branchwork.service import Workspace

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
SessionOpt = Annotated[
    str | None,
    typer.Option("--session", "-s", help="Session id, short id or branch (default: current)."),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model, provider:name.")]
ModeOpt = Annotated[str | None, typer.Option(help="Action policy: ask | auto-edit | autopilot")]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", "-p", help="Project name (default: the current dir's).")
]


def parse_mode(value: str | None) -> ActionMode | None:
    """An action mode from the command line; a clear error for anything else."""
    if value is None:
        return None
    if value not in ("ask", "auto-edit", "autopilot"):
        raise InvalidInput(f"unknown mode {value!r}; use ask, auto-edit or autopilot")
    return value  # type: ignore[return-value]


EXIT_USER = 2
EXIT_INFRA = 3
EXIT_CANCELLED = 130


@contextmanager
def workspace() -> Iterator[Workspace]:
    ws = Workspace()
    try:
        yield ws
    finally:
        ws.close()


def exit_code_for(error: BranchworkError) -> int:
    if isinstance(error, Cancelled):
        return EXIT_CANCELLED
    if isinstance(error, InfrastructureError):
        return EXIT_INFRA
    if isinstance(error, ControlSignal):
        return EXIT_USER
    return EXIT_USER


def debug_enabled() -> bool:
    return os.environ.get("BRANCHWORK_DEBUG", "") not in ("", "0", "false")
