"""Fixtures of the lifecycle tests: a workspace whose projects keep pools of worktrees."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork import Project, Workspace
from tests.conftest import git

FILES = {
    "README.md": "# shop\n",
    ".gitignore": "build/\n.env\n.setup-done\n",
    "shop/cart.py": "class Cart:\n    pass\n",
}


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with pools on (the other tests run without them)."""
    workspace = Workspace(home=tmp_path / "home", pool=True)
    yield workspace
    for project in workspace.projects():
        wait_for_refiller(workspace, project)
    workspace.close()


def wait_for_refiller(ws: Workspace, project: Project, timeout: float = 60.0) -> None:
    """Until no background refiller of the project runs (it holds the refill lock)."""
    lock = ws.settings.home / "locks" / f"pool-{project.id}.refill"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock.exists():
            time.sleep(0.05)
            continue
        with lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
        if _settled(ws, project):
            return
        time.sleep(0.05)
    raise AssertionError("the pool's refiller did not finish in time")


def _settled(ws: Workspace, project: Project) -> bool:
    """No refill was asked for, or the pool is full at the tip of main."""
    marker = ws.settings.home / "locks" / f"pool-{project.id}.wanted"
    if not marker.exists():
        return True
    found = ws.project(project.id)
    tip = git(Path(found.path), "rev-parse", found.main_branch).strip()
    slots = ws.pool(found.id)
    return len(slots) == found.config.pool_size and all(s.commit == tip for s in slots)


def admin_name(worktree: Path) -> str:
    """The name of a worktree's administrative directory (its `.git` file points there)."""
    return (worktree / ".git").read_text().strip().rsplit("/", 1)[-1]
