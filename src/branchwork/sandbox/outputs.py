"""The files that hold a command's full (redacted) output while it runs and after.

A runner given an output directory writes `output-<pid>-<random>.log` there, `<pid>` being the
process that writes it; without one, `branchwork-output-<pid>-<random>.log` in the system's
temporary directory. The caller deletes the file once it has kept the output. A file outlives
its writer only when that process was killed mid-command; `remove_stale_outputs` finds those by
the pid in their name. The directory must be local to this machine (a pid means nothing on
another host), as the data directory is.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

from branchwork.domain.errors import SandboxError
from branchwork.sandbox.liveness import process_is_gone, this_host

_NAME = re.compile(r"^output-(\d+)-\w+\.log$")  # mkstemp's random part is [a-z0-9_]


def open_output_file(output_dir: Path | None) -> tuple[Path, IO[str]]:
    """Create a new output file (mode 0600) named after this process; return it open."""
    prefix = f"output-{os.getpid()}-"
    if output_dir is None:
        prefix = f"branchwork-{prefix}"
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=output_dir)
        return Path(name), os.fdopen(fd, "w", encoding="utf-8", newline="")
    except OSError as exc:
        where = output_dir or tempfile.gettempdir()
        raise SandboxError(
            f"Could not create a command output file in {where} ({exc}); "
            "free disk space or fix that directory's permissions."
        ) from exc


def remove_stale_outputs(output_dir: Path, older_than_s: float) -> int:
    """Delete the output files in `output_dir` whose writing process is gone and that were last
    written more than `older_than_s` seconds ago; return how many were deleted.

    A live writer's file is kept however old it is (a quiet command), and so is the file of a
    dead writer whose pid a new process has taken since (it goes once that one ends too).
    """
    if not output_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in output_dir.iterdir():
        if _is_stale(path, cutoff):
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another process cleaned it up first
            removed += 1
    return removed


def _is_stale(path: Path, cutoff: float) -> bool:
    match = _NAME.match(path.name)
    if match is None:
        return False
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
        return False
    return process_is_gone(int(match.group(1)), this_host())
