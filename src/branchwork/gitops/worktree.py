"""Session branches and worktrees: create, remove, restore, checkpoint, diff, revert."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.domain.errors import Conflict, GitError, InvalidInput
from branchwork.gitops.git import run_git


@dataclass(frozen=True)
class CommitInfo:
    commit: str
    parent: str
    files: list[str]


def add_worktree(root: Path, path: Path, branch: str, start: str) -> None:
    """Create `branch` at `start` and check it out in a new worktree at `path`."""
    if run_git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], root, check=False):
        raise Conflict(f"branch {branch} already exists in {root}; pick another title")
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["worktree", "add", "--quiet", "-b", branch, str(path), start], root)


def remove_worktree(root: Path, path: Path) -> None:
    """Remove the worktree (its files); the branch stays."""
    if path.exists():
        run_git(["worktree", "remove", "--force", "--force", str(path)], root)
    run_git(["worktree", "prune"], root)


def restore_worktree(root: Path, path: Path, branch: str) -> None:
    """Check `branch` out again at `path` (after an archive or an eviction)."""
    run_git(["worktree", "prune"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["worktree", "add", "--quiet", str(path), branch], root)


def delete_branch(root: Path, branch: str) -> None:
    run_git(["branch", "-D", branch], root, check=False)


def head_commit(worktree: Path) -> str:
    return run_git(["rev-parse", "HEAD"], worktree).strip()


def _add_all(exclude: Sequence[str]) -> list[str]:
    """`git add -A` of everything except the `exclude` globs (files copied in, such as .env)."""
    return ["add", "-A", "--", ".", *(f":(exclude,glob){pattern}" for pattern in exclude)]


def snapshot_tree(worktree: Path, exclude: Sequence[str] = ()) -> str:
    """The tree of the worktree's current files (committed or not), without touching its index."""
    with tempfile.TemporaryDirectory(prefix="bw-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        _seed_index(worktree, Path(env["GIT_INDEX_FILE"]), env)
        run_git(_add_all(exclude), worktree, env=env)
        return run_git(["write-tree"], worktree, env=env).strip()


def _seed_index(worktree: Path, temp_index: Path, env: dict[str, str]) -> None:
    """Start the temporary index as a copy of the worktree's own (its stat data lets `git add`
    skip unchanged files instead of hashing them all); from HEAD when there is none."""
    real = Path(
        run_git(["rev-parse", "--path-format=absolute", "--git-path", "index"], worktree).strip()
    )
    if real.is_file():
        shutil.copy2(real, temp_index)  # keeps the mtime git checks for racily clean entries
    elif run_git(["rev-parse", "--verify", "--quiet", "HEAD"], worktree, check=False).strip():
        run_git(["read-tree", "HEAD"], worktree, env=env)


def count_ignored(worktree: Path) -> int:
    """Untracked paths `.gitignore` excludes (an ignored directory counts once)."""
    out = run_git(
        ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"], worktree
    )
    return len([p for p in out.split("\0") if p])


def checkpoint(worktree: Path, message: str, exclude: Sequence[str] = ()) -> CommitInfo | None:
    """Commit every change of the worktree to its branch; None when nothing changed."""
    run_git(_add_all(exclude), worktree)
    files = run_git(["diff", "--cached", "--name-only", "-z"], worktree).split("\0")
    files = [f for f in files if f]
    if not files:
        return None
    parent = head_commit(worktree)
    run_git(["commit", "--quiet", "--no-verify", "--allow-empty-message", "-m", message], worktree)
    return CommitInfo(commit=head_commit(worktree), parent=parent, files=files)


def diff(worktree: Path, against: str, *, exclude: Sequence[str] = (), stat: bool = False) -> str:
    """Unified diff from `against` to the worktree's current files (uncommitted included)."""
    tree = snapshot_tree(worktree, exclude)
    args = ["diff", "--no-color", "--no-ext-diff", "--find-renames"]
    if stat:
        args.append("--stat")
    return run_git([*args, against, tree, "--"], worktree)


def revert_to(
    worktree: Path, commit: str, message: str, exclude: Sequence[str] = ()
) -> CommitInfo | None:
    """Make the worktree's files those of `commit`, as a new commit on top (history kept)."""
    try:
        run_git(["cat-file", "-e", f"{commit}^{{commit}}"], worktree)
    except GitError as exc:
        raise InvalidInput(
            f"{commit!r} is not a checkpoint of this session; "
            "the session's checkpoint events list them"
        ) from exc
    run_git(["read-tree", "-u", "--reset", commit], worktree)
    return checkpoint(worktree, message, exclude)
