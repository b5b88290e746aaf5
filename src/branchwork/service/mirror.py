"""A read-only checkout of main per project, for the one search the index cannot narrow.

A regex with neither a literal nor a small character class is handed to `git grep -P`. On a
session's view git reads the session's worktree; on main's view it had only the tree, and
grepping a tree inflates every blob from the object database (1.2–1.7x `git grep` in a
checkout on Django). The user's own checkout may be dirty or elsewhere, and a pooled worktree
may be claimed or moved during a grep; so, where the project keeps a pool, the refiller also
keeps this checkout at main's tip, in `.pool/.mirror`: nobody works in it, it is never claimed.

The refiller moves it under an exclusive lock; a search reads it under a shared lock, and only
when its HEAD holds exactly the tree searched. A search that finds it busy or behind greps the
tree as before: the mirror makes that search faster, never different.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

from branchwork import gitops
from branchwork.domain.errors import BranchworkError
from branchwork.domain.models import Project
from branchwork.service.base import Services
from branchwork.service.scope import repo_path


def pool_dir(services: Services, project: Project) -> Path:
    """Where the project's pooled worktrees live (`pool`), the mirror among them."""
    return services.home / "worktrees" / project.name / ".pool"


def mirror_path(services: Services, project: Project) -> Path:
    return pool_dir(services, project) / ".mirror"


def _lock_file(services: Services, project: Project) -> Path:
    path = services.lock_dir / f"mirror-{project.id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _tree_file(services: Services, project: Project) -> Path:
    return services.lock_dir / f"mirror-{project.id}.tree"


def refresh(services: Services, project: Project, repo: Path, tip: str) -> None:
    """Have the mirror hold `tip` (checked out once, then moved: only changed files are
    rewritten), and note its tree for searches. Waits for the searches reading it; a failure
    leaves no half-moved mirror."""
    path = mirror_path(services, project)
    noted = _tree_file(services, project)
    with _lock_file(services, project).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        noted.unlink(missing_ok=True)  # while it moves, it holds no tree
        try:
            if not path.is_dir():
                with gitops.repo_lock(services.lock_dir, repo):
                    gitops.add_detached_worktree(repo, path, tip)
            elif gitops.head_commit(path) != tip:
                gitops.move_to(path, tip)
            noted.write_text(gitops.run_git(["rev-parse", "HEAD^{tree}"], path).strip())
        except BranchworkError:
            _remove(repo, path)


@contextlib.contextmanager
def reading(services: Services, project: Project, tree: str) -> Iterator[Path | None]:
    """The mirror's path while it holds `tree` and nobody moves it; None otherwise (busy, behind,
    absent): the caller greps the tree itself."""
    path = mirror_path(services, project)
    try:
        handle = _lock_file(services, project).open("a") if path.is_dir() else None
    except OSError:  # a read-only data dir: the tree is grepped, the search still answers
        handle = None
    if handle is None:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None  # being moved: do not wait for a checkout
            return
        yield path if _holds(services, project, tree) else None


def _holds(services: Services, project: Project, tree: str) -> bool:
    """Whether the mirror holds `tree`, as noted when it was last moved (no subprocess)."""
    try:
        return _tree_file(services, project).read_text().strip() == tree
    except OSError:
        return False


def remove(services: Services, project: Project) -> bool:
    """Remove the mirror (the pool is off, or the project goes); whether there was one."""
    path = mirror_path(services, project)
    if not path.is_dir():
        return False
    with _lock_file(services, project).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _tree_file(services, project).unlink(missing_ok=True)
        _remove(repo_path(project), path)
    return True


def _remove(repo: Path, path: Path) -> None:
    if (repo / ".git").exists():
        with contextlib.suppress(BranchworkError):
            gitops.remove_worktree(repo, path)
    shutil.rmtree(path, ignore_errors=True)
