"""What a killed process, or a person's own git, leaves in a session's way, and how the next
operation deals with it: git's lock files (removed when no git holds them, waited for when
one does), a killed process's files in the data dir's `tmp/`, git's errors said in one line,
a repository git refuses for its owner."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from branchwork import GitError, NotAGitRepository, Session, Workspace
from branchwork.gitops import GitLocked, recover_locks, run_git
from tests.conftest import GIT_ENV, git


@dataclass(frozen=True)
class Dirs:
    """A session, its worktree and the worktree's own git dir."""

    ws: Workspace
    session: Session
    worktree: Path
    gitdir: Path

    def notes(self) -> list[str]:
        events = self.ws.events(self.session, kinds=["note"])
        return [e.payload.model_dump()["text"] for e in events]


@pytest.fixture
def dirs(ws: Workspace, repo: Path) -> Dirs:
    session = ws.new_session(ws.add_project(repo))
    worktree = Path(session.worktree)
    gitdir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
    return Dirs(ws, session, worktree, gitdir)


def _persons_commit(worktree: Path, editor: str) -> subprocess.Popen[str]:
    """A person's `git commit -a` in the worktree: it holds `index.lock` while `editor` runs."""
    (worktree / "README.md").write_text("# changed by a person\n")
    env = {**os.environ, **GIT_ENV, "GIT_EDITOR": editor}
    return subprocess.Popen(
        ["git", "commit", "-q", "-a", "-e", "-m", "a person's commit"],
        cwd=worktree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _stop(person: subprocess.Popen[str]) -> None:
    """The person's git and its editor, stopped whatever happened."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(person.pid, signal.SIGKILL)
    person.communicate()


def _wait_for_lock(lock: Path, person: subprocess.Popen[str]) -> None:
    while not lock.exists():
        assert person.poll() is None, f"the person's git ended first: {person.stderr}"
        time.sleep(0.01)


def test_a_lock_a_live_git_holds_is_waited_for_and_never_removed(dirs: Dirs) -> None:
    person = _persons_commit(dirs.worktree, "sleep 0.5; true")
    try:
        _wait_for_lock(dirs.gitdir / "index.lock", person)
        outcome = dirs.ws.write_file(dirs.session, "mine.txt", "written meanwhile\n")
        assert person.wait(timeout=30) == 0, "the person's commit was broken"
    finally:
        _stop(person)
    assert outcome.checkpoint is not None
    log = git(dirs.worktree, "log", "--format=%s", "-2").splitlines()
    assert log == ["write mine.txt", "a person's commit"]
    assert not any("stale git" in note for note in dirs.notes())


def test_a_lock_no_git_holds_is_removed_at_once_however_young(dirs: Dirs, repo: Path) -> None:
    for lock in (dirs.gitdir / "index.lock", dirs.gitdir / "HEAD.lock"):
        lock.write_text("")
    started = time.monotonic()
    removed = recover_locks(dirs.worktree, dirs.session.branch, repo, wait_s=30)
    assert time.monotonic() - started < 5, "waited for a holder that does not exist"
    assert sorted(lock.name for lock in removed) == ["HEAD.lock", "index.lock"]
    assert not list(dirs.gitdir.glob("*.lock"))


def test_a_lock_a_live_git_keeps_is_refused_naming_that_git(dirs: Dirs, repo: Path) -> None:
    person = _persons_commit(dirs.worktree, "sleep 30; true")
    try:
        _wait_for_lock(dirs.gitdir / "index.lock", person)
        with pytest.raises(GitLocked, match=f"pid {person.pid}") as refused:
            recover_locks(dirs.worktree, dirs.session.branch, repo, wait_s=0.2)
        assert refused.value.lock == dirs.gitdir / "index.lock"
        assert (dirs.gitdir / "index.lock").exists()
    finally:
        _stop(person)


def test_a_git_error_is_one_line_with_the_remedy_and_keeps_gits_whole_message(
    repo: Path,
) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    with pytest.raises(GitLocked) as locked:
        run_git(["add", "-A"], repo)
    message = locked.value.message
    assert "\n" not in message and f"remove {lock}" in message, message
    assert "Another git process seems to be running" in locked.value.stderr
    lock.unlink()
    with pytest.raises(GitError) as failed:
        run_git(["rev-parse", "--verify", "no-such-branch"], repo)
    assert (
        failed.value.message
        == "git rev-parse --verify no-such-branch failed: Needed a single revision"
    )


def test_a_repository_given_to_another_user_later_says_how_to_trust_it(
    ws: Workspace, repo: Path
) -> None:
    """Outside `inspect_repo` too: before, `session new` said "'main' is not a branch"."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the repository to another user")
    project = ws.add_project(repo)
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 4242, 4242, follow_symlinks=False)
    with pytest.raises(NotAGitRepository, match=r"git config --global --add safe\.directory"):
        ws.new_session(project)


def test_what_a_dead_process_left_in_the_data_dirs_tmp_is_removed_by_the_next_operation(
    ws: Workspace, repo: Path
) -> None:
    session = ws.new_session(ws.add_project(repo))
    dead = subprocess.Popen(["true"])  # a process that is gone: its pid names the leftovers
    dead.wait()
    tmp = ws.settings.home / "tmp"
    tmp.mkdir(exist_ok=True)
    left = [tmp / f"bw-index-{dead.pid}-x1", tmp / f"diff-{dead.pid}-x2"]
    for directory in left:
        directory.mkdir()
        (directory / "index").write_bytes(b"DIRC")
    (tmp / f"write-{dead.pid}-x3.bw").write_text("half a file")
    live = tmp / f"bw-index-{os.getpid()}-x4"
    live.mkdir()
    ws.diff(session)
    assert sorted(p.name for p in tmp.iterdir()) == [live.name]
