"""Project repositories: inspection, main-branch detection, cloning, and the per-repo lock."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from branchwork.domain.errors import GitError, InvalidInput, NotAGitRepository
from branchwork.gitops.git import git_says, run_git

_MAIN_CANDIDATES = ("main", "master", "trunk", "develop")


@dataclass(frozen=True)
class RepoInfo:
    root: Path
    main_branch: str
    head_commit: str


def inspect_repo(path: Path) -> RepoInfo:
    """Check that `path` is a usable git repository with commits; find its main branch."""
    if not path.exists():
        raise InvalidInput(f"{path} does not exist; give the path of a git repository or a URL")
    if not path.is_dir():
        raise NotAGitRepository(f"{path} is a file; give the directory of a git repository")
    root = _toplevel(path)
    main = detect_main_branch(root)
    head = _commit_of(root, main)
    return RepoInfo(root=root, main_branch=main, head_commit=head)


def _toplevel(path: Path) -> Path:
    try:
        if run_git(["rev-parse", "--is-bare-repository"], path).strip() == "true":
            raise NotAGitRepository(
                f"{path} is a bare repository (no working files); clone it "
                f"(`git clone {path} DIR`) and add the clone, or add its URL"
            )
        out = run_git(["rev-parse", "--show-toplevel"], path)
    except GitError as exc:
        raise _explain_repo_error(path, exc) from exc
    return Path(out.strip()).resolve()


def _explain_repo_error(path: Path, exc: GitError) -> NotAGitRepository:
    """(A repository git refuses for its owner is said by `run_git` itself, everywhere.)"""
    return NotAGitRepository(
        f"{path} is not a git repository; run `git init` there (and commit) or give another path"
    )


def detect_main_branch(root: Path) -> str:
    """origin's HEAD when known, else main/master/trunk/develop, else the checked-out branch."""
    remote_head = run_git(
        ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"], root, check=False
    ).strip()
    if remote_head.startswith("origin/") and branch_exists(root, remote_head[7:]):
        return remote_head[7:]
    for name in _MAIN_CANDIDATES:
        if branch_exists(root, name):
            return name
    current = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], root, check=False).strip()
    if current and branch_exists(root, current):
        return current
    if not current and run_git(["rev-parse", "--verify", "--quiet", "HEAD"], root, check=False):
        raise NotAGitRepository(
            f"{root} has a detached HEAD and no main, master, trunk or develop branch; check out "
            "your main branch (`git switch NAME`) and retry"
        )
    raise NotAGitRepository(
        f"{root} has no commits yet; make a first commit (`git commit --allow-empty -m init`) "
        "and retry"
    )


def commit_exists(root: Path, sha: str) -> bool:
    out = run_git(["cat-file", "-t", sha], root, check=False).strip()
    return out == "commit"


def branch_exists(root: Path, name: str) -> bool:
    out = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/heads/{name}^{{commit}}"], root, check=False
    )
    return bool(out.strip())


def _commit_of(root: Path, ref: str) -> str:
    return run_git(["rev-parse", "--verify", f"{ref}^{{commit}}"], root).strip()


def resolve_commit(root: Path, ref: str) -> str:
    """The commit sha `ref` names; a clear error when it names nothing."""
    try:
        return _commit_of(root, ref)
    except GitError as exc:
        raise InvalidInput(
            f"{ref!r} is not a branch, tag or commit of {root}; check `git log` and retry"
        ) from exc


def branches(root: Path, prefix: str) -> list[str]:
    """The local branches whose names start with `prefix`."""
    out = run_git(["for-each-ref", "--format=%(refname)", "refs/heads/"], root)
    names = (line.removeprefix("refs/heads/") for line in out.splitlines())
    return [name for name in names if name.startswith(prefix)]


def merge_base(root: Path, one: str, other: str) -> str:
    """Where `one` forked from `other` (`one`'s tip when they share no history)."""
    found = run_git(["merge-base", one, other], root, check=False).strip()
    return found or _commit_of(root, one)


def clone(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_git(["clone", "--quiet", url, str(dest)], dest.parent)
    except GitError as exc:
        raise InvalidInput(
            f"cannot clone {url}: {git_says(exc.stderr) or exc.message}; check the URL and your "
            "access, then retry"
        ) from exc


def is_url(text: str) -> bool:
    return "://" in text or (text.startswith("git@") and ":" in text)


@contextmanager
def repo_lock(lock_dir: Path, root: Path) -> Iterator[None]:
    """Serialize ref and worktree changes of one repository across threads and processes."""
    key = hashlib.sha1(str(root).encode(), usedforsecurity=False).hexdigest()[:16]
    with file_lock(lock_dir / f"repo-{key}.lock"):
        yield


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held on `path` (created if needed) for the block, across threads and
    processes; the kernel releases it when its holder dies, so a crash never leaves it held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
