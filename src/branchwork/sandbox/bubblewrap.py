"""The bubblewrap (`bwrap`) command line, and whether bubblewrap works on this machine.

The sandbox: the whole file system read-only, the worktree (and any extra writable path)
writable, a private `/tmp`, a fresh `/dev` and `/proc`, its own PID namespace (so every process
of the command dies with it), optionally no network. Paths to hide (the data directory that
holds the secrets file, say) are covered by an empty tmpfs.

No `--new-session`: the command stays in the process group the runner created, so SIGTERM
reaches it directly and it can shut down cleanly; it has no terminal anyway (stdin is
/dev/null and the runner starts it in a new session).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

PROBE_TIMEOUT_S = 10.0
_PRIVATE_TMP = "/tmp"  # noqa: S108 (an empty tmpfs mounted there, private to the sandbox)


def bwrap_arguments(
    bwrap: str,
    *,
    cwd: Path,
    network: bool,
    hide: Sequence[Path] = (),
    writable: Sequence[Path] = (),
) -> list[str]:
    """The `bwrap …  --` prefix that runs a command in `cwd` inside the sandbox."""
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += ["--tmpfs", _PRIVATE_TMP]
    for path in map(_real, hide):
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", os.devnull, str(path)]
    for path in map(_real, (*writable, cwd)):
        args += ["--bind", str(path), str(path)]
    args += ["--unshare-pid", "--die-with-parent", "--chdir", str(_real(cwd))]
    if not network:
        args.append("--unshare-net")
    return [*args, "--"]


def bubblewrap_available(*, network: bool = True) -> bool:
    """Whether `bwrap` is installed and can build the sandbox here (user namespaces work)."""
    return bubblewrap_problem(network=network) is None


@functools.cache
def bubblewrap_problem(*, network: bool = True) -> str | None:
    """Why bubblewrap cannot be used here, or None when it can. Probed once per process."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "`bwrap` is not installed; install the bubblewrap package"
    with tempfile.TemporaryDirectory(prefix="branchwork-bwrap-probe-") as tmp:
        argv = [*bwrap_arguments(bwrap, cwd=Path(tmp), network=network), "/bin/true"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`bwrap` could not be run: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", errors="replace").strip()
        return f"`bwrap` does not work here (user namespaces may be disabled): {detail}"
    return None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))
