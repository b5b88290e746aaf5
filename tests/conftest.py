"""Shared fixtures: real git repositories in tmp dirs and a Workspace on a fresh data dir."""

from __future__ import annotations

import os
import subprocess
import sys
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
