"""Session start against its baseline, plain `git worktree add -b`, measured in the same run.

Run by hand: `.venv/bin/python bench/session_start.py [--files N] [--runs N]`. A repository of
N small files is made once; each run creates one Branchwork session (branch + worktree + event +
port, through the Python API) and, alternating with it, one plain worktree with a branch.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from branchwork import Workspace


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repo(root: Path, files: int) -> Path:
    root.mkdir()
    for i in range(files):
        path = root / f"pkg{i % 20}" / f"mod{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"def f{i}():\n    return {i}\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "init")
    return root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repo = _repo(base / "repo", args.files)
        ours, plain = [], []
        with Workspace(home=base / "home") as ws:
            project = ws.add_project(repo)
            for i in range(args.runs):
                start = time.perf_counter()
                ws.new_session(project, title=f"bench {i}")
                ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                _git(
                    repo, "worktree", "add", "-q", "-b", f"plain-{i}", str(base / f"wt{i}"), "main"
                )
                plain.append(time.perf_counter() - start)
    ours_ms, plain_ms = 1000 * statistics.median(ours), 1000 * statistics.median(plain)
    print(f"repository: {args.files} files, {args.runs} runs each")
    print(f"session new (median):          {ours_ms:8.1f} ms")
    print(f"git worktree add -b (median):  {plain_ms:8.1f} ms")
    print(f"ratio:                         {ours_ms / plain_ms:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
