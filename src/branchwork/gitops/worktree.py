"""Session branches and worktrees: create, remove, restore, checkpoint, diff, revert."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwork.domain.errors import Conflict, GitError, InvalidInput, InvalidPath
from branchwork.gitops.git import GitLocked, git_says, run_git, run_git_status, run_git_to


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


def add_detached_worktree(root: Path, path: Path, commit: str) -> None:
    """A new worktree at `path` with `commit` checked out and no branch (a pool's worktree)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_git(["worktree", "add", "--quiet", "--detach", str(path), commit], root)


def move_to(worktree: Path, commit: str) -> None:
    """Check `commit` out in a detached worktree, rewriting only the files that differ
    (untracked and ignored files, such as a setup's output, stay)."""
    run_git(["checkout", "--quiet", "--force", "--detach", commit], worktree)


def claim_worktree(root: Path, worktree: Path, dest: Path, branch: str, commit: str) -> None:
    """Make a detached worktree at `commit` the worktree of a new `branch` at `dest`: the
    branch is created where HEAD is and HEAD attached to it (git skips the files when the
    commit does not change), then the directory is moved (a rename). Call it under the
    repository's lock."""
    if branch_tip(worktree, branch) is not None:
        raise Conflict(f"branch {branch} already exists in {root}; pick another title")
    head = (git_dir(worktree) / "HEAD").read_text(encoding="utf-8").strip()
    if head != commit:  # detached exactly there, else it is not the worktree we think
        raise GitError(f"{worktree} is not detached at {commit[:12]}; it cannot be claimed")
    run_git(["switch", "--quiet", "--create", branch], worktree)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        run_git(["worktree", "move", str(worktree), str(dest)], root)
    except GitError:
        delete_branch(root, branch)
        raise


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


def delete_branch(root: Path, branch: str) -> bool:
    """Delete `branch`; False when git refused (checked out somewhere, or gone already)."""
    code, _, _ = run_git_status(["branch", "-D", branch], root)
    return code == 0


def head_commit(worktree: Path) -> str:
    return run_git(["rev-parse", "HEAD"], worktree).strip()


def _add_all(worktree: Path, exclude: Sequence[str]) -> list[str]:
    """`git add -A` of everything except the files matching the `exclude` globs (files copied
    in, such as `.env`). Only matches git would add are excluded: naming an ignored path, even
    to exclude it, makes `git add` fail ("paths are ignored"), and an ignored one is skipped
    anyway."""
    paths = _unignored_matches(worktree, exclude)
    return ["add", "-A", "--", ".", *(f":(exclude,literal){path}" for path in paths)]


def _unignored_matches(worktree: Path, patterns: Sequence[str]) -> list[str]:
    matches = sorted(
        {
            path.relative_to(worktree).as_posix()
            for pattern in patterns
            for path in worktree.glob(pattern)
            if path.is_file() and ".git" not in path.relative_to(worktree).parts
        }
    )
    if not matches:
        return []
    out = run_git(
        ["check-ignore", "--stdin", "-z"],
        worktree,
        input_bytes="\0".join(matches).encode(),
        check=False,
    )
    ignored = {p for p in out.split("\0") if p}
    return [m for m in matches if m not in ignored]


def force_add(worktree: Path, path: str) -> None:
    """Track `path` even when `.gitignore` excludes it (a file written through Branchwork is
    kept); a path git cannot track (inside a submodule, say) raises `InvalidPath`."""
    try:
        run_git(["add", "-f", "--", f":(literal){path}"], worktree)
    except GitLocked:
        raise  # not the path's fault: the caller recovers the lock
    except GitError as exc:
        raise InvalidPath(
            f"{path} cannot be recorded in the session's branch ({git_says(exc.stderr)}); "
            "write it somewhere else in the worktree"
        ) from exc


def snapshot_tree(
    worktree: Path, exclude: Sequence[str] = (), *, scratch: Path | None = None
) -> str:
    """The tree of the worktree's current files (committed or not), without touching its index.
    Its temporary index lives in `scratch` (the data dir's `tmp/`; the system's temporary
    directory when that cannot be written), in a directory named `bw-index-<pid>-…` after this
    process, so that what a killed process leaves there can be found and removed."""
    prefix = f"bw-index-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=_usable(scratch)) as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        _seed_index(worktree, Path(env["GIT_INDEX_FILE"]), env)
        run_git(_add_all(worktree, exclude), worktree, env=env)
        return run_git(["write-tree"], worktree, env=env).strip()


def _usable(scratch: Path | None) -> Path | None:
    """`scratch`, made if needed, when this user can write it; else None (the system's)."""
    if scratch is None:
        return None
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return scratch if os.access(scratch, os.W_OK | os.X_OK) else None


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
    run_git(_add_all(worktree, exclude), worktree)
    files = run_git(["diff", "--cached", "--name-only", "-z"], worktree).split("\0")
    files = [f for f in files if f]
    if not files:
        return None
    parent = head_commit(worktree)
    run_git(["commit", "--quiet", "--no-verify", "--allow-empty-message", "-m", message], worktree)
    return CommitInfo(commit=head_commit(worktree), parent=parent, files=files)


def diff(
    worktree: Path,
    against: str,
    *,
    exclude: Sequence[str] = (),
    stat: bool = False,
    scratch: Path | None = None,
) -> str:
    """Unified diff from `against` to the worktree's current files (uncommitted included)."""
    tree = snapshot_tree(worktree, exclude, scratch=scratch)
    args = ["diff", "--no-color", "--no-ext-diff", "--find-renames"]
    if stat:
        args.append("--stat")
    return run_git([*args, against, tree, "--"], worktree)


def diff_files(left: Path, right: Path, out: Path) -> None:
    """`git diff --no-index` of two files, written to `out` (it may be large)."""
    with out.open("wb") as sink:
        run_git_to(["diff", "--no-index", "--no-color", "--", str(left), str(right)], sink)


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


def git_dir(worktree: Path) -> Path:
    """The worktree's own git directory (its `.git` file points to it)."""
    dot_git = worktree / ".git"
    if dot_git.is_dir():
        return dot_git
    text = dot_git.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        raise GitError(f"{dot_git} is not a git worktree link; restore the session's worktree")
    target = Path(text.removeprefix("gitdir:").strip())
    return target if target.is_absolute() else (worktree / target).resolve()


def common_dir(gitdir: Path) -> Path:
    """The repository's common git dir (shared by all its worktrees), from a worktree's own."""
    pointer = gitdir / "commondir"
    if not pointer.is_file():
        return gitdir
    target = Path(pointer.read_text(encoding="utf-8").strip())
    return target if target.is_absolute() else (gitdir / target).resolve()


def attached_branch(worktree: Path) -> str | None:
    """The branch the worktree's HEAD is on, if that branch exists; None when HEAD is
    detached or names a branch that was deleted. Read from git's files: no subprocess."""
    gitdir = git_dir(worktree)
    head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref: refs/heads/"):
        return None
    ref = head.removeprefix("ref: ")
    return ref.removeprefix("refs/heads/") if _ref_sha(common_dir(gitdir), ref) else None


def branch_tip(worktree: Path, branch: str) -> str | None:
    """The commit `branch` points at, read from git's files (None when it does not exist)."""
    return _ref_sha(common_dir(git_dir(worktree)), f"refs/heads/{branch}")


def _ref_sha(common: Path, ref: str) -> str | None:
    loose = common / ref
    if loose.is_file():
        return loose.read_text(encoding="utf-8").strip() or None
    packed = common / "packed-refs"
    if not packed.is_file():
        return None
    for line in packed.read_text(encoding="utf-8").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return sha
    return None


def commits_between(worktree: Path, old: str, new: str) -> list[CommitInfo]:
    """The commits on top of `old` up to `new`, oldest first (none when `new` does not
    descend from `old`)."""
    try:
        run_git(["merge-base", "--is-ancestor", old, new], worktree)
    except GitError:
        return []
    listed = run_git(["rev-list", "--reverse", "--ancestry-path", f"{old}..{new}"], worktree)
    found = []
    for commit in listed.split():
        out = run_git(["diff-tree", "--no-commit-id", "-r", "--name-only", "-z", commit], worktree)
        parent = run_git(["rev-parse", f"{commit}^"], worktree).strip()
        found.append(
            CommitInfo(commit=commit, parent=parent, files=[f for f in out.split("\0") if f])
        )
    return found


def reattach(worktree: Path, branch: str, at: str | None) -> None:
    """Put the worktree's HEAD back on `branch`, creating the branch at `at` when it is gone.
    The worktree's files and index stay as they are (the next checkpoint records them)."""
    if at is not None:
        run_git(["update-ref", f"refs/heads/{branch}", at], worktree)
    run_git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], worktree)


