"""Git's lock files in a session's worktree: which are left by a git that is gone, and removing
them.

Git takes a lock by creating `NAME.lock` next to what it changes and drops it (renames or
deletes it) when done; a git killed in between leaves it, and every later git that needs the
same thing fails ("Unable to create '….lock': File exists"). A checkpoint needs three: the
worktree's `index.lock` and `HEAD.lock` (in its own git dir) and the branch's
`refs/heads/<branch>.lock` (in the repository's common git dir).

Whose lock is it? Git writes no owner into the file, so the rule is (decision):

- Call `recover_locks` only while holding the session's worktree lock (`scope.worktree_lock`, a
  `flock` the kernel drops when its holder dies). Every git command of Branchwork that takes
  these locks runs under it, so no git of ours can be holding one: a lock found then was left
  by a git that was killed — unless a git that is *not* ours works in the worktree at the same
  moment: a person's own `git commit` (whose editor may hold `index.lock` for minutes), an
  IDE's, a command of the session running git, or the git child of a Branchwork process that
  was killed alone (it finishes on its own).
- Those are found by their process: a running process named `git` whose current directory is
  the worktree or inside it (git moves to the top of the worktree it works on), or, for the
  branch's lock, the repository (read from `/proc`).
- No such process: the lock is stale and removed at once, however young it is.
- One or more: wait up to `LIVE_LOCK_WAIT_S` for the lock to go (most git commands take
  milliseconds). Still held after that: refused with `GitLocked`, naming the process (let it
  finish, or remove the lock if that git is not using it).
- Where processes cannot be seen (no `/proc`: not Linux), a lock still there after the same
  wait is taken as stale; this can break a person's `git commit` waiting in its editor.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.gitops.git import GitLocked
from branchwork.gitops.worktree import common_dir, git_dir

LIVE_LOCK_WAIT_S = 3.0
_POLL_S = 0.02
_PROC = Path("/proc")


@dataclass(frozen=True)
class GitLock:
    """A lock file a checkpoint needs free, and where a git holding it would be working."""

    path: Path
    name: str  # as said to a person: `index.lock`, `HEAD.lock`, `refs/heads/<branch>.lock`
    holders_in: tuple[Path, ...]


@dataclass(frozen=True)
class GitProcess:
    pid: int
    command: str
    cwd: Path | None


def checkpoint_locks(worktree: Path, branch: str, repo: Path) -> list[GitLock]:
    """The locks a checkpoint of `worktree` on `branch` takes, whether they exist or not."""
    own = git_dir(worktree)
    ref = f"refs/heads/{branch}.lock"
    here, there = Path(os.path.realpath(worktree)), Path(os.path.realpath(repo))
    return [
        GitLock(own / "index.lock", "index.lock", (here,)),
        GitLock(own / "HEAD.lock", "HEAD.lock", (here,)),
        GitLock(common_dir(own) / ref, ref, (here, there)),
    ]


def recover_locks(
    worktree: Path, branch: str, repo: Path, *, wait_s: float = LIVE_LOCK_WAIT_S
) -> list[GitLock]:
    """Remove the checkpoint's lock files that no running git holds (see the module doc) and
    return them; wait for one a live git holds, and raise `GitLocked` if it keeps it."""
    locks = checkpoint_locks(worktree, branch, repo)
    deadline = time.monotonic() + wait_s
    removed: list[GitLock] = []
    while True:
        present = [lock for lock in locks if _exists(lock.path)]
        if not present:
            return removed
        gits = running_gits()
        held: list[tuple[GitLock, list[GitProcess] | None]] = []
        for lock in present:
            holders = None if gits is None else _holders(lock, gits)
            if holders == []:
                removed += [lock] if _remove(lock.path) else []
            else:
                held.append((lock, holders))
        if not held:
            return removed
        if time.monotonic() >= deadline:
            return removed + _give_up(held)
        time.sleep(_POLL_S)
        locks = [lock for lock, _ in held]


def _give_up(held: Sequence[tuple[GitLock, list[GitProcess] | None]]) -> list[GitLock]:
    """After the wait: a lock whose holder cannot be seen is taken as stale; one a live git
    holds is refused."""
    removed = []
    for lock, holders in held:
        if holders:
            holder = holders[0]
            raise GitLocked(
                f"git's {lock.name} ({lock.path}) is held by a git process working in "
                f"{lock.holders_in[0]} (pid {holder.pid}: {holder.command}); let it finish, "
                f"then retry (if that git is not using the lock, remove {lock.path})",
                lock=lock.path,
            )
        if _remove(lock.path):
            removed.append(lock)
    return removed


def _holders(lock: GitLock, gits: Sequence[GitProcess]) -> list[GitProcess]:
    """The gits that may hold `lock`: working where it belongs, or we cannot tell where."""
    return [
        git
        for git in gits
        if git.cwd is None or any(git.cwd.is_relative_to(d) for d in lock.holders_in)
    ]


def running_gits() -> list[GitProcess] | None:
    """The running git processes other than this one, with their current directory (None when
    it may not be read: another user's); None where processes cannot be seen (no `/proc`)."""
    if not (_PROC / "self" / "cwd").exists():
        return None
    found = []
    for entry in os.scandir(_PROC):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            process = _git_process(Path(entry.path))
            if process is not None:
                found.append(process)
    return found


def _git_process(proc: Path) -> GitProcess | None:
    try:
        name = (proc / "comm").read_text(encoding="utf-8", errors="replace").strip()
        if name != "git" and not name.startswith("git-"):
            return None
        cwd: Path | None = Path(os.readlink(proc / "cwd"))
    except PermissionError:
        cwd = None
    except OSError:
        return None  # gone, or a zombie: it holds nothing any more
    return GitProcess(int(proc.name), _command_line(proc) or name, cwd)


def _command_line(proc: Path) -> str:
    try:
        raw = (proc / "cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode("utf-8", "replace") for part in raw.split(b"\0") if part)[:120]


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _remove(path: Path) -> bool:
    """Remove the lock file; False when it was gone already."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        return True
    return False
