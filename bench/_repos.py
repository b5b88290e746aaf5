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
