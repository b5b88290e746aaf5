"""Git repositories for the benches: `git_repo(root, files)` commits `files` on `main`."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_repo(root: Path, files: dict[str, str]) -> Path:
    """A repository at `root` (created) with one commit holding `files` (path -> text)."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def local_clone(source: Path, dest: Path) -> Path:
    """A clone of `source` at `dest` (objects hard-linked: seconds, little disk), on `main`,
    with no remote: a bench never changes the cached repository it starts from."""
    subprocess.run(["git", "clone", "-q", "--local", str(source), str(dest)], check=True)
    head = subprocess.run(
        ["git", "symbolic-ref", "--short", "HEAD"], cwd=dest, capture_output=True, text=True
    ).stdout.strip()
    if head != "main":
        subprocess.run(["git", "branch", "-m", head, "main"], cwd=dest, check=True)
    subprocess.run(["git", "remote", "remove", "origin"], cwd=dest, check=True)
    return dest


def synthetic_repo(root: Path, files: int) -> Path:
    """A repository of `files` small Python files in directories of 200 (as a large monorepo
    is laid out), committed on `main`."""
    for i in range(files):
        path = root / f"pkg{i // 2000}" / f"sub{(i // 200) % 10}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"def f{i}():\n    return x{i % 1000:03d}\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root
