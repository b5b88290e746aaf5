"""A warm process for a bench (docs/cli-warm.md): in a private runtime dir, stopped at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def warm_env(env: dict[str, str], branchwork: str, cwd: Path) -> Iterator[dict[str, str]]:
    """`env` for commands run by a warm process, started by one first command (waited for)."""
    with tempfile.TemporaryDirectory(prefix="bw-rt-") as runtime:
        warm = {**env, "BRANCHWORK_WARM": "1", "XDG_RUNTIME_DIR": runtime}
        try:
            subprocess.run([branchwork, "--version"], cwd=cwd, env=warm, capture_output=True)
            wait_for_warm(Path(runtime))
            yield warm
        finally:
            stop_warm(Path(runtime))


def wait_for_warm(runtime: Path) -> None:
    deadline = time.monotonic() + 60
    while not list(runtime.glob("branchwork/*.sock")):
        if time.monotonic() > deadline:
            raise SystemExit("no warm process started in 60 s")
        time.sleep(0.1)
    time.sleep(0.2)  # listening


def stop_warm(runtime: Path) -> None:
    for lock in runtime.glob("branchwork/*.lock"):
        pid = lock.read_text().strip()
        if pid.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
