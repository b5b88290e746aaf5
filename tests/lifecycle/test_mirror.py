"""Main's mirror: a checkout the refiller keeps at main's tip, where a regex the index cannot
narrow is grepped (files, not inflated objects), only while it holds the tree searched."""

from __future__ import annotations

from pathlib import Path

from branchwork import Project, Workspace
from tests.conftest import RepoFactory, git
from tests.lifecycle.conftest import FILES, wait_for_refiller

NO_LITERAL = r"^\s*\w+\s*=\s*\d{4,}$"  # neither a literal nor a class to expand into trigrams


def _mirror(ws: Workspace, name: str) -> Path:
    return ws.settings.home / "worktrees" / name / ".pool" / ".mirror"


def _refilled(ws: Workspace, project: Project) -> None:
    """The pool refilled now, or by the background refiller already at it."""
    ws.refill_pool(project)
    wait_for_refiller(ws, project)


def _paths(ws: Workspace, project: str) -> set[str]:
    found = ws.search(NO_LITERAL, project=project, regex=True, limit=None)
    return {hit.path for hit in found.hits}


def test_the_mirror_holds_mains_tip_and_is_read_only_while_it_does(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory({**FILES, "shop/limits.py": "MAX = 12345\n"})
    project = pooled.add_project(repo)
    _refilled(pooled, project)
    mirror = _mirror(pooled, project.name)
    assert git(mirror, "rev-parse", "HEAD").strip() == git(repo, "rev-parse", "main").strip()
    assert git(mirror, "status", "--porcelain") == ""
    assert _paths(pooled, project.name) == {"shop/limits.py"}  # what git grep of main finds

    # A line changed in the mirror alone (nobody does that) shows the search read its files …
    (mirror / "shop" / "limits.py").write_text("MAX = 1\n")
    assert _paths(pooled, project.name) == set()
    # … and once main moves past it, the tree is grepped instead: never a stale answer.
    (repo / "shop" / "more.py").write_text("MIN = 1000\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    assert _paths(pooled, project.name) == {"shop/limits.py", "shop/more.py"}
    _refilled(pooled, project)  # moved to the new tip (forced: the changed line goes too)
    assert git(mirror, "rev-parse", "HEAD").strip() == git(repo, "rev-parse", "main").strip()
    assert _paths(pooled, project.name) == {"shop/limits.py", "shop/more.py"}


def test_du_counts_the_mirror_and_it_goes_with_the_pool(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    _refilled(pooled, project)
    mirror = _mirror(pooled, project.name)
    assert mirror.is_dir()
    with_mirror = pooled.disk_usage(project).projects[0].pool_bytes
    pooled.configure_project(project, pool_size=0)  # no refill is started: gc removes the pool
    report = pooled.gc(dry_run=True)
    assert mirror.is_dir() or not any(a.path == str(mirror) for a in report.actions)
    pooled.gc()
    assert not mirror.exists()
    assert with_mirror > pooled.disk_usage(project).projects[0].pool_bytes == 0
    assert repo.is_dir() and git(repo, "worktree", "list").count("\n") == 1
