"""gc, du and restore after eviction on Django, against `git worktree add` in the same run.

    .venv/bin/python bench/lifecycle.py [--cache-dir DIR] [--runs N]

A local clone of the Django checkout `bench/index.py` prepares, three sessions (one with
uncommitted edits), main indexed and searched in each. Measures: `du`; `gc --dry-run`; an
eviction of the edited session (`gc --idle 0m` on it alone) and its restore on next use (a
`read_file`), against a plain `git worktree add`; the index collected after main moved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from _repos import local_clone

from branchwork import Session, Workspace

T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _cycle(ws: Workspace, sessions: list[Session], base: Path, runs: int) -> None:
    """Evict the edited session (the others are used just before: not idle), restore it."""
    repo = Path(ws.project(sessions[0].project_id).path)
    edited = sessions[0]
    times: dict[str, list[float]] = {"evict": [], "restore": [], "plain": []}
    for n in range(runs):
        for other in sessions[1:]:
            ws.read_file(other, "README.rst")
        os.sync()
        times["evict"].append(timed(lambda: ws.gc(idle="0m", project=edited.project_id))[0])
        os.sync()
        times["restore"].append(timed(lambda: ws.read_file(edited, "django/shortcuts.py"))[0])
        plain = base / f"plain-{n}"
        os.sync()
        args = ("worktree", "add", "-q", "-b", f"plain-{n}", str(plain), "main")
        times["plain"].append(timed(lambda a=args: _git(repo, *a))[0])
        shutil.rmtree(plain)
        _git(repo, "worktree", "prune")
    text = ws.read_file(edited, "django/shortcuts.py")
    assert text.endswith("# an uncommitted edit\n"), "the edit must survive"
    med = {key: statistics.median(values) for key, values in times.items()}
    print(
        f"eviction by gc (median of {runs}): {med['evict'] * 1000:.0f} ms; restore on next "
        f"use {med['restore'] * 1000:.0f} ms = {med['restore'] / med['plain']:.2f}x "
        f"git worktree add ({med['plain'] * 1000:.0f} ms)"
    )


def _collect(ws: Workspace, sessions: list[Session]) -> None:
    repo = Path(ws.project(sessions[0].project_id).path)
    _git(repo, "commit", "--allow-empty", "-qm", "main moves")
    ws.search("QuerySet", project=sessions[0].project_id)
    for session in sessions:
        ws.archive_session(session, force=True)
    elapsed, report = timed(lambda: ws.gc(idle="7d"))
    print(
        f"gc after main moved and sessions archived: {elapsed:.1f} s, "
        f"{report.views_forgotten} views forgotten, {report.contents_collected} contents "
        f"collected, index {report.index_bytes_before / 1e6:.0f} -> "
        f"{report.index_bytes_after / 1e6:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwork-bench"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bw-lifecycle-bench-") as tmp:
        base = Path(tmp)
        repo = local_clone(args.cache_dir / "django-5.2.8", base / "django")
        with Workspace(home=base / "home", pool=False) as ws:
            project = ws.add_project(repo)
            sessions = [ws.new_session(project, title=f"s{i}") for i in range(3)]
            for session in sessions:
                ws.search("QuerySet", session=session)
            with (Path(sessions[0].worktree) / "django" / "shortcuts.py").open("a") as handle:
                handle.write("\n# an uncommitted edit\n")
            elapsed, usage = timed(lambda: ws.disk_usage(project))
            total = usage.projects[0].total_bytes
            print(
                f"du: {elapsed * 1000:.0f} ms for {len(sessions)} worktrees, {total / 1e6:.0f} MB"
            )
            elapsed, report = timed(lambda: ws.gc(idle="0m", dry_run=True))
            freed = report.freed_bytes / 1e6
            print(f"gc --dry-run: {elapsed * 1000:.0f} ms, would free {freed:.0f} MB")
            _cycle(ws, sessions, base, args.runs)
            _collect(ws, sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
