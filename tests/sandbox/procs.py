"""Looking at live processes through /proc, independently of the code under test."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _state_and_group(pid_dir: Path) -> tuple[str, int] | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:
        return None
    state, _ppid, group = stat[stat.rfind(")") + 2 :].split()[:3]
    return state, int(group)


def running_in_group(pgid: int) -> list[int]:
    """Pids of the non-zombie processes of group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        info = _state_and_group(entry) if entry.name.isdigit() else None
        if info is not None and info[1] == pgid and info[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def group_gone(pgid: int, *, within: float = 2.0) -> bool:
    """True once no process of group `pgid` runs. A SIGKILL is delivered asynchronously: a
    killed process may still show as running for a moment, so this waits for it (polling),
    up to `within` seconds, never a fixed sleep."""
    deadline = time.monotonic() + within
    while running_in_group(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def is_running(pid: int) -> bool:
    info = _state_and_group(Path(f"/proc/{pid}"))
    return info is not None and info[0] not in ("Z", "X")


def running_with_cmdline(token: str) -> list[int]:
    """Pids of running processes (not this one) whose command line contains `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if token in cmdline and is_running(int(entry.name)):
            found.append(int(entry.name))
    return found
