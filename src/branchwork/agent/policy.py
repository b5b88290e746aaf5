"""The action policy: which actions run unasked in each mode."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from branchwork.domain.models import ActionMode

GuardedAction = Literal["write_file", "edit_file", "run_command"]
Decision = Literal["allow", "ask"]
MODES: tuple[ActionMode, ...] = ("ask", "auto-edit", "autopilot")


def is_dangerous(command: str, patterns: Sequence[str]) -> bool:
    return any(re.search(pattern, command) for pattern in patterns)


def decide(
    mode: ActionMode,
    action: GuardedAction,
    *,
    command: str = "",
    dangerous_patterns: Sequence[str] = (),
) -> Decision:
    """`ask`: every change and command asks; `auto-edit`: edits apply, commands ask;
    `autopilot`: everything runs, except commands matching a dangerous pattern."""
    if action == "run_command" and is_dangerous(command, dangerous_patterns):
        return "ask"
    if mode == "autopilot":
        return "allow"
    if mode == "auto-edit" and action != "run_command":
        return "allow"
    return "ask"
