"""Comparing commits: what changed between two of them, per file and as a diff."""

from __future__ import annotations

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
