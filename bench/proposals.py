"""Proposals against their baselines in plain git, measured in the same run.

Run by hand: `.venv/bin/python bench/proposals.py [--files N] [--runs N]`. A repository of N
small files is made once. Each run makes a session that changes 3 files (3 checkpoints), then:
- `propose` (checkpoint check, merge-tree conflicts, description from the history, the
  proposal and its event) against what a person does to preview the same in git:
  `git merge-tree --write-tree main BRANCH` and `git diff --stat main...BRANCH`;
- `proposal` (show: the proposal brought up to date, nothing moved) alone;
- `merge` (squash, no approval required, no checks: policy, merge-tree, commit-tree, the
  fast-forward of the clean checkout, the session retired) against `git merge --squash BRANCH`
  and `git commit` in the checkout.
Medians of N runs each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _repos import git_repo

from branchwork import Workspace


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@x", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


class _Clock:
    """Collects the wall time of `with clock("name"):` blocks, in milliseconds."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.times.setdefault(name, []).append((time.perf_counter() - started) * 1000)


def _session(ws: Workspace, run: int) -> str:
    session = ws.new_session(title=f"change {run}")
    for k in range(3):
        ws.write_file(
            session, f"pkg{k}/mod{k}.py", f"def f{k}():\n    return {1_000_000 + run * 10 + k}\n"
        )
    return session.id


def _one_run(ws: Workspace, repo: Path, run: int, clock: _Clock) -> None:
    session = _session(ws, run)
    branch = ws.session(session).branch
    with clock("preview"):
        _git(repo, "merge-tree", "--write-tree", "main", branch)
        _git(repo, "diff", "--stat", f"main...{branch}")
    with clock("propose"):
        number = ws.propose(session).number
    with clock("show"):
        ws.proposal(number)
    with clock("merge"):
        ws.merge(number)
    other = _session(ws, run + 1000)
    other_branch = ws.session(other).branch
    with clock("squash"):
        _git(repo, "merge", "--squash", other_branch)
        _git(repo, "commit", "-qm", "squash")
    ws.archive_session(other)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    files = {f"pkg{i % 20}/mod{i}.py": f"def f{i}():\n    return {i}\n" for i in range(args.files)}
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        repo = git_repo(Path(tmp) / "repo", files)
        with Workspace(home=Path(tmp) / "home", cwd=repo) as ws:
            ws.add_project(repo)
            ws.set_policy(required_approvals=0)
            for run in range(args.runs):
                _one_run(ws, repo, run, clock)
    median = {k: statistics.median(v) for k, v in clock.times.items()}
    propose, preview = median["propose"], median["preview"]
    merge, squash = median["merge"], median["squash"]
    print(f"repository of {args.files} files, {args.runs} runs, medians:")
    print(f"  propose {propose:.1f} ms vs git preview {preview:.1f} ms ({propose / preview:.1f}x)")
    print(f"  proposal show (nothing moved) {median['show']:.1f} ms")
    print(f"  merge {merge:.1f} ms vs git merge --squash + commit {squash:.1f} ms")
    print(f"  ({merge / squash:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
