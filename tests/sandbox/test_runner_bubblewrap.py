"""The bubblewrap runner: the same template inside a read-only sandbox around the worktree."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork.sandbox import (
    BubblewrapRunner,
    Redactor,
    bubblewrap_available,
    bubblewrap_problem,
    make_runner,
)

from .conftest import RunFn, running
from .procs import running_with_cmdline

pytestmark = pytest.mark.skipif(
    not bubblewrap_available(),
    reason=f"bubblewrap cannot run here: {bubblewrap_problem()}",
)

needs_netns = pytest.mark.skipif(
    not bubblewrap_available(network=False),
    reason=f"bubblewrap cannot unshare the network here: {bubblewrap_problem(network=False)}",
)


@pytest.fixture
def run_bwrap(worktree: Path, command_env: dict[str, str]) -> Iterator[RunFn]:
    with running(BubblewrapRunner(), worktree, command_env) as run:
        yield run


def test_worktree_is_writable_and_the_rest_is_read_only(run_bwrap: RunFn, worktree: Path) -> None:
    result = run_bwrap("echo made > made.txt && touch /usr/branchwork-test 2>&1; echo rc=$?")
    assert (worktree / "made.txt").read_text() == "made\n"
    assert "Read-only file system" in result.head
    assert "rc=1" in result.head
    assert not Path("/usr/branchwork-test").exists()


def test_tmp_is_private_to_the_sandbox(run_bwrap: RunFn, tmp_path: Path) -> None:
    (tmp_path / "host-only.txt").write_text("host")
    result = run_bwrap(f"test -e {tmp_path / 'host-only.txt'} && echo seen || echo unseen")
    assert result.head == "unseen\n"


def test_command_runs_in_its_own_pid_namespace(run_bwrap: RunFn) -> None:
    assert int(run_bwrap("echo $$").head) < 10


def test_core_dumps_are_disabled_in_the_sandbox(run_bwrap: RunFn) -> None:
    assert run_bwrap("ulimit -c").head == "0\n"


def test_timeout_in_the_sandbox_leaves_no_process(run_bwrap: RunFn) -> None:
    token = f"sleep 37.{os.getpid()}"  # unique to this test process
    result = run_bwrap(token, timeout_s=0.5)
    assert result.status == "timeout"
    assert running_with_cmdline(token) == []


def test_process_escaping_the_group_dies_with_the_sandbox(run_bwrap: RunFn) -> None:
    started = time.monotonic()
    token = f"sleep 38.{os.getpid()}"
    result = run_bwrap(f"setsid {token} & echo started")
    assert (result.status, result.head) == ("ok", "started\n")
    assert time.monotonic() - started < 2.5
    assert running_with_cmdline(token) == []


def test_secret_is_redacted_in_the_sandbox_too(
    run_bwrap: RunFn, command_env: dict[str, str]
) -> None:
    result = run_bwrap(
        'echo "$TOKEN"',
        env={**command_env, "TOKEN": "s3cr3t-value"},
        redactor=Redactor({"TOKEN": "s3cr3t-value"}),
    )
    assert result.head == "[secret:TOKEN]\n"


def test_missing_executable_is_an_error_result(run_bwrap: RunFn) -> None:
    result = run_bwrap(argv=["no-such-program-xyz"])
    assert (result.status, result.exit_code) == ("error", None)


def test_hidden_directory_is_empty_inside_the_sandbox(
    worktree: Path, command_env: dict[str, str], outside_tmp: Path
) -> None:
    (outside_tmp / "secrets.toml").write_text("token = 'x'\n")
    runner = BubblewrapRunner(hide=[outside_tmp])
    with running(runner, worktree, command_env) as run:
        result = run(f"ls -A {outside_tmp}; cat {outside_tmp / 'secrets.toml'} 2>&1")
        assert "token" not in result.head
        assert "No such file" in result.head


@needs_netns
def test_sandbox_without_network_has_only_loopback(
    worktree: Path, command_env: dict[str, str]
) -> None:
    runner = make_runner("bubblewrap", network=False)
    assert isinstance(runner, BubblewrapRunner)
    with running(runner, worktree, command_env) as run:
        interfaces = run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").head.split()
        assert interfaces == ["lo"]