def save_pending(worktree: Path, ref: str, exclude: Sequence[str] = ()) -> str | None:
    """Keep the worktree's uncommitted files as a commit on top of HEAD under `ref` (never on
    a branch: the branch and its history stay as they are); None when nothing is pending."""
    tree = snapshot_tree(worktree, exclude)
    head = head_commit(worktree)
    if tree == run_git(["rev-parse", f"{head}^{{tree}}"], worktree).strip():
        return None
    message = "Branchwork: uncommitted files of an evicted worktree"
    commit = run_git(["commit-tree", tree, "-p", head, "-m", message], worktree).strip()
    run_git(["update-ref", ref, commit], worktree)
    return commit


def apply_saved(worktree: Path, ref: str) -> bool:
    """Put the files saved under `ref` back into a freshly checked-out worktree (as staged,
    uncommitted changes: the next checkpoint records them), then drop the ref; False when there
    is no such ref."""
    saved = run_git(["rev-parse", "--verify", "--quiet", ref], worktree, check=False).strip()
    if not saved:
        return False
    run_git(["read-tree", "-u", "-m", "HEAD", saved], worktree)
    run_git(["update-ref", "-d", ref], worktree)
    return True


def changed_paths(worktree: Path) -> list[str]:
    """Paths `git status` reports (modified, staged, untracked): what a person may be editing."""
    out = run_git(
        ["status", "--porcelain", "-z", "--untracked-files=all", "--no-renames"], worktree
    )
    return [record[3:] for record in out.split("\0") if len(record) > 3]
