"""Sessions: isolation, the user's checkout untouched, archive/restore, ports, environment."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from branchwork import Conflict, NotFound, Workspace
from tests.conftest import RepoFactory, git


def _index_digest(repo: Path) -> str:
    return hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()


def test_second_session_never_sees_first_sessions_write(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    main_before = git(repo, "rev-parse", "main")
    index_before = _index_digest(repo)
    a = ws.new_session(project, title="a")
    b = ws.new_session(project, title="b")
    ws.write_file(a, "app.py", "print('from a')\n")
    ws.write_file(b, "app.py", "print('from b')\n")
    assert ws.read_file(a, "app.py") == "print('from a')\n"
    assert ws.read_file(b, "app.py") == "print('from b')\n"
    assert (repo / "app.py").read_text() == "print('hello')\n"
    assert git(repo, "rev-parse", "main") == main_before
    assert git(repo, "status", "--porcelain") == ""
    assert _index_digest(repo) == index_before
    assert a.branch != b.branch and a.worktree != b.worktree
    assert not Path(a.worktree).is_relative_to(repo)


def test_session_branch_starts_at_main_tip_and_records_base(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project, title="Fix the Login page!")
    assert session.base_commit == git(repo, "rev-parse", "main").strip()
    assert session.branch == f"bw/{session.short_id}-fix-the-login-page"
    assert git(repo, "rev-parse", session.branch).strip() == session.base_commit


def test_session_from_ref_starts_elsewhere(ws: Workspace, repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "feature.txt").write_text("f\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feature")
    git(repo, "checkout", "-q", "main")
    project = ws.add_project(repo)
    session = ws.new_session(project, from_ref="feature")
    assert (Path(session.worktree) / "feature.txt").exists()
    with pytest.raises(Exception, match="not a branch, tag or commit"):
        ws.new_session(project, from_ref="no-such-ref")


def test_archive_then_restore_gives_back_identical_files(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project, title="keep")
    ws.write_file(session, "notes/todo.md", "- one\n")
    Path(session.worktree, "uncommitted.txt").write_text("typed by a person\n")
    before = _tree_contents(Path(session.worktree))
    archived = ws.archive_session(session)
    assert archived.status == "archived"
    assert not Path(session.worktree).exists()
    assert git(repo, "rev-parse", "--verify", session.branch)
    restored = ws.restore_session(session.id)
    assert restored.status == "active"
    assert _tree_contents(Path(restored.worktree)) == before
    kinds = [e.kind for e in ws.events(session)]
    assert "archived" in kinds and kinds[-1] == "restored"


def _tree_contents(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_archived_session_refuses_work_until_restored(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.archive_session(session)
    with pytest.raises(Conflict, match="session restore"):
        ws.write_file(session.id, "x.txt", "x")


def test_deleted_worktree_is_restored_on_demand(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.write_file(session, "kept.txt", "kept\n")
    git(repo, "worktree", "remove", "--force", session.worktree)
    assert ws.read_file(session, "kept.txt") == "kept\n"
    assert ws.events(session)[-2].kind == "restored"


def test_live_sessions_get_distinct_ports_and_ids_in_env(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    a, b = ws.new_session(project), ws.new_session(project)
    assert a.port != b.port
    out = ws.run(a, "echo $PORT $BRANCHWORK_SESSION_ID $BRANCHWORK_PORT_RANGE")
    text = ws.command_output(out.finished)
    assert text.split() == [str(a.port), a.id, f"{a.port}-{a.port + 9}"]
    ws.archive_session(a)
    c = ws.new_session(project)
    assert c.port == a.port


def test_session_environment_copies_files_and_runs_setup(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    config = '[session]\ncopy = [".env"]\nsetup = "cat .env > setup-ran.txt && echo setup done"\n'
    repo = repo_factory({".branchwork.toml": config, ".gitignore": "setup-ran.txt\n"})
    (repo / ".env").write_text("API_URL=http://localhost\n")
    project = ws.add_project(repo)
    session = ws.new_session(project)
    worktree = Path(session.worktree)
    assert (worktree / ".env").read_text() == "API_URL=http://localhost\n"
    assert (worktree / "setup-ran.txt").read_text() == "API_URL=http://localhost\n"
    finished = ws.events(session, kinds=["command_finished"])
    assert len(finished) == 1 and finished[0].payload.model_dump()["status"] == "ok"
    ws.checkpoint(session, "after setup")
    committed = git(worktree, "ls-tree", "-r", "--name-only", "HEAD")
    assert ".env" not in committed.split()


def test_failing_setup_is_shown_and_session_kept(ws: Workspace, repo_factory: RepoFactory) -> None:
    repo = repo_factory({".branchwork.toml": 'setup = "exit 3"\n'})
    project = ws.add_project(repo)
    session = ws.new_session(project)
    assert ws.session(session.id).status == "active"
    notes = ws.events(session, kinds=["note"])
    assert any("setup command failed" in n.payload.model_dump()["text"] for n in notes)


def test_default_session_is_the_projects_current_then_its_newest(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    older = ws.new_session(project, title="older", current=False)
    newer = ws.new_session(project, title="newer", current=False)
    at_repo = Workspace(home=ws.settings.home, cwd=repo)
    assert at_repo.session().id == newer.id
    ws.switch_session(older.short_id)
    assert at_repo.session().id == older.id
    assert at_repo.session(newer.branch).id == newer.id
    at_repo.close()


def test_unknown_session_says_what_to_do(ws: Workspace, repo: Path, tmp_path: Path) -> None:
    outside = Workspace(home=ws.settings.home, cwd=tmp_path)
    with pytest.raises(NotFound, match="belongs to no project"):
        outside.session()
    project = ws.add_project(repo)
    at_repo = Workspace(home=ws.settings.home, cwd=repo)
    with pytest.raises(NotFound, match="session new"):
        at_repo.session()
    with pytest.raises(NotFound, match="session list"):
        at_repo.session("zzzzzzzz")
    assert at_repo.project().id == project.id
    outside.close()
    at_repo.close()


def test_restore_recreates_a_deleted_branch_at_its_last_recorded_head(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.write_file(session, "work.txt", "precious\n")
    ws.archive_session(session)
    git(repo, "branch", "-D", session.branch)
    restored = ws.restore_session(session.id)
    assert (Path(restored.worktree) / "work.txt").read_text() == "precious\n"
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert any("was missing; recreated" in n for n in notes)


def test_sessions_created_by_parallel_processes_get_distinct_branches_and_ports(
    ws: Workspace, repo: Path
) -> None:
    import json
    import subprocess

    from tests.conftest import BIN

    ws.add_project(repo)
    procs = [
        subprocess.Popen(
            [
                str(BIN / "branchwork"),
                "session",
                "new",
                "--title",
                f"p{i}",
                "--no-switch",
                "--json",
            ],
            cwd=repo,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    created = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({s["port"] for s in created}) == 4
    assert len({s["branch"] for s in created}) == 4
    for s in created:
        assert git(Path(s["worktree"]), "rev-parse", "--abbrev-ref", "HEAD").strip() == s["branch"]


def test_archive_is_refused_while_a_command_runs_in_another_process(
    ws: Workspace, repo: Path, tmp_path: Path
) -> None:
    import subprocess
    import time

    import pytest

    from branchwork import Conflict
    from tests.conftest import BIN

    project = ws.add_project(repo)
    session = ws.new_session(project)
    proc = subprocess.Popen(
        [str(BIN / "branchwork"), "run", "--session", session.id, "--", "sleep 30"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if ws.events(session, kinds=["command_started"]):
                break
            time.sleep(0.05)
        with pytest.raises(Conflict, match="still running"):
            ws.archive_session(session)
    finally:
        proc.terminate()
        proc.wait(10)


def test_inside_a_sessions_worktree_that_session_is_the_default(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    a = ws.new_session(project, title="a")
    b = ws.new_session(project, title="b")
    ws.switch_session(b)
    inside_a = Workspace(home=ws.settings.home, cwd=Path(a.worktree) / "sub")
    assert inside_a.session().id == a.id
    at_repo = Workspace(home=ws.settings.home, cwd=repo)
    assert at_repo.session().id == b.id
    inside_a.close()
    at_repo.close()
