"""The one place that runs the git CLI.

Our own git calls never run hooks, never sign, never page and always commit as a fixed identity,
so that a user's configuration cannot change what Branchwork records; they check files out with
one worker per core (`checkout.workers=0`, used from 100 files on).

A failed git command becomes one line (`GitError.message`): git's own message (its first
`fatal:` or `error:` line, without the hints and the advice that follow) and, where we know it,
what to do; the whole stderr stays in `GitError.stderr`. Two failures are told apart because
their remedy differs: a lock file git found taken (`GitLocked`, which names it; see `locks.py`
for who may remove it) and a repository git refuses for its owner ("dubious ownership":
`NotAGitRepository` with the `safe.directory` command), which is raised even with
`check=False`, since the answer a caller reads from such a failure ("no such branch") would be
wrong.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from branchwork.domain.errors import GitError, NotAGitRepository

COMMITTER_NAME = "Branchwork"
COMMITTER_EMAIL = "branchwork@localhost"

_FIXED_CONFIG = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
    "-c",
    f"user.name={COMMITTER_NAME}",
    "-c",
    f"user.email={COMMITTER_EMAIL}",
    "-c",
    "core.quotepath=false",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "checkout.workers=0",
)
_LOCK_TAKEN = re.compile(r"Unable to create '([^']+\.lock)': File exists")
_DUBIOUS = re.compile(r"detected dubious ownership in repository at '([^']+)'")


class GitLocked(GitError):
    """Git found one of its lock files (`lock`) taken: another git is working there, or one
    was killed there and left it."""

    def __init__(
        self, message: str, *, lock: Path, command: Sequence[str] = (), stderr: str = ""
    ) -> None:
        super().__init__(message, command=command, stderr=stderr)
        self.lock = lock


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        GIT_AUTHOR_NAME=COMMITTER_NAME,
        GIT_AUTHOR_EMAIL=COMMITTER_EMAIL,
        GIT_COMMITTER_NAME=COMMITTER_NAME,
        GIT_COMMITTER_EMAIL=COMMITTER_EMAIL,
        LC_ALL="C",
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    check: bool = True,
) -> str:
    """Run `git ARGS` in `cwd` and return its stdout (text); raise `GitError` on failure."""
    return run_git_bytes(args, cwd, env=env, input_bytes=input_bytes, check=check).decode(
        "utf-8", errors="replace"
    )


def run_git_bytes(
    args: Sequence[str],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    check: bool = True,
) -> bytes:
    """Run `git ARGS` in `cwd` and return its raw stdout."""
    command = ["git", *_FIXED_CONFIG, *args]
    try:
        proc = subprocess.run(
            command,
            cwd=str(cwd),
            env=_git_env(env),
            input=input_bytes,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise _not_started(args, cwd) from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", errors="replace").strip()
        _refuse_dubious(stderr)
        if check:
            raise git_error(args, stderr, proc.returncode)
    return proc.stdout


def run_git_status(
    args: Sequence[str], cwd: Path | str, *, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """Run `git ARGS` and return (exit code, stdout, stderr) as text, for commands whose exit
    code is an answer (`merge-tree` exits 1 on conflicts); raise `GitError` only when git
    cannot be run at all."""
    try:
        proc = subprocess.run(
            ["git", *_FIXED_CONFIG, *args],
            cwd=str(cwd),
            env=_git_env(env),
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise _not_started(args, cwd) from exc
    return proc.returncode, _text(proc.stdout), _text(proc.stderr).strip()


def _not_started(args: Sequence[str], cwd: Path | str) -> GitError:
    """Why git could not be started: its directory is gone (a repository moved or deleted
    since it was registered), or git itself is missing."""
    if not Path(cwd).is_dir():
        return GitError(
            f"{cwd} does not exist any more (moved or deleted?); put it back, or tell "
            "Branchwork where it went (remove the project and add it again)",
            command=["git", *args],
        )
    return GitError(
        "git is not installed or not on PATH; install git (apt-get install git) and retry",
        command=["git", *args],
    )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def popen_git(args: Sequence[str], cwd: Path | str = ".") -> subprocess.Popen[bytes]:
    """Start `git ARGS` with its stdout to be streamed (stderr dropped): for answers too large
    to wait for, read until enough and then killed."""
    try:
        return subprocess.Popen(
            ["git", *_FIXED_CONFIG, *args],
            cwd=str(cwd),
            env=_git_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise _not_started(args, cwd) from exc


def run_git_to(args: Sequence[str], sink: IO[bytes], cwd: Path | str = ".") -> int:
    """Run `git ARGS` with its output written to `sink` (for output too large to hold);
    returns the exit code (`git diff --no-index` exits 1 when the files differ)."""
    proc = subprocess.run(
        ["git", *_FIXED_CONFIG, *args],
        cwd=str(cwd),
        env=_git_env(None),
        stdout=sink,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode > 1:
        stderr = proc.stderr.decode("utf-8", errors="replace").strip()
        _refuse_dubious(stderr)
        raise git_error(args, stderr, proc.returncode)
    return proc.returncode


def git_error(args: Sequence[str], stderr: str, code: int) -> GitError:
    """The one-line error for `git ARGS` that failed with `stderr` (see the module doc)."""
    what = f"git {' '.join(args[:3])} failed"
    said = git_says(stderr) or f"exit code {code}"
    taken = _LOCK_TAKEN.search(stderr)
    if taken is None:
        return GitError(f"{what}: {said}", command=["git", *args], stderr=stderr)
    lock = Path(taken.group(1))
    return GitLocked(
        f"{what}: {lock} exists: another git process is working in this repository, or one "
        f"was killed there; let it finish, then retry (if no git runs, remove {lock})",
        lock=lock,
        command=["git", *args],
        stderr=stderr,
    )


def git_says(stderr: str) -> str:
    """Git's message in one line: its first `fatal:` or `error:` line (the prefix dropped),
    else its first line that is not a hint or a warning."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal:", "error:"):
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
    plain = [line for line in lines if not line.startswith(("hint:", "warning:"))]
    return (plain or lines or [""])[0]


def _refuse_dubious(stderr: str) -> None:
    """Git refuses a repository owned by another user: say how to trust it."""
    found = _DUBIOUS.search(stderr)
    if found is not None:
        path = found.group(1)
        raise NotAGitRepository(
            f"git refuses the repository {path}: it is owned by another user (dubious "
            f"ownership); if you trust it, run `git config --global --add safe.directory "
            f"{path}`, then retry"
        )
