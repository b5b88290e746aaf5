"""The bubblewrap (`bwrap`) command line: what a sandboxed command sees and may change.

Layers, each mounted over the ones before (bwrap applies its arguments in order):
1. the whole file system read-only, a fresh `/dev` and `/proc`, a private empty `/tmp`;
2. each hidden path (the data directory, which holds the secrets file and every project's
   worktrees and cloned repositories) covered by an empty tmpfs (a file: by `/dev/null`);
3. the worktree bound writable on top (so a worktree inside the hidden data directory is
   visible again), and any extra writable path;
4. the worktree's `.git` entry bound read-only over itself. For a git worktree that entry is a
   file, `gitdir: <repo>/.git/worktrees/<name>`, inside the writable tree: a command that could
   rewrite it could point git (and so the next checkpoint the service takes outside the
   sandbox) at another repository, or replace it with a directory of its own hooks and config;
5. every git dir (the worktree's own and the repository's common `.git`) bound read-only, also
   after the hiding, so that a repository cloned into the data directory stays readable: `git
   status`, `diff` and `log` work inside, while `git commit`, a changed hook or config fail
   with "Read-only file system" before they write anything;
6. a hidden path that lies inside a writable one hidden again.

`git_dirs` must come from what the caller knows of the repository, never from reading the
worktree's `.git` file: a command run unconfined earlier could have rewritten it to name a
hidden path, which binding it would bring back into view. The tmpfs over `/tmp` and over the
hidden paths is writable but private and in memory: nothing written there reaches the disk.

The command runs in its own PID namespace (`--unshare-pid`): when the command's process ends,
bwrap's init ends and the kernel kills every process left in the namespace, daemons that
`setsid` or double-fork included; `--die-with-parent` does the same when bwrap itself is killed
(timeout, cancel, our crash). Also its own IPC namespace, no capabilities (`--cap-drop ALL`:
bwrap run by root would otherwise keep them all, and root with CAP_SYS_ADMIN could remount the
root read-write), and no network but loopback when the project turns the network off.

No `--new-session`: the command stays in the process group the runner created, so SIGTERM
reaches it directly and it can shut down cleanly; it has no terminal anyway (stdin is
/dev/null once the runner's start gate opened, and the runner starts it in a new session).

Not confined here: reading what the user can read outside the hidden paths (the home directory
included, read-only: tools that write caches under `$HOME` need it pointed somewhere writable),
CPU, memory and process counts beyond the rlimits of `limits.py`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_PRIVATE_TMP = "/tmp"  # noqa: S108 (an empty tmpfs mounted there, private to the sandbox)
_GIT_ENTRY = ".git"


def bwrap_arguments(
    bwrap: str,
    *,
    cwd: Path,
    network: bool,
    worktree: Path | None = None,
    git_dirs: Sequence[Path] = (),
    hide: Sequence[Path] = (),
    writable: Sequence[Path] = (),
) -> list[str]:
    """The `bwrap … --` prefix that runs a command in `cwd` inside the sandbox.

    `worktree` (default: `cwd`) is writable except its `.git` entry; `git_dirs` are readable,
    never writable; `hide` are invisible; `writable` are extra writable paths."""
    tree = _real(worktree if worktree is not None else cwd)
    open_paths = [*map(_real, writable), tree]
    hidden = [_real(path) for path in hide]
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += ["--tmpfs", _PRIVATE_TMP, *_hiding(hidden)]
    for path in open_paths:
        args += ["--bind", str(path), str(path)]
    for path in (tree / _GIT_ENTRY, *map(_real, git_dirs)):
        args += ["--ro-bind-try", str(path), str(path)]
    args += _hiding([path for path in hidden if _strictly_inside(path, open_paths)])
    args += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--cap-drop", "ALL"]
    args += ["--chdir", str(_real(cwd))]
    if not network:
        args.append("--unshare-net")
    return [*args, "--"]


def makes_user_namespace(bwrap: str) -> bool:
    """Whether `bwrap` gives each sandbox its own user namespace: it does when run by an
    ordinary user, unless it is setuid root (then it needs none); run by root it makes none."""
    if os.geteuid() == 0:
        return False
    try:
        return not os.stat(bwrap).st_mode & stat.S_ISUID
    except OSError:
        return False


def _hiding(paths: Sequence[Path]) -> list[str]:
    args: list[str] = []
    for path in paths:
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", os.devnull, str(path)]
    return args


def _strictly_inside(path: Path, parents: Sequence[Path]) -> bool:
    return any(path != parent and path.is_relative_to(parent) for parent in parents)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))
