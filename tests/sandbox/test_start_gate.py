"""The start gate: a command starts only once its starter has noted its process group, so a
starter killed in between leaves nothing running that nobody could find to stop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from branchwork.sandbox import (
    BubblewrapRunner,
    CommandSpec,
    LocalRunner,
    Redactor,
    bubblewrap_available,
)

from .procs import group_gone

# A starter that dies (SIGKILL) in `on_start`, after the fork, before noting the group: it
# writes the group id to a file the test reads (the test's own look, not a note the code uses).
STARTER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from branchwork.sandbox import BubblewrapRunner, CommandSpec, LocalRunner, Redactor

    kind, worktree, seen = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    runner = BubblewrapRunner() if kind == "bwrap" else LocalRunner()

    def die(pgid: int) -> None:
        seen.write_text(str(pgid))
        os.kill(os.getpid(), signal.SIGKILL)

    spec = CommandSpec(
        shell="touch started; sleep 60", cwd=worktree, env={"PATH": os.environ["PATH"]}
    )
    runner.run(spec, redactor=Redactor([]), on_start=die)
    """
)

KINDS = [
    "local",
    pytest.param(
        "bwrap",
        marks=pytest.mark.skipif(not bubblewrap_available(), reason="bubblewrap cannot run here"),
    ),
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_command_whose_starter_died_before_noting_it_never_starts(
    kind: str, worktree: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "group"
    starter = subprocess.run(
        [sys.executable, "-c", STARTER, kind, str(worktree), str(seen)],
        capture_output=True,
        timeout=30,
    )
    assert starter.returncode == -9, starter.stderr.decode()
    pgid = int(seen.read_text())
    assert group_gone(pgid, within=5.0)
    time.sleep(0.2)  # had it run, `touch` would long be done
    assert not (worktree / "started").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_command_whose_noting_failed_never_starts(
    kind: str, worktree: Path, command_env: dict[str, str]
) -> None:
    groups: list[int] = []

    def cannot_note(pgid: int) -> None:
        groups.append(pgid)
        raise OSError("disk full")

    runner = BubblewrapRunner() if kind == "bwrap" else LocalRunner()
    spec = CommandSpec(shell="touch started; sleep 60", cwd=worktree, env=command_env)
    with pytest.raises(OSError, match="disk full"):
        runner.run(spec, redactor=Redactor([]), on_start=cannot_note)
    assert group_gone(groups[0], within=5.0)
    time.sleep(0.2)
    assert not (worktree / "started").exists()
