"""Start-up of CLI commands, whole process, against baselines measured in the same run.

    .venv/bin/python bench/cli_start.py [--cache-dir DIR] [--runs N] [--sessions N]

On the Django 5.2.8 sdist, git-initialised as `bench/index.py` does (downloaded once). The
figures are taken twice: as by default, a warm process running the commands (the bench starts
its own in a private runtime dir and stops it at the end), and with `BRANCHWORK_WARM=0`, each
command importing the CLI in its own process (as the first command after an idle spell does).
Every figure is the median of N runs, the command and its baseline alternating:
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

from _warm import stop_warm, wait_for_warm  # bench/_warm.py

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


def figures(repo: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """The goal figures for one way of running commands (warm, or each on its own)."""
    bw, python, status = str(BIN / "branchwork"), [sys.executable, "-c", "pass"], ["git", "status"]
    helped = paired([bw, "--help"], python, repo, env, runs)
    show(
        "branchwork --help", *helped, "python -c pass", f"goal < 0.2 s: {verdict(helped[0] < 0.2)}"
    )
    show(
        "branchwork --version",
        *paired([bw, "--version"], python, repo, env, runs),
        "python -c pass",
    )
    listed = show(
        "branchwork session list",
        *paired([bw, "session", "list"], status, repo, env, runs),
        "git status",
    )
    print(f"  goal <= 3x git status: {verdict(listed <= 3)}")
    ratios = []
    for ident in IDENTIFIERS:
        ours = [bw, "search", "--project", "django", ident]
        mine, theirs = paired(ours, ["git", "grep", "-n", ident], repo, env, runs)
        ratios.append(show(f"search {ident}", mine, theirs, "git grep -n"))
    searched = statistics.median(ratios)
    print(
        f"  search: median ratio {searched:.2f}x (min {min(ratios):.2f}x, "
        f"max {max(ratios):.2f}x), goal <= 2x: {verdict(searched <= 2)}"
    )
    grep = ["git", "grep", "-n", "QuerySet"]
    inside = paired([bw, "search", "QuerySet"], grep, repo, env, max(3, runs // 2))
    show("search inside a session", *inside, "git grep -n")
    show(
        "log --json (a new session)",
        *paired([bw, "log", "--json"], status, repo, env, runs),
        "git status",
    )
    return {"help": helped[0], "list": listed, "search": searched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwork-bench"))
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--sessions", type=int, default=3)
    args = parser.parse_args()
    repo = prepare_repo(args.cache_dir)
    runs = args.runs
    with (
        tempfile.TemporaryDirectory(prefix="bw-cli-bench-") as home,
        tempfile.TemporaryDirectory(prefix="bw-rt-") as runtime,
    ):
        base = {**os.environ, "BRANCHWORK_HOME": home, "COLUMNS": "120"}
        cold = {**base, "BRANCHWORK_WARM": "0"}
        warm = {**base, "BRANCHWORK_WARM": "1", "XDG_RUNTIME_DIR": runtime}
        setup(repo, cold, args.sessions)
        wait_for_refills()  # the pool's refiller checks out Django in the background
        load = os.getloadavg()[0]
        print(f"{repo.name}: {args.sessions} sessions, median of {runs} runs, load {load:.2f}")
        floor = paired([sys.executable, "-c", FLOOR], ["git", "status"], repo, base, runs)
        show("the stack alone (see FLOOR)", *floor, "git status")
        try:
            first = run_once([str(BIN / "branchwork"), "session", "list"], repo, warm)
            print(f"first command, no warm process yet: {first * 1000:.0f} ms (it starts one)")
            wait_for_warm(Path(runtime))
            print("\n-- the default: a warm process runs each command (docs/cli-warm.md)")
            figures(repo, warm, runs)
        finally:
            stop_warm(Path(runtime))
        print("\n-- BRANCHWORK_WARM=0: each command imports the CLI in its own process")
        figures(repo, cold, runs)


def wait_for_refills() -> None:
    """Until no pool refiller runs (each checks out a worktree: seconds of CPU)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", "branchwork.service.refiller"], capture_output=True)
        if found.returncode != 0:
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
