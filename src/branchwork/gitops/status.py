"""What a worktree's files differ in from a base commit, without hashing the unchanged ones.

`git status` compares the worktree with its index by stat data (only changed files are read),
`git diff-tree` compares the base with HEAD by tree sha (unchanged subtrees are skipped): so the
cost follows the number of directories and of changes, not the size of the files. Only the
files changed since the index was written are hashed, in one `git hash-object` call.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.gitops.git import run_git, run_git_bytes

ABSENT = 0
REGULAR = 0o100644
EXECUTABLE = 0o100755
SYMLINK = 0o120000
SUBMODULE = 0o160000


@dataclass(frozen=True, slots=True)
class PathChange:
    """One path whose worktree state differs from the base: its mode in the base (0: absent)
    and now (0: deleted), and its content's blob sha when it is a regular file now."""

    path: str
    base_mode: int
    mode: int
    sha: str | None


def worktree_changes(worktree: Path, base: str, exclude: Sequence[str] = ()) -> list[PathChange]:
    """Every path whose current file (committed or not, tracked or untracked and not ignored)
    differs from commit `base`; paths matching the `exclude` globs (copied files) left out."""
    committed = _committed(worktree, base)
    pending = _status(worktree)
    skip = matching(worktree, exclude, [p for p, kind in pending.items() if kind[0] == "?"])
    changes: dict[str, PathChange] = {}
    for path, (old, new, head_sha) in committed.items():
        indexable = new not in (ABSENT, SUBMODULE)
        changes[path] = PathChange(path, old, new, head_sha if indexable else None)
    to_hash: list[str] = []
    for path, (_kind, head_mode, mode, sha) in pending.items():
        if path in skip:
            continue
        base_mode = committed[path][0] if path in committed else head_mode
        if sha is None and mode in (REGULAR, EXECUTABLE):
            to_hash.append(path)
        changes[path] = PathChange(path, base_mode, mode, sha)
    for path, sha in zip(to_hash, hash_files(worktree, to_hash), strict=True):
        changes[path] = PathChange(path, changes[path].base_mode, changes[path].mode, sha)
    return sorted(changes.values(), key=lambda c: c.path)


def file_state(worktree: Path, paths: Sequence[str]) -> list[PathChange]:
    """The current state of a few paths (Branchwork's own writes): hashed if regular files,
    deleted if gone, not indexable otherwise. Their base mode is unknown (given as 0)."""
    regular, changes = [], {}
    for path in paths:
        mode = _mode_on_disk(worktree / path)
        changes[path] = PathChange(path, ABSENT, mode, None)
        if mode in (REGULAR, EXECUTABLE):
            regular.append(path)
    for path, sha in zip(regular, hash_files(worktree, regular), strict=True):
        changes[path] = PathChange(path, ABSENT, changes[path].mode, sha)
    return [changes[path] for path in paths]


def hash_files(worktree: Path, paths: Sequence[str]) -> list[str]:
    """Blob shas of regular files of the worktree, written to the object database (where the
    index reads contents from, and where the next checkpoint finds them)."""
    if not paths:
        return []
    out = run_git(
        ["hash-object", "-w", "--stdin-paths"], worktree, input_bytes="\n".join(paths).encode()
    )
    return out.split()


def _committed(worktree: Path, base: str) -> dict[str, tuple[int, int, str]]:
    """path -> (mode in base, mode at HEAD, sha at HEAD) for the paths HEAD changed."""
    head = run_git(["rev-parse", "HEAD"], worktree).strip()
    if head == base:
        return {}
    out = run_git_bytes(["diff-tree", "-r", "-z", "--no-renames", base, head], worktree)
    fields = out.split(b"\0")
    found = {}
    for meta, raw in zip(fields[0:-1:2], fields[1::2], strict=True):
        old_mode, new_mode, _old, new_sha, _status = meta.decode("ascii").lstrip(":").split()
        found[raw.decode("utf-8", "surrogateescape")] = (
            int(old_mode, 8),
            int(new_mode, 8),
            new_sha,
        )
    return found


def _status(worktree: Path) -> dict[str, tuple[str, int, int, str | None]]:
    """path -> (entry kind, mode at HEAD, mode now, sha now if known without hashing)."""
    out = run_git_bytes(
        ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"], worktree
    )
    found: dict[str, tuple[str, int, int, str | None]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        text = record.decode("utf-8", "surrogateescape")
        if text[0] == "?":
            path = text[2:]
            found[path] = ("?", ABSENT, _mode_on_disk(worktree / path), None)
        elif text[0] in "1u":
            found.update([_tracked_entry(worktree, text)])
    return found


def _tracked_entry(worktree: Path, text: str) -> tuple[str, tuple[str, int, int, str | None]]:
    if text[0] == "1":  # 1 XY sub mH mI mW hH hI path
        parts = text.split(" ", 8)
        xy, head_mode, work_mode, index_sha, path = parts[1], parts[3], parts[5], parts[7], parts[8]
    else:  # u XY sub m1 m2 m3 mW h1 h2 h3 path: a conflict, hashed from the file
        parts = text.split(" ", 10)
        xy, head_mode, work_mode, index_sha, path = parts[1], parts[3], parts[6], "", parts[10]
    mode = int(work_mode, 8)
    if mode not in (ABSENT, SUBMODULE):
        mode = _mode_on_disk(worktree / path)
    clean = xy[1] == "." and index_sha and mode in (REGULAR, EXECUTABLE)
    return path, ("1", int(head_mode, 8), mode, index_sha if clean else None)


def _mode_on_disk(path: Path) -> int:
    """Git's mode for what is at `path` now (lstat: a symlink is never followed)."""
    try:
        info = os.lstat(path)
    except OSError:
        return ABSENT
    if stat.S_ISLNK(info.st_mode):
        return SYMLINK
    if not stat.S_ISREG(info.st_mode):
        return ABSENT
    return EXECUTABLE if info.st_mode & 0o111 else REGULAR


def matching(worktree: Path, patterns: Sequence[str], paths: Sequence[str]) -> set[str]:
    """Those of `paths` the `patterns` globs match (files copied in, such as `.env`)."""
    if not patterns or not paths:
        return set()
    matches = {
        path.relative_to(worktree).as_posix()
        for pattern in patterns
        for path in worktree.glob(pattern)
    }
    return matches.intersection(paths)


def nested_repositories(worktree: Path) -> list[str]:
    """The git repositories inside the worktree other than its own: clones made in it (not
    ignored) and checked-out submodules. A copy of the worktree's files (a checkpoint, a parked
    commit) holds each as a bare gitlink: their histories and files are not in it."""
    staged = run_git(["ls-files", "--stage", "-z"], worktree).split("\0")
    found = [e.split("\t", 1)[1] for e in staged if e.startswith("160000 ") and "\t" in e]
    found = [p for p in found if os.path.lexists(worktree / p / ".git")]
    others = ["ls-files", "--others", "--exclude-standard", "--directory", "-z"]
    for entry in run_git(others, worktree).split("\0"):
        if entry.endswith("/"):
            found.extend(_repositories_under(worktree, entry.rstrip("/")))
    return found


def _repositories_under(worktree: Path, top: str) -> list[str]:
    """The directories at or below `top` that hold a `.git` (not looked into further)."""
    found = []
    for here, dirs, files in os.walk(worktree / top):
        if ".git" in dirs or ".git" in files:
            found.append(Path(here).relative_to(worktree).as_posix())
            dirs.clear()
    return found
