"""gc, du and pools attacked as a demanding user and as an attacker would: odd idle times, a
shell working in an idle worktree, a project removed while its pool fills, a project inside
the data directory, main moved by a merge. Real repositories, processes and the real CLI."""

from __future__ import annotations

import fcntl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork import Conflict, InvalidInput, Workspace
from branchwork.store import Store
from tests.conftest import RepoFactory, bw, git, make_repo
from tests.lifecycle.conftest import FILES, wait_for_refiller


@pytest.mark.parametrize("idle", ["99999999999999999999d", "1" * 400, "-1d", "abc", "7x"])
def test_an_idle_time_that_is_not_a_duration_is_one_clear_error(
    ws: Workspace, repo_factory: RepoFactory, idle: str
) -> None:
    ws.add_project(repo_factory(FILES))
    with pytest.raises(InvalidInput, match="idle time"):
        ws.gc(idle=idle)


def test_the_cli_says_so_in_one_line(repo_factory: RepoFactory) -> None:
    repo = repo_factory(FILES)
    bw("project", "add", ".", cwd=repo)
    refused = bw("gc", "--idle", "99999999999999999999d", "--dry-run", cwd=repo, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "idle time" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


@pytest.fixture
def shell_in() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started with their current directory in a worktree (a person's shell, an
    editor, a terminal of the web UI); stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def test_gc_keeps_a_worktree_a_process_works_in(
    ws: Workspace, repo_factory: RepoFactory, shell_in: list[subprocess.Popen[bytes]]
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project, title="a shell is open here")
    worktree = Path(session.worktree)
    shell = subprocess.Popen(["sleep", "60"], cwd=worktree / "shop")
    shell_in.append(shell)
    report = ws.gc(idle="0m")
    assert report.actions == [] and worktree.is_dir()
    assert any(f"process {shell.pid}" in reason for reason in report.skipped)
    shell.kill()
    shell.wait()
    [action] = ws.gc(idle="0m").actions
    assert action.action == "evict" and not worktree.exists()


def test_a_directory_of_the_data_directory_is_not_a_project(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project)
    # a session's worktree is a checkout too: registered, gc would remove another project's
    # repository with the session's worktree
    with pytest.raises(InvalidInput, match="data directory"):
        ws.add_project(Path(session.worktree))
    assert [p.name for p in ws.projects()] == [project.name]


def _holds(lock: Path) -> bool:
    """Whether some process holds the flock on `lock`."""
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_removing_a_project_while_its_pool_fills_leaves_no_worktree_behind(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    # the setup runs in each pooled worktree before it is listed as ready: a window of 2 s
    config = 'setup = "sleep 2"\npool_setup = true\n'
    repo = repo_factory({**FILES, ".branchwork.toml": config})
    project = pooled.add_project(repo)
    home = pooled.settings.home
    refill = home / "locks" / f"pool-{project.id}.refill"
    pool = home / "worktrees" / project.name / ".pool"
    _until(lambda: _holds(refill) and pool.is_dir() and any(pool.iterdir()))
    pooled.remove_project(project)
    _until(lambda: not _holds(refill))
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not pool.exists() or not any(pool.iterdir())
    store = Store.open(pooled.settings.resolved_database_url)
    try:
        assert store.get_state(f"pool:{project.id}") is None
    finally:
        store.close()


def test_a_merge_into_main_refills_the_pool_at_the_new_tip(
    pooled: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = pooled.add_project(repo)
    wait_for_refiller(pooled, project)
    pooled.set_policy(required_approvals=0, project=project)
    session = pooled.new_session(project, title="a change")
    pooled.write_file(session, "shop/cart.py", "class Cart:\n    items = []\n")
    pooled.propose(session)
    wait_for_refiller(pooled, project)  # the refill the claim asked for is over
    merged = pooled.merge(1, project=project).commit

    def refilled() -> bool:
        slots = pooled.pool(project.id)
        return len(slots) == 2 and all(s.commit == merged for s in slots)

    _until(refilled)
    wait_for_refiller(pooled, project)


def test_gc_says_where_a_finished_sessions_uncommitted_files_went(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(FILES)
    project = ws.add_project(repo)
    ws.set_policy(required_approvals=0, project=project)
    session = ws.new_session(project, title="merged, then edited")
    ws.write_file(session, "shop/cart.py", "class Cart:\n    items = []\n")
    ws.propose(session)
    ws.merge(1, project=project)
    # its worktree still on disk with a file written after the merge (as when the merge
    # keeps a worktree that changed meanwhile)
    git(repo, "worktree", "add", "--quiet", session.worktree, session.branch)
    (Path(session.worktree) / "after.txt").write_text("written after the merge\n")
    [action] = ws.gc(idle="7d").actions
    assert action.action == "remove" and not Path(session.worktree).exists()
    ref = f"refs/branchwork/parked/{session.id}"
    assert git(repo, "show", f"{ref}:after.txt") == "written after the merge\n"
    note = ws.events(session, kinds=["note"])[-1].payload.model_dump()["text"]
    assert ref in note and "comes back by itself" not in note


def test_du_does_not_follow_a_worktree_replaced_by_a_symlink(
    ws: Workspace, repo_factory: RepoFactory, tmp_path: Path
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.bin").write_bytes(b"x" * 2_000_000)
    worktree = Path(session.worktree)
    git(Path(project.path), "worktree", "remove", "--force", str(worktree))
    worktree.symlink_to(elsewhere)  # a link to `/` would have du walk the whole disk
    (usage,) = ws.disk_usage(project).projects
    (measured,) = usage.sessions
    assert measured.bytes < 100_000
    assert ws.gc(idle="0m").actions == [] and (elsewhere / "big.bin").exists()


@pytest.mark.parametrize("where", ["nested", "vendor/lib"])
def test_gc_keeps_a_worktree_holding_a_git_repository_of_its_own(
    ws: Workspace, repo_factory: RepoFactory, where: str
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project, title="patches a dependency")
    # a clone made in the session (to patch a dependency): the parked commit would hold it as
    # a bare gitlink, and its history and files would go with the directory
    nested = make_repo(Path(session.worktree) / where, {"lib.py": "precious = 1\n"})
    (nested / "wip.py").write_text("not committed anywhere\n")
    report = ws.gc(idle="0m")
    assert report.actions == []
    assert any(f"{where} is a git repository" in reason for reason in report.skipped)
    assert (nested / "wip.py").exists() and git(nested, "log", "--format=%s") == "initial\n"


def test_archive_and_promote_refuse_to_drop_a_git_repository_of_its_own(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    project = ws.add_project(repo_factory(FILES))
    session = ws.new_session(project, title="patches a dependency")
    nested = make_repo(Path(session.worktree) / "vendor" / "lib", {"lib.py": "precious = 1\n"})
    with pytest.raises(Conflict, match=r"vendor/lib in session .* git repository of its own"):
        ws.archive_session(session)
    assert ws.session(session.id).status == "active" and (nested / "lib.py").exists()
    task = ws.new_task("t", project=project)
    first = ws.start_task(task, project=project)
    second = ws.start_task(task, project=project)
    make_repo(Path(ws.session(second.session_id).worktree) / "clone", {"a.py": "a = 1\n"})
    with pytest.raises(Conflict, match="clone in session"):
        ws.promote(first)
    assert [f.trial.status for f in ws.task_details(task).trials] == ["running", "running"]
    assert ws.session(second.session_id).status == "active"
