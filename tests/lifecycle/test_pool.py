"""Pools of ready worktrees: sessions start with a branch switch, refilled in the background."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from branchwork import Workspace
from tests.conftest import RepoFactory, git
from tests.lifecycle.conftest import FILES, admin_name, wait_for_refiller


def _tracked_and_untracked(worktree: Path) -> set[str]:
    out = git(worktree, "ls-files", "--cached", "--others", "--exclude-standard")
    return set(out.split())


def test_a_pooled_session_has_mains_files_its_branch_and_nothing_of_the_previous_claimant(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    pooled.configure_project(project, copy_files=[".env"])
    (repo / ".env").write_text("TOKEN=checkout\n")
    slots = pooled.refill_pool(project)
    assert len(slots) == 2
    tip = git(repo, "rev-parse", "main").strip()
    assert {s.commit for s in slots} == {tip}

    first = pooled.new_session(project, title="first")
    assert admin_name(Path(first.worktree)) in {Path(s.path).name for s in slots}  # claimed
    worktree = Path(first.worktree)
    (worktree / "shop" / "cart.py").write_text("class Cart:\n    FIRST = 1\n")
    (worktree / "first_notes.txt").write_text("mine\n")
    (worktree / "build").mkdir()
    (worktree / "build" / "out.bin").write_text("built by first\n")
    (worktree / ".env").write_text("TOKEN=first\n")
    pooled.archive_session(first)
    wait_for_refiller(pooled, project)

    second = pooled.new_session(project, title="second")
    fresh = Path(second.worktree)
    assert admin_name(fresh) in {Path(s.path).name for s in pooled.refill_pool(project) + slots}
    assert git(fresh, "rev-parse", "--abbrev-ref", "HEAD").strip() == second.branch
    assert git(fresh, "rev-parse", "HEAD").strip() == tip == second.base_commit
    assert _tracked_and_untracked(fresh) == set(FILES)
    assert git(fresh, "status", "--porcelain", "--ignored").split() == ["!!", ".env"]
    assert (fresh / "shop" / "cart.py").read_text() == FILES["shop/cart.py"]
    assert (fresh / ".env").read_text() == "TOKEN=checkout\n"
    assert not (fresh / "build").exists() and not (fresh / "first_notes.txt").exists()


def test_a_pool_refilled_after_main_moves_holds_the_new_tip(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    wait_for_refiller(pooled, project)  # the fill started when the project was added
    old = git(repo, "rev-parse", "main").strip()
    assert {s.commit for s in pooled.pool(project)} == {old}
    (repo / "shop" / "prices.py").write_text("def total():\n    return 0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main moves")
    new = git(repo, "rev-parse", "main").strip()

    stale_start = pooled.new_session(project, title="after the move")  # none at the new tip
    assert stale_start.base_commit == new
    assert (Path(stale_start.worktree) / "shop" / "prices.py").exists()
    wait_for_refiller(pooled, project)  # asked for by that session, in the background
    slots = pooled.pool(project)
    assert len(slots) == 2 and {s.commit for s in slots} == {new}
    for slot in slots:
        assert git(Path(slot.path), "rev-parse", "HEAD").strip() == new
        assert (Path(slot.path) / "shop" / "prices.py").exists()
    claimed = pooled.new_session(project, title="claims the new tip")
    assert admin_name(Path(claimed.worktree)) in {Path(s.path).name for s in slots}


def test_concurrent_processes_never_claim_the_same_worktree(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    wait_for_refiller(pooled, project)
    slots = {Path(s.path).name for s in pooled.refill_pool(project)}
    script = (
        "import json, sys\n"
        "from branchwork import Workspace\n"
        "with Workspace(home=sys.argv[1], pool=True) as ws:\n"
        "    s = ws.new_session(sys.argv[2], title=sys.argv[3])\n"
        "    print(json.dumps({'worktree': s.worktree}))\n"
    )
    home = str(pooled.settings.home)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, home, project.name, f"racer {n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    worktrees = [Path(json.loads(p.communicate(timeout=120)[0])["worktree"]) for p in procs]
    names = [admin_name(w) for w in worktrees]
    assert len(set(names)) == 2 and set(names) <= slots
    for worktree in worktrees:
        assert _tracked_and_untracked(worktree) == set(FILES)


def test_the_setup_runs_ahead_of_time_when_the_project_allows_it(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    pooled.configure_project(
        project, setup="echo prepared > .setup-done && echo setup-output", pool_setup=True
    )
    slots = pooled.refill_pool(project)
    assert all(s.setup is not None and s.setup.status == "ok" for s in slots)
    session = pooled.new_session(project, title="prepared")
    assert (Path(session.worktree) / ".setup-done").read_text() == "prepared\n"
    started = pooled.events(session, kinds=["command_started"])
    assert [e.payload.model_dump()["purpose"] for e in started] == ["setup"]  # not run again
    [finished] = pooled.events(session, kinds=["command_finished"])
    assert pooled.command_output(finished.payload).strip() == "setup-output"  # type: ignore[arg-type]
    notes = [e.payload.model_dump()["text"] for e in pooled.events(session, kinds=["note"])]
    assert any("ahead of time" in text for text in notes)


def test_without_a_pool_sessions_check_out_their_own_worktree(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project)
    assert ws.pool(project) == []
    assert admin_name(Path(session.worktree)) == Path(session.worktree).name
