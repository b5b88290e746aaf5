"""Output files: named after the process that writes them, so that the ones a killed process
left behind can be found and removed."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from branchwork.sandbox import CommandSpec, LocalRunner, Redactor, remove_stale_outputs


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def output_file(directory: Path, pid: int, *, age_s: float, name: str = "") -> Path:
    path = directory / (name or f"output-{pid}-abc123_x.log")
    path.write_text("output\n")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_output_file_in_the_output_dir_is_named_after_this_process(
    tmp_path: Path, worktree: Path, command_env: dict[str, str]
) -> None:
    spec = CommandSpec(argv=["echo", "hi"], cwd=worktree, env=command_env, timeout_s=5)
    result = LocalRunner(output_dir=tmp_path).run(spec, redactor=Redactor({}))
    assert re.fullmatch(rf"output-{os.getpid()}-\w+\.log", result.output_path.name)
    assert result.output_path.parent == tmp_path
    assert remove_stale_outputs(tmp_path, older_than_s=0) == 0  # its writer (we) lives


def test_stale_outputs_of_dead_writers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    gone = dead_pid()
    stale = output_file(tmp_path, gone, age_s=3600)
    young = output_file(tmp_path, gone, age_s=0, name=f"output-{gone}-young.log")
    live = output_file(tmp_path, os.getpid(), age_s=3600)
    other = output_file(tmp_path, gone, age_s=3600, name=f"notes-{gone}-x.log")
    (tmp_path / f"output-{gone}-dir.log").mkdir()
    assert remove_stale_outputs(tmp_path, older_than_s=60) == 1
    assert not stale.exists()
    assert young.exists() and live.exists() and other.exists()
    assert (tmp_path / f"output-{gone}-dir.log").is_dir()


def test_missing_output_directory_has_nothing_to_remove(tmp_path: Path) -> None:
    assert remove_stale_outputs(tmp_path / "missing", older_than_s=0) == 0
