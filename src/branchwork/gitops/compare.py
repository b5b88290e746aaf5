"""Comparing commits: what changed between two of them, per file and as a diff; putting a
worktree back as its HEAD has it."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.gitops.git import run_git


@dataclass(frozen=True)
class FileChange:
    """One changed file; `added`/`removed` are None for a binary file."""

    path: str
    added: int | None
    removed: int | None


def numstat(root: Path, old: str, new: str) -> list[FileChange]:
    """The files that differ between commits `old` and `new`, with lines added and removed."""
    out = run_git(["diff", "--numstat", "-z", "--no-renames", old, new, "--"], root)
    changes: list[FileChange] = []
    for record in out.split("\0"):
        if not record:
            continue
        added, removed, path = record.split("\t", 2)
        changes.append(
            FileChange(
                path=path,
                added=None if added == "-" else int(added),
                removed=None if removed == "-" else int(removed),
            )
        )
    return changes


def diff_commits(root: Path, old: str, new: str) -> str:
    """The unified diff from commit `old` to commit `new`."""
    return run_git(["diff", "--no-color", "--no-ext-diff", "--find-renames", old, new, "--"], root)


def undo_changes(worktree: Path, keep: Sequence[str] = ()) -> list[str]:
    """Put the worktree's files back as its HEAD has them: files in HEAD that changed are
    restored, untracked files git would see are deleted; ignored files and those matching the
    `keep` globs stay, and so do changes git holds in its index (added, renamed), which are
    only reported. Returns the paths put back."""
    out = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], worktree)
    put_back, delete = [], []
    records = iter(out.split("\0"))
    for record in records:
        if len(record) < 4:
            continue
        code, path = record[:2], record[3:]
        if code[0] in "RC":
            next(records, None)  # a rename names its source next
        if any(fnmatch.fnmatch(path, g) or path.startswith(g.rstrip("/") + "/") for g in keep):
            continue
        if code == "??":
            delete.append(path)
        elif set(code) <= {" ", "M", "D", "T"}:
            put_back.append(path)
    if put_back:
        run_git(["checkout", "HEAD", "--", *put_back], worktree)
    for path in delete:
        (worktree / path).unlink(missing_ok=True)
        _prune_empty(worktree, (worktree / path).parent)
    return put_back + delete


def _prune_empty(worktree: Path, directory: Path) -> None:
    while directory != worktree and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
