"""Fixtures of the index tests: a fresh CodeIndex per test and small git helpers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from branchwork.gitops.git import run_git
from branchwork.index import CodeIndex


@pytest.fixture
def index(tmp_path: Path) -> Iterator[CodeIndex]:
    code_index = CodeIndex(tmp_path / "data" / "index.sqlite")
    yield code_index
    code_index.close()


def write(repo: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def new_repo(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """A git repository at `root` whose first commit on `main` holds `files`."""
    root.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q", "-b", "main"], root)
    commit(root, files, "initial")
    return root


def commit(repo: Path, files: Mapping[str, str | bytes], message: str = "change") -> str:
    """Write `files`, commit everything, return the new commit's tree sha."""
    write(repo, files)
    run_git(["add", "-A"], repo)
    run_git(["commit", "-q", "--allow-empty", "-m", message], repo)
    return tree_of(repo, "HEAD")


def tree_of(repo: Path, rev: str) -> str:
    return run_git(["rev-parse", f"{rev}^{{tree}}"], repo).strip()
