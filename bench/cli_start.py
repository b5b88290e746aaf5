"""Start-up of CLI commands, whole process, against baselines measured in the same run.

    .venv/bin/python bench/cli_start.py [--cache-dir DIR] [--runs N] [--sessions N]

On the Django 5.2.8 sdist, git-initialised as `bench/index.py` does (downloaded once). Every
figure is the median of N runs, the command and its baseline alternating:
- `branchwork --help` against `python -c pass` (goal: under 0.2 s);
- `branchwork session list` against `git status` in the checkout (goal: at most 3x);
- `branchwork search --project django IDENT` for 10 identifiers of different frequency against
  `git grep -n IDENT` (goal: at most 2x, the median of the ten ratios); the main branch is
  indexed beforehand, as a user would with `branchwork index`.
For information: the start-up of the stack alone (Python + Typer + Rich + one pydantic model,
`FLOOR`), `branchwork --version`, `log --json` of a short session, and a search inside a
session (its cost is the session snapshot, the subject of the speed issue).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from index import prepare_repo  # bench/index.py: the Django checkout

BIN = Path(sys.executable).parent
# What every command of a Typer + Rich + pydantic CLI pays before doing anything of its own.
FLOOR = (
    "import typer, rich.console, rich.table\n"
    "from pydantic import BaseModel\n"
    "class M(BaseModel):\n    x: int\n"
    "M(x=1)\n"
)
IDENTIFIERS = [
    "QuerySet",  # thousands of hits
    "ValidationError",
    "select_related",
    "get_object_or_404",
    "cached_property",
    "ImproperlyConfigured",
    "format_html",
    "JsonResponse",
    "SuspiciousOperation",
    "MiddlewareMixin",  # a few dozen
]


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def paired(
    ours: list[str], baseline: list[str], cwd: Path, env: dict[str, str], runs: int
) -> tuple[float, float]:
    """Median seconds of `ours` and of `baseline`, run alternately after one warm-up each."""
    run_once(ours, cwd, env)
    run_once(baseline, cwd, env)
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(run_once(ours, cwd, env))
        theirs.append(run_once(baseline, cwd, env))
    return statistics.median(mine), statistics.median(theirs)


def show(label: str, mine: float, theirs: float, baseline: str, goal: str = "") -> float:
    ratio = mine / theirs
    print(
        f"{label:34} {mine * 1000:7.0f} ms   {baseline:22} {theirs * 1000:6.0f} ms "
        f"{ratio:6.2f}x  {goal}"
    )
    return ratio


def setup(repo: Path, env: dict[str, str], sessions: int) -> None:
    bw = str(BIN / "branchwork")
    run_once([bw, "project", "add", ".", "--name", "django"], repo, env)
    run_once([bw, "index", "django"], repo, env)
    for n in range(sessions):
        run_once([bw, "session", "new", "--title", f"bench {n}", "--no-switch"], repo, env)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwork-bench"))
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--sessions", type=int, default=3)
    args = parser.parse_args()
    repo = prepare_repo(args.cache_dir)
    bw, runs = str(BIN / "branchwork"), args.runs
    python, status = [sys.executable, "-c", "pass"], ["git", "status"]
    with tempfile.TemporaryDirectory(prefix="bw-cli-bench-") as home:
        env = {**os.environ, "BRANCHWORK_HOME": home, "COLUMNS": "120"}
        setup(repo, env, args.sessions)
        load = os.getloadavg()[0]
        print(f"{repo.name}: {args.sessions} sessions, median of {runs} runs, load {load:.2f}")
        helped = paired([bw, "--help"], python, repo, env, runs)
        show(
            "branchwork --help",
            *helped,
            "python -c pass",
            f"goal < 0.2 s: {verdict(helped[0] < 0.2)}",
        )
        version = paired([bw, "--version"], python, repo, env, runs)
        show("branchwork --version", *version, "python -c pass")
        floor = paired([sys.executable, "-c", FLOOR], status, repo, env, runs)
        show("the stack alone (see FLOOR)", *floor, "git status")
        listed = paired([bw, "session", "list"], status, repo, env, runs)
        ratio = show("branchwork session list", *listed, "git status")
        print(f"  goal <= 3x git status: {verdict(ratio <= 3)}")
        ratios = []
        for ident in IDENTIFIERS:
            ours = [bw, "search", "--project", "django", ident]
            mine, theirs = paired(ours, ["git", "grep", "-n", ident], repo, env, runs)
            ratios.append(show(f"search {ident}", mine, theirs, "git grep -n"))
        ratio = statistics.median(ratios)
        print(
            f"  search: median ratio {ratio:.2f}x (min {min(ratios):.2f}x, "
            f"max {max(ratios):.2f}x), goal <= 2x: {verdict(ratio <= 2)}"
        )
        grep = ["git", "grep", "-n", "QuerySet"]
        inside = paired([bw, "search", "QuerySet"], grep, repo, env, max(3, runs // 2))
        show("search inside a session", *inside, "git grep -n")
        logged = paired([bw, "log", "--json"], status, repo, env, runs)
        show("log --json (a new session)", *logged, "git status")


if __name__ == "__main__":
    main()
