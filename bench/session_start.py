"""Session start against its baseline, plain `git worktree add -b`, measured in the same run.

    .venv/bin/python bench/session_start.py [--cache-dir DIR] [--files N] [--runs N]

On two repositories: the Django 5.2.8 sdist (a local clone of the one `bench/index.py` prepares
in DIR) and a synthetic repository of N files (default 50,000). For each, alternating:
- cold: `Workspace.new_session` with no pool (branch, `git worktree add`, event, port);
- warm: `Workspace.new_session` claiming a pooled worktree (the background refill it starts is
  waited for after it, outside every timing);
- baseline: `git worktree add -b NAME PATH main` run directly; and the same with the parallel
  checkout our git calls use (`-c checkout.workers=0`), to show Branchwork's own overhead.
Worktrees are deleted (and the disk flushed) after each measurement, not timed; plain and cold
take turns going first. Goals: cold <= 1.2x the baseline, warm >= 10x faster than it.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _repos import local_clone, synthetic_repo

from branchwork import Project, Workspace


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _wait_for_refiller(ws: Workspace, project: Project) -> None:
    lock = ws.settings.home / "locks" / f"pool-{project.id}.refill"
    while True:
        size = project.config.pool_size
        if len(ws.pool(project)) >= size and lock.exists():
            with lock.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
        time.sleep(0.1)


def _drop(repo: Path, path: Path) -> None:
    """Delete a measured worktree, and flush the disk: the next measurement must not pay for
    writing back this one's deletion."""
    shutil.rmtree(path, ignore_errors=True)
    _git(repo, "worktree", "prune")
    os.sync()


def _new_session(ws: Workspace, project: Project, title: str) -> tuple[float, Path]:
    started = time.perf_counter()
    session = ws.new_session(project, title=title)
    return time.perf_counter() - started, Path(session.worktree)


def measure(repo: Path, base: Path, runs: int) -> dict[str, list[float]]:
    """Alternating runs of the three ways to get a worktree (see the module)."""
    times: dict[str, list[float]] = {"plain": [], "parallel": [], "cold": [], "warm": []}
    cold_ws = Workspace(home=base / "home-cold", pool=False)
    warm_ws = Workspace(home=base / "home-warm", pool=True)
    try:
        cold_project = cold_ws.add_project(repo, name="cold")
        warm_project = warm_ws.add_project(repo, name="warm")
        _wait_for_refiller(warm_ws, warm_project)
        for i in range(runs):
            plain = base / f"plain-{i}"
            steps = [
                lambda p=plain, n=i: _plain(repo, p, f"plain-{n}", times["plain"]),
                lambda p=plain, n=i: _plain(repo, p, f"parallel-{n}", times["parallel"]),
                lambda n=i: _cold(cold_ws, cold_project, repo, n, times),
            ]
            for step in steps[i % 3 :] + steps[: i % 3]:  # none always goes first
                step()
            elapsed, worktree = _new_session(warm_ws, warm_project, f"warm {i}")
            times["warm"].append(elapsed)
            _drop(repo, worktree)
            # the refill the claim started runs now, outside every timing (it would slow the
            # next measurements down: two checkouts at once on two cores)
            _wait_for_refiller(warm_ws, warm_project)
    finally:
        cold_ws.close()
        warm_ws.close()
    return times


def _plain(repo: Path, path: Path, branch: str, times: list[float]) -> None:
    """`git worktree add` as a user types it; `parallel-*`: with the parallel checkout our own
    git calls use (`-c checkout.workers=0`), to show what Branchwork itself adds."""
    config = ["-c", "checkout.workers=0"] if branch.startswith("parallel") else []
    args = (*config, "worktree", "add", "-q", "-b", branch, str(path), "main")
    times.append(_timed(lambda: _git(repo, *args)))
    _drop(repo, path)


def _cold(
    ws: Workspace, project: Project, repo: Path, n: int, times: dict[str, list[float]]
) -> None:
    elapsed, worktree = _new_session(ws, project, f"cold {n}")
    times["cold"].append(elapsed)
    _drop(repo, worktree)


def report(name: str, times: dict[str, list[float]]) -> None:
    plain, parallel, cold, warm = (
        statistics.median(times[k]) for k in ("plain", "parallel", "cold", "warm")
    )
    print(f"{name}: {len(times['plain'])} runs each (medians)")
    print(f"  git worktree add -b       {plain * 1000:9.1f} ms")
    print(f"  the same, checkout.workers=0 {parallel * 1000:6.1f} ms   (session new, no pool: "
          f"{cold / parallel:.2f}x this)")  # fmt: skip
    print(
        f"  session new, no pool      {cold * 1000:9.1f} ms   {cold / plain:5.2f}x the baseline "
        f"(goal <= 1.2x: {'met' if cold <= 1.2 * plain else 'NOT MET'})"
    )
    print(
        f"  session new, warm pool    {warm * 1000:9.1f} ms   {plain / warm:5.1f}x faster "
        f"(goal >= 10x: {'met' if plain >= 10 * warm else 'NOT MET'})"
    )
    print(f"  all runs (ms): plain {_ms(times['plain'])} parallel {_ms(times['parallel'])} "
          f"cold {_ms(times['cold'])} warm {_ms(times['warm'])}", flush=True)  # fmt: skip


def _ms(values: list[float]) -> str:
    return "[" + ", ".join(f"{v * 1000:.0f}" for v in values) + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwork-bench"))
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["django", "synthetic"], default=None)
    args = parser.parse_args()
    django = args.cache_dir / "django-5.2.8"
    if args.only != "synthetic" and not (django / ".git").exists():
        print(f"no Django repository in {args.cache_dir}: run bench/index.py", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bw-start-bench-") as tmp:
        base = Path(tmp)
        if args.only != "synthetic":
            repo = local_clone(django, base / "django" / "repo")
            report("Django 5.2.8 (6,890 files)", measure(repo, base / "django", args.runs))
        if args.only != "django":
            repo = synthetic_repo(base / "synthetic" / "repo", args.files)
            label = f"synthetic ({args.files:,} files)"
            report(label, measure(repo, base / "synthetic", args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
