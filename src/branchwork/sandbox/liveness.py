"""Whether the process that holds something (a turn's lease, a running command) still lives."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()


def process_is_gone(pid: int | None, host: str | None) -> bool:
    """True only when `pid` is known to have exited: on this host, and not this very process.
    A process on another host, or one we may not signal, counts as alive."""
    if pid is None or host != this_host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def process_cwds() -> list[tuple[int, Path]]:
    """The current directory of each process of this host other than this one, as far as
    `/proc` shows it (another user's processes are not readable, and are left out; so is
    everything where there is no `/proc`). A shell, an editor or a terminal working in a
    directory is found this way."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return []
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            found.append((int(entry.name), Path(os.readlink(Path(entry.path) / "cwd"))))
        except OSError:
            continue  # gone, a zombie, or not ours to read
    return found


def processes_in(directory: Path, cwds: list[tuple[int, Path]] | None = None) -> list[int]:
    """The processes (other than this one) whose current directory is `directory` or below it;
    `cwds` as `process_cwds` gives them (read now when not given)."""
    inside = directory.resolve()
    found = process_cwds() if cwds is None else cwds
    return [pid for pid, cwd in found if cwd.is_relative_to(inside)]
