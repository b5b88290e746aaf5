"""Fixtures for proposals: a registered project (the person's checkout is the repo itself, on
main and clean) and sessions with changes made through Branchwork."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from branchwork import Project, Session, Workspace
from tests.conftest import git

APP = (
    "def greet(name):\n"
    '    greeting = "hello"\n'
    '    return f"{greeting}, {name}"\n'
    "\n\n"
    'print(greet("world"))\n'
)

SessionMaker = Callable[..., Session]


@pytest.fixture
def checkout(repo_factory: Callable[..., Path]) -> Path:
    """The person's checkout: main checked out, clean."""
    return repo_factory({"README.md": "# demo\n", "app.py": APP})


@pytest.fixture
def ws(tmp_path: Path, checkout: Path) -> Iterator[Workspace]:
    """A workspace working from the person's checkout (as the CLI run there does)."""
    workspace = Workspace(home=tmp_path / "home", cwd=checkout)
    yield workspace
    workspace.close()


@pytest.fixture
def project(ws: Workspace, checkout: Path) -> Project:
    return ws.add_project(checkout)


@pytest.fixture
def make_session(ws: Workspace, project: Project) -> SessionMaker:
    """A session whose files are changed (each write a checkpoint, as `branchwork write`)."""

    def make(title: str = "work", files: dict[str, str] | None = None) -> Session:
        session = ws.new_session(project, title=title)
        for path, content in (files or {}).items():
            ws.write_file(session, path, content)
        return session

    return make


def main_log(checkout: Path) -> list[str]:
    """Subjects of main's commits, newest first."""
    return git(checkout, "log", "--format=%s", "main").splitlines()


def tip(checkout: Path, ref: str = "main") -> str:
    return git(checkout, "rev-parse", ref).strip()


def commit_on_main(checkout: Path, path: str, content: str, message: str = "on main") -> str:
    """A person's commit on main, in their checkout."""
    target = checkout / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", message)
    return tip(checkout)
