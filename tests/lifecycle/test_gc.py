"""`gc`, `du` and the quota: disk that stays bounded, and nothing lost on the way."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from branchwork import Workspace
from branchwork.domain.events import Merged
from branchwork.store import Store
from tests.conftest import RepoFactory, bw, git
from tests.lifecycle.conftest import FILES


def _session_with_every_kind_of_change(ws: Workspace, repo: Path):  # type: ignore[no-untyped-def]
    project = ws.add_project(repo)
    ws.configure_project(project, copy_files=[".env"])
    (repo / ".env").write_text("TOKEN=checkout\n")
    session = ws.new_session(project, title="idle one")
    worktree = Path(session.worktree)
    ws.write_file(session, "shop/prices.py", "def total():\n    return 1\n")  # checkpointed
    (worktree / "shop" / "cart.py").write_text("class Cart:\n    UNSAVED = True\n")  # pending
    (worktree / "notes.txt").write_text("untracked, not ignored\n")
    (worktree / ".env").write_text("TOKEN=edited in the session\n")  # a copied file
    return session


def test_eviction_and_restore_lose_nothing(ws: Workspace, repo_factory: RepoFactory) -> None:
    repo = repo_factory(FILES)
    session = _session_with_every_kind_of_change(ws, repo)
    worktree = Path(session.worktree)
    tip = git(repo, "rev-parse", session.branch).strip()
    seqs = [e.seq for e in ws.events(session)]

    report = ws.gc(idle="0m")
    [action] = report.actions
    assert (action.action, action.session_id, action.path) == ("evict", session.id, str(worktree))
    assert action.bytes > 0 and not worktree.exists()
    assert git(repo, "rev-parse", session.branch).strip() == tip  # the branch is untouched
    events = ws.events(session)
    assert [e.seq for e in events][: len(seqs)] == seqs and events[-1].kind == "note"
    assert "evicted" in events[-1].payload.model_dump()["text"]
    assert ws.session(session).status == "active"

    assert ws.read_file(session, "shop/cart.py") == "class Cart:\n    UNSAVED = True\n"
    assert (worktree / "notes.txt").read_text() == "untracked, not ignored\n"
    assert (worktree / ".env").read_text() == "TOKEN=edited in the session\n"
    assert (worktree / "shop" / "prices.py").read_text() == "def total():\n    return 1\n"
    assert git(worktree, "rev-parse", "HEAD").strip() == tip
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == session.branch
    kinds = [e.kind for e in ws.events(session)][len(seqs) + 1 :]
    assert "restored" in kinds
    assert not git(repo, "for-each-ref", "refs/branchwork/")  # the parked ref is gone
    saved = ws.checkpoint(session, "after the restore")
    assert saved is not None and set(saved.files) == {"notes.txt", "shop/cart.py"}


def test_busy_and_recent_sessions_are_kept(ws: Workspace, repo_factory: RepoFactory) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project)
    assert ws.gc(idle="7d").actions == []
    assert Path(session.worktree).exists()


def _snapshot(ws: Workspace, repo: Path) -> dict[str, object]:
    home = ws.settings.home
    index = sqlite3.connect(home / "index.sqlite")
    store = Store.open(ws.settings.resolved_database_url)
    try:
        return {
            "files": sorted(str(p.relative_to(home)) for p in (home / "worktrees").rglob("*")),
            "refs": git(repo, "for-each-ref"),
            "worktrees": git(repo, "worktree", "list", "--porcelain"),
            "views": index.execute("SELECT count(*) FROM views").fetchone(),
            "blobs": index.execute("SELECT count(*) FROM blobs").fetchone(),
            "events": [(s.id, store.last_seq(s.id)) for s in ws.sessions(all_projects=True)],
            "statuses": [(s.id, s.status) for s in ws.sessions(all_projects=True)],
        }
    finally:
        index.close()
        store.close()


def test_gc_dry_run_changes_nothing(ws: Workspace, repo_factory: RepoFactory, store: Store) -> None:
    repo = repo_factory(FILES)
    idle = _session_with_every_kind_of_change(ws, repo)
    merged = ws.new_session(idle.project_id, title="merged one")
    tip = git(repo, "rev-parse", merged.branch).strip()
    store.set_status(
        merged.id, "merged", Merged(proposal_id="p1", strategy="merge", target="main", commit=tip)
    )
    ws.search("Cart", session=idle)
    git(repo, "commit", "--allow-empty", "-qm", "main moves: the old main view is unused")
    ws.search("Cart", project=idle.project_id)
    before = _snapshot(ws, repo)

    report = ws.gc(idle="0m", dry_run=True)
    assert {(a.action, a.session_id) for a in report.actions} == {
        ("evict", idle.id),
        ("remove", merged.id),
    }
    assert report.views_forgotten >= 1 and report.dry_run
    assert _snapshot(ws, repo) == before

    done = ws.gc(idle="0m")
    assert {a.path for a in done.actions} == {a.path for a in report.actions}
    assert not Path(merged.worktree).exists() and not Path(idle.worktree).exists()
    assert done.views_forgotten == report.views_forgotten
    assert git(repo, "rev-parse", merged.branch).strip() == tip  # branches are never deleted


def test_gc_never_removes_a_worktree_outside_the_data_directory(
    ws: Workspace, repo_factory: RepoFactory, store: Store, tmp_path: Path
) -> None:
    repo = repo_factory(FILES)
    session = ws.new_session(ws.add_project(repo))
    outside = tmp_path / "elsewhere"
    git(repo, "worktree", "move", session.worktree, str(outside))
    store.update_session(session.id, worktree=str(outside))
    assert ws.gc(idle="0m").actions == []
    assert outside.is_dir()


def test_the_quota_warning_fires_when_the_project_reaches_it(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = ws.add_project(repo)
    ws.configure_project(project, disk_quota_mb=1)
    big = ws.new_session(project, title="big")
    assert not [e for e in ws.events(big, kinds=["note"]) if "quota" in str(e.payload)]
    (Path(big.worktree) / "data.bin").write_bytes(b"x" * 2_000_000)
    usage = ws.disk_usage(project)
    assert usage.projects[0].over_quota
    later = ws.new_session(project, title="later")
    notes = [e.payload.model_dump() for e in ws.events(later, kinds=["note"])]
    assert any(n["level"] == "warning" and "quota" in n["text"] for n in notes)
    shown = json.loads(bw("du", "--json", cwd=repo).stdout)
    assert shown["projects"][0]["over_quota"] is True
    sizes = {s["session_id"]: s["bytes"] for s in shown["projects"][0]["sessions"]}
    assert sizes[big.id] > 2_000_000 > sizes[later.id]
    warned = bw("session", "new", "--title", "third", cwd=repo)
    assert "quota" in warned.stderr
