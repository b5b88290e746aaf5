"""Shared fixtures: real git repositories in tmp dirs and a Workspace on a fresh data dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from branchwork import Workspace
from branchwork.store import Store

RepoFactory = Callable[..., Path]
BIN = Path(sys.executable).parent

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "user@example.com",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def make_repo(root: Path, files: dict[str, str], *, branch: str = "main") -> Path:
    """A git repository at `root` with one commit holding `files`."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", branch)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture(scope="session", autouse=True)
def _warm_runtime() -> Iterator[None]:
    """Commands that run warm (the fault suite's drop `BRANCHWORK_*`, so a warm process runs
    them, as it would a user's) meet warm processes of this test run only, in a runtime dir of
    its own (short: socket paths are limited to 108 bytes); they are stopped at the end."""
    folder = tempfile.mkdtemp(prefix="bw-rt-")
    before = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = folder
    yield
    if before is None:
        del os.environ["XDG_RUNTIME_DIR"]
    else:
        os.environ["XDG_RUNTIME_DIR"] = before
    stop_warm_processes(Path(folder) / "branchwork")
    shutil.rmtree(folder, ignore_errors=True)


def stop_warm_processes(folder: Path, timeout: float = 30.0) -> None:
    """SIGTERM each warm process whose lock is in `folder`, and wait until it is gone."""
    for lock in folder.glob("*.lock"):
        text = lock.read_text().strip()
        if not text.isdigit():
            continue
        try:
            os.kill(int(text), signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{text}").exists() and _state(int(text)) != "Z":
            if time.monotonic() > deadline:
                raise AssertionError(f"warm process {text} did not stop")
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own data dir and no user configuration. Commands run in their own
    process: tests reason about the process that holds a turn or gets killed. tests/test_warm.py
    runs them in a warm process; `BRANCHWORK_TEST_WARM=1` runs every test's commands so."""
    warm = os.environ.get("BRANCHWORK_TEST_WARM", "0")
    for key in list(os.environ):
        if key.startswith("BRANCHWORK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("BRANCHWORK_WARM", warm)
    monkeypatch.setenv("BRANCHWORK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BRANCHWORK_POOL", "false")  # no background refills; tests/lifecycle use it
    yield


@pytest.fixture
def repo_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def factory(files: dict[str, str] | None = None, *, branch: str = "main") -> Path:
        return make_repo(
            tmp_path / f"repo{next(counter)}", files or {"README.md": "# demo\n"}, branch=branch
        )

    return factory


@pytest.fixture
def repo(repo_factory: Callable[..., Path]) -> Path:
    return repo_factory({"README.md": "# demo\n", "app.py": "print('hello')\n"})


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(home=tmp_path / "home")
    yield workspace
    workspace.close()


def bw(
    *args: str, cwd: Path, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in a subprocess; raises with its stderr when it fails."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200"}
    proc = subprocess.run(
        [str(BIN / "branchwork"), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"branchwork {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def store(ws: Workspace) -> Iterator[Store]:
    """The store of `ws`'s data directory, opened separately (for what the facade does not
    show: leases, raw appends)."""
    opened = Store.open(ws.settings.resolved_database_url)
    yield opened
    opened.close()
