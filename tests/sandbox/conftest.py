"""Fixtures for the sandbox tests: real processes, real files, nothing patched."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from branchwork.sandbox import CommandResult, CommandSpec, LocalRunner, Redactor, Runner

RunFn = Callable[..., CommandResult]


@pytest.fixture
def command_env() -> dict[str, str]:
    """A small, complete environment for test commands."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "worktree"
    path.mkdir()
    return path


@contextlib.contextmanager
def running(runner: Runner, worktree: Path, command_env: dict[str, str]) -> Iterator[RunFn]:
    """A `run(...)` helper over `runner` that deletes every output file afterwards."""
    results: list[CommandResult] = []

    def run(
        shell: str | None = None,
        *,
        argv: list[str] | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        output_cap: int = 64 * 1024,
        redactor: Redactor | None = None,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CommandResult:
        spec = CommandSpec(
            shell=shell,
            argv=argv,
            cwd=cwd or worktree,
            env=command_env if env is None else env,
            timeout_s=timeout_s,
            output_cap=output_cap,
        )
        result = runner.run(
            spec, redactor=redactor or Redactor({}), on_output=on_output, cancel=cancel
        )
        results.append(result)
        return result

    try:
        yield run
    finally:
        for result in results:
            result.output_path.unlink(missing_ok=True)


@pytest.fixture
def run_local(worktree: Path, command_env: dict[str, str]) -> Iterator[RunFn]:
    """Run a command with the local runner in `worktree`."""
    with running(LocalRunner(), worktree, command_env) as run:
        yield run


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory outside /tmp (the sandbox's /tmp is private, so hiding needs another place)."""
    base = Path("/var/tmp")
    if not base.is_dir():
        pytest.skip("no /var/tmp on this machine")
    path = Path(tempfile.mkdtemp(prefix="branchwork-test-", dir=base))
    yield path
    shutil.rmtree(path)
