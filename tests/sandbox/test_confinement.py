"""What a command can reach inside the sandbox `choose_runner` builds, on a real repository
cloned into a data directory with a session worktree, as the service lays them out."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from branchwork.sandbox import (
    BubblewrapRunner,
    bubblewrap_available,
    bubblewrap_problem,
    choose_runner,
)
from tests.conftest import GIT_ENV, git, make_repo

from .conftest import RunFn, running
from .procs import running_with_cmdline

pytestmark = pytest.mark.skipif(
    not bubblewrap_available(network=False),
    reason=f"bubblewrap cannot run here: {bubblewrap_problem(network=False)}",
)


@dataclass(frozen=True)
class Layout:
    data: Path  # the hidden data directory
    repo: Path  # a repository cloned into it
    worktree: Path  # a session's worktree, also inside it
    git_dirs: tuple[Path, Path]  # the worktree's git dir, the repository's common .git
    elsewhere: Path  # a visible directory outside both


@pytest.fixture
def layout(outside_tmp: Path) -> Layout:
    data = outside_tmp / "data"
    repo = make_repo(data / "repos" / "demo", {"README.md": "# demo\n", "app.py": "print(1)\n"})
    worktree = data / "worktrees" / "demo" / "s1"
    git(repo, "worktree", "add", "-q", "-b", "bw/s1", str(worktree))
    (data / "secrets").mkdir()
    (data / "secrets" / "demo.json").write_text('{"TOKEN": "hidden-value-123"}\n')
    elsewhere = outside_tmp / "elsewhere"
    elsewhere.mkdir()
    git_dirs = (repo / ".git" / "worktrees" / "s1", repo / ".git")
    return Layout(data, repo, worktree, git_dirs, elsewhere)


@pytest.fixture
def run(layout: Layout, command_env: dict[str, str]) -> Iterator[RunFn]:
    runner, choice = choose_runner(
        "auto",
        network=False,
        worktree=layout.worktree,
        git_dirs=layout.git_dirs,
        hide=[layout.data],
    )
    assert isinstance(runner, BubblewrapRunner) and choice.confined
    env = {**command_env, **GIT_ENV, "HOME": str(layout.worktree)}
    with running(runner, layout.worktree, env) as run_command:
        yield run_command


def test_command_writes_the_worktree_and_nothing_outside_it(run: RunFn, layout: Layout) -> None:
    result = run(
        f"echo made > made.txt && echo x > {layout.elsewhere}/escape.txt; "
        "touch /usr/branchwork-escape; echo done"
    )
    assert (layout.worktree / "made.txt").read_text() == "made\n"
    assert result.head.count("Read-only file system") == 2
    assert not (layout.elsewhere / "escape.txt").exists()
    assert not Path("/usr/branchwork-escape").exists()


def test_worktree_git_file_can_be_neither_rewritten_nor_replaced(
    run: RunFn, layout: Layout
) -> None:
    before = (layout.worktree / ".git").read_text()
    result = run("echo 'gitdir: /etc' > .git; rm -f .git; mv .git moved; mkdir .git; echo done")
    assert "Read-only file system" in result.head and result.head.endswith("done\n")
    assert (layout.worktree / ".git").read_text() == before
    assert not (layout.worktree / "moved").exists()


def test_repository_hooks_and_config_cannot_be_written(run: RunFn, layout: Layout) -> None:
    hooks, config = layout.repo / ".git" / "hooks", layout.repo / ".git" / "config"
    config_before = config.read_text()
    result = run(
        f"echo 'exit 0' > {hooks}/pre-commit; echo '[core]' >> {config}; "
        f"echo x > {layout.git_dirs[0]}/HEAD; echo done"
    )
    assert result.head.count("Read-only file system") == 3
    assert not (hooks / "pre-commit").exists()
    assert config.read_text() == config_before


def test_data_directory_is_hidden_but_for_the_worktree_and_git_dirs(
    run: RunFn, layout: Layout
) -> None:
    result = run(f"cat {layout.data}/secrets/demo.json 2>&1; ls -A {layout.data}")
    assert "hidden-value-123" not in result.head
    assert "No such file or directory" in result.head
    assert result.head.splitlines()[1:] == ["repos", "worktrees"]  # only the bound-back paths


def test_git_reads_work_inside_and_git_writes_fail_cleanly(run: RunFn, layout: Layout) -> None:
    head_before = git(layout.worktree, "rev-parse", "HEAD")
    (layout.worktree / "app.py").write_text("print(2)\n")
    reads = run("git status --short && git diff --stat && git log --oneline")
    assert reads.status == "ok"
    assert reads.head.startswith(" M app.py\n app.py | 2 +-\n")
    assert "initial" in reads.head
    commit = run("git commit -qam 'from inside'")
    assert commit.status == "failed"
    assert "Read-only file system" in commit.head
    assert git(layout.worktree, "rev-parse", "HEAD") == head_before
    assert git(layout.worktree, "status", "--short") == " M app.py\n"
    git(layout.repo, "fsck", "--no-progress")  # raises if anything is corrupt


def test_tmp_is_private_and_writable(run: RunFn, outside_tmp: Path) -> None:
    result = run("echo private > /tmp/own.txt && cat /tmp/own.txt && ls -A /tmp")
    assert result.head == "private\nown.txt\n"
    assert not Path("/tmp/own.txt").exists()


def test_without_network_only_loopback_exists(run: RunFn) -> None:
    interfaces = run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").head.split()
    assert interfaces == ["lo"]


def test_command_holds_no_capabilities_and_cannot_remount(run: RunFn) -> None:
    result = run("grep CapEff /proc/self/status; mount -o remount,rw / 2>&1 || echo refused")
    assert result.head.startswith("CapEff:\t0000000000000000\n")
    assert result.head.endswith("refused\n")


def daemonising(token: str) -> str:
    """A shell line that leaves a double-forked, `setsid` daemon running `sleep <token>`."""
    return f"(setsid sh -c 'sleep {token} &' &); sleep 0.2; echo started; sleep 30"


def gone(token: str, *, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while running_with_cmdline(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_timeout_kills_a_daemonised_descendant(run: RunFn) -> None:
    token = f"41.{os.getpid()}"
    result = run(daemonising(token), timeout_s=1.0)
    assert (result.status, result.head) == ("timeout", "started\n")
    assert gone(token)


def test_cancel_kills_a_daemonised_descendant(run: RunFn) -> None:
    token = f"42.{os.getpid()}"
    cancel = threading.Event()
    timer = threading.Timer(0.8, cancel.set)
    timer.start()
    result = run(daemonising(token), cancel=cancel, timeout_s=20)
    timer.join()
    assert (result.status, result.head) == ("cancelled", "started\n")
    assert gone(token)


def test_daemon_left_behind_by_a_finished_command_is_killed(run: RunFn) -> None:
    token = f"43.{os.getpid()}"
    started = time.monotonic()
    result = run(f"(setsid sh -c 'sleep {token} &' &); echo started")
    assert (result.status, result.head) == ("ok", "started\n")
    assert time.monotonic() - started < 2.5
    assert gone(token)


def test_network_on_keeps_the_hosts_interfaces(layout: Layout, command_env: dict[str, str]) -> None:
    runner, _ = choose_runner("bubblewrap", network=True, worktree=layout.worktree)
    with running(runner, layout.worktree, command_env) as run_command:
        inside = run_command("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").head.split()
    outside = [
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    ]
    assert sorted(inside) == sorted(outside)
