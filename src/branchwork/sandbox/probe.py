"""Whether bubblewrap works on this machine: probed by running it once, the answer cached.

Installed is not enough: some kernels forbid the user namespaces bwrap needs (a sysctl, an
AppArmor rule, a container without them). So the probe runs `bwrap` for real, building a
sandbox of the same shape as a command's (hidden data directory, writable worktree with a
read-only `.git` file, read-only git dir bound back, the same flags) around `/bin/sh -c :`.

The answer is kept in this process and, given a cache file, in a small JSON file that later
processes read instead of probing again (a probe costs a few milliseconds, a cache read far
less). The answer is keyed by what decides it: the `bwrap` binary (real path, mtime, size), the
kernel release and the effective uid; any change re-probes, and so does an answer older than a
day, an hour when it was "no" (a sysctl can be switched without a new kernel; running
unconfined longer than needed is the worse mistake). `refresh=True` (for `doctor`) or deleting
the file forces a new probe. A cache that cannot be written (a read-only data directory) is no
error: the answer holds for this process, the next one probes again, and only the debug log
says so (a command's stderr is for its own outcome; `Probe.describe` then names no cache
file).
Probes with and without network are separate answers (`--unshare-net` is one more namespace).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from branchwork.sandbox.bubblewrap import bwrap_arguments

PROBE_TIMEOUT_S = 10.0
MAX_AGE = {True: timedelta(days=1), False: timedelta(hours=1)}  # by answer: works or not
CACHE_FORMAT = 1
_log = logging.getLogger(__name__)
_INSTALL = "install the bubblewrap package"
_NAMESPACES = (
    "user namespaces may be disabled here: allow them with sysctl"
    " kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0, or an AppArmor profile"
    " for bwrap"
)


@dataclass(frozen=True)
class Probe:
    """The answer: does bwrap work here, and if not, why (`problem`, with what to do)."""

    works: bool
    problem: str
    bwrap: str | None  # the binary probed
    probed_at: datetime | None  # None: nothing was run (no binary)
    cache: Path | None  # the file this answer is cached in

    def describe(self) -> str:
        """When the answer was found and where it is kept, for a person."""
        when = f"probed {self.probed_at:%Y-%m-%d %H:%M} UTC" if self.probed_at else "not probed"
        return f"{when}, cached in {self.cache}" if self.cache is not None else when


@dataclass(frozen=True)
class _Key:
    bwrap: str
    mtime_ns: int
    size: int
    kernel: str
    euid: int


_memo: dict[tuple[_Key, bool, Path | None], Probe] = {}
_lock = threading.Lock()


def probe_bubblewrap(
    *, network: bool, bwrap: str | None = None, cache: Path | None = None, refresh: bool = False
) -> Probe:
    """Whether `bwrap` (default: the one on PATH) can build a sandbox here; see the module.
    `refresh`: probe now, whatever is cached (the new answer is cached)."""
    path = bwrap if bwrap is not None else shutil.which("bwrap")
    if path is None:
        return _unusable(None, f"`bwrap` is not installed ({_INSTALL})")
    key = _key(path)
    if key is None:
        return _unusable(path, f"`{path}` does not exist ({_INSTALL})")
    with _lock:
        found = None if refresh else _memo.get((key, network, cache))
        if found is None or not _fresh(found):
            found = None if refresh else _read_cache(cache, key, network)
        if found is None:
            found = _run(path, network=network, cache=cache)
            if not _write_cache(cache, key, network, found):
                found = replace(found, cache=None)
        _memo[(key, network, cache)] = found
    return found


def bubblewrap_problem(*, network: bool = True) -> str | None:
    """Why bubblewrap cannot be used here, or None when it can (probed once per process)."""
    probe = probe_bubblewrap(network=network)
    return None if probe.works else probe.problem


def bubblewrap_available(*, network: bool = True) -> bool:
    """Whether `bwrap` is installed and can build the sandbox here (user namespaces work)."""
    return bubblewrap_problem(network=network) is None


def _key(path: str) -> _Key | None:
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError:
        return None
    return _Key(real, info.st_mtime_ns, info.st_size, os.uname().release, os.geteuid())


def _run(bwrap: str, *, network: bool, cache: Path | None) -> Probe:
    probed_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="branchwork-bwrap-probe-") as tmp:
        argv = [*_probe_arguments(bwrap, Path(tmp), network), "/bin/sh", "-c", ":"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Probe(False, f"`{bwrap}` could not be run ({exc})", bwrap, probed_at, cache)
    if done.returncode == 0:
        return Probe(True, "", bwrap, probed_at, cache)
    detail = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    said = f": {detail[0].rstrip('.')}" if detail else ""
    problem = f"`{bwrap}` failed with exit code {done.returncode}{said} ({_NAMESPACES})"
    return Probe(False, problem, bwrap, probed_at, cache)


def _probe_arguments(bwrap: str, root: Path, network: bool) -> list[str]:
    """A sandbox shaped like a command's: a worktree and a git dir inside a hidden directory."""
    data, worktree, git_dir = root / "data", root / "data" / "worktree", root / "data" / "git"
    worktree.mkdir(parents=True)
    git_dir.mkdir()
    (worktree / ".git").write_text(f"gitdir: {git_dir}\n", encoding="utf-8")
    return bwrap_arguments(
        bwrap, cwd=worktree, network=network, worktree=worktree, git_dirs=[git_dir], hide=[data]
    )


def _unusable(bwrap: str | None, problem: str) -> Probe:
    return Probe(False, problem, bwrap, None, None)


def _fresh(probe: Probe) -> bool:
    age = datetime.now(UTC) - probe.probed_at if probe.probed_at is not None else None
    return age is not None and age < MAX_AGE[probe.works]


def _flag(network: bool) -> str:
    return "network-on" if network else "network-off"


def _read_cache(cache: Path | None, key: _Key, network: bool) -> Probe | None:
    data = _load(cache, key)
    entry = data["probes"].get(_flag(network)) if data else None
    if not isinstance(entry, dict):
        return None
    try:
        probed_at = datetime.fromisoformat(str(entry["probed_at"]))
        probe = Probe(bool(entry["works"]), str(entry["problem"]), key.bwrap, probed_at, cache)
    except (KeyError, ValueError):
        return None
    return probe if probed_at.tzinfo is not None and _fresh(probe) else None


def _load(cache: Path | None, key: _Key) -> dict[str, Any] | None:
    """The cache file's content when it holds answers for `key`, else None."""
    if cache is None:
        return None
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    if data.get("key") != asdict(key) or not isinstance(data.get("probes"), dict):
        return None
    return data


def _write_cache(cache: Path | None, key: _Key, network: bool, probe: Probe) -> bool:
    """Keep the answer in `cache` for later processes; False when it could not be."""
    if cache is None or probe.probed_at is None:
        return False
    data = _load(cache, key) or {"format": CACHE_FORMAT, "key": asdict(key), "probes": {}}
    data["probes"][_flag(network)] = {
        "works": probe.works,
        "problem": probe.problem,
        "probed_at": probe.probed_at.isoformat(),
    }
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, cache)
    except OSError as exc:  # the answer still holds for this process
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        _log.debug(
            "Could not cache the bubblewrap probe in %s (%s); it will run again.", cache, exc
        )
        return False
    return True
