"""Resource limits with real processes, under both runners: a command past a limit is ended
and says so; the limits the command sees are exactly the ones given."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput
from branchwork.sandbox import (
    BubblewrapRunner,
    ExecTemplate,
    Limits,
    LocalRunner,
    bubblewrap_available,
    bubblewrap_problem,
)
from branchwork.sandbox.limits import limits_prefix

from .conftest import running

MiB = 1024 * 1024
NO_LIMITS = Limits(cpu_seconds=None, memory_bytes=None, processes=None, file_bytes=None)
BACKENDS = [
    "local",
    pytest.param(
        "bubblewrap",
        marks=pytest.mark.skipif(
            not bubblewrap_available(), reason=f"bubblewrap cannot run here: {bubblewrap_problem()}"
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def runner_for(backend: str, limits: Limits) -> ExecTemplate:
    return LocalRunner(limits=limits) if backend == "local" else BubblewrapRunner(limits=limits)


def limits_seen(text: str) -> dict[str, tuple[str, str]]:
    """`/proc/self/limits` as {name: (soft, hard)}."""
    rows = {}
    for line in text.splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        rows[name] = (soft, hard)
    return rows


def shown(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def test_writing_past_the_file_size_limit_ends_the_command(
    backend: str, worktree: Path, command_env: dict[str, str]
) -> None:
    with running(runner_for(backend, Limits(file_bytes=MiB)), worktree, command_env) as run:
        result = run(f"head -c {3 * MiB} /dev/zero > big.bin")
    assert (result.status, result.limit_exceeded) == ("failed", "file_bytes")
    assert result.exit_code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ)
    assert (worktree / "big.bin").stat().st_size == MiB
    assert result.head.endswith(
        "[branchwork] File size limit exceeded: a process wrote past the largest file size "
        f"it may write (`file_bytes` = {MiB}); it was ended.\n"
    )


def test_busy_loop_is_ended_at_the_cpu_time_limit(
    backend: str, worktree: Path, command_env: dict[str, str]
) -> None:
    started = time.monotonic()
    with running(runner_for(backend, Limits(cpu_seconds=1)), worktree, command_env) as run:
        result = run("while :; do :; done", timeout_s=20)
    assert (result.status, result.limit_exceeded) == ("failed", "cpu_seconds")
    assert result.exit_code in (-signal.SIGXCPU, 128 + signal.SIGXCPU)
    assert "CPU time limit exceeded" in result.head and "`cpu_seconds` = 1" in result.head
    assert time.monotonic() - started < 10  # ended by the limit, long before the timeout


def test_allocating_past_the_memory_limit_fails(
    backend: str, worktree: Path, command_env: dict[str, str]
) -> None:
    script = "b = bytearray(512 * 1024 * 1024)"
    with running(runner_for(backend, Limits(memory_bytes=256 * MiB)), worktree, command_env) as run:
        result = run(argv=[sys.executable, "-c", script])
        assert run(argv=[sys.executable, "-c", "b = bytearray(16 * 1024 * 1024)"]).status == "ok"
    assert result.status == "failed"
    assert "MemoryError" in result.head
    assert result.limit_exceeded is None  # the program reported it, not a signal


def test_command_runs_under_exactly_the_limits_given(
    backend: str, worktree: Path, command_env: dict[str, str]
) -> None:
    limits = Limits(cpu_seconds=7, memory_bytes=512 * MiB, processes=100, file_bytes=3 * MiB)
    runner = runner_for(backend, limits)
    with running(runner, worktree, command_env) as run:
        seen = limits_seen(run("cat /proc/self/limits").head)
    assert seen["Max cpu time"] == ("7", "8")  # SIGXCPU at 7 s, SIGKILL at 8 s
    assert seen["Max address space"] == (str(512 * MiB), str(512 * MiB))
    assert seen["Max file size"] == (str(3 * MiB), str(3 * MiB))
    assert seen["Max core file size"] == ("0", "0")
    own_namespace = isinstance(runner, BubblewrapRunner) and runner.own_user_namespace
    inherited = tuple(map(shown, resource.getrlimit(resource.RLIMIT_NPROC)))
    assert seen["Max processes"] == (("100", "100") if own_namespace else inherited)


def test_no_limit_keeps_the_inherited_one(worktree: Path, command_env: dict[str, str]) -> None:
    with running(LocalRunner(limits=NO_LIMITS), worktree, command_env) as run:
        seen = limits_seen(run("cat /proc/self/limits").head)
    for name, kind in [
        ("Max cpu time", resource.RLIMIT_CPU),
        ("Max file size", resource.RLIMIT_FSIZE),
    ]:
        assert seen[name] == tuple(map(shown, resource.getrlimit(kind)))


def test_limits_within_reach_leave_a_command_alone(
    backend: str, worktree: Path, command_env: dict[str, str]
) -> None:
    with running(runner_for(backend, Limits()), worktree, command_env) as run:
        result = run("head -c 100000 /dev/zero > small.bin && echo fine")
    assert (result.status, result.head, result.limit_exceeded) == ("ok", "fine\n", None)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run a command as another, ordinary user",
)
def test_process_limit_stops_an_ordinary_users_fork_bomb(worktree: Path) -> None:
    """Root is never held to RLIMIT_NPROC, so the command switches to `nobody` first."""
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 5 >/dev/null 2>&1 & done; echo all started"
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv = [*limits_prefix(Limits(processes=4), processes=True), *drop, "/bin/sh", "-c", script]
    proc = subprocess.Popen(
        argv,
        cwd=worktree,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert "all started" not in output
    # dash: "Cannot fork"; bash: "fork: retry: …"; setpriv, when `nobody` already runs more
    # processes elsewhere: "failed to execute /bin/sh: Resource temporarily unavailable"
    assert "fork" in output.lower() or "Resource temporarily unavailable" in output


@pytest.mark.parametrize("field", ["cpu_seconds", "memory_bytes", "processes", "file_bytes"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_a_limit_must_be_a_positive_whole_number(field: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=field):
        Limits(**{field: value})  # type: ignore[arg-type]
