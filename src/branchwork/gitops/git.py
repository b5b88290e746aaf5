"""The one place that runs the git CLI.

Our own git calls never run hooks, never sign, never page and always commit as a fixed identity,
so that a user's configuration cannot change what Branchwork records; they check files out with
one worker per core (`checkout.workers=0`, used from 100 files on).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from branchwork.domain.errors import GitError

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
        raise GitError(
            "git is not installed or not on PATH; install git (apt-get install git) and retry",
            command=["git", *args],
        ) from exc
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", errors="replace").strip()
        raise GitError(
            f"git {' '.join(args[:3])} failed: {stderr or f'exit code {proc.returncode}'}",
            command=["git", *args],
            stderr=stderr,
        )
    return proc.stdout


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
        raise GitError(
            "git is not installed or not on PATH; install git (apt-get install git) and retry",
            command=["git", *args],
        ) from exc


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
        raise GitError(f"git {' '.join(args[:3])} failed: {stderr}", command=["git", *args])
    return proc.returncode
