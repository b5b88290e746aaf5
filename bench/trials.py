"""Four trials of one task side by side against the same four attempts run one after another.

    .venv/bin/python bench/trials.py [--runs N] [--trials 4]

Each attempt is the same scripted turn (the model answers at once, so model time is excluded):
read a file, write two, run a small Python check, answer. Measured as whole commands, as a
user runs them:
- side by side: `branchwork trial start 1 --n 4` (creates the four sessions from one base and
  runs them, at most `concurrent_turns` = 4 at once, until all are done);
- one after another (the baseline): four times `branchwork ask --task 1 …` (each creates its
  trial's session and runs its turn in the foreground).
Both create the same sessions and record the same events. The goal: side by side takes at
most 1.10x the sequential time on 2 cores (an overhead under 10%). Every figure is the median
of N runs, the two alternating, each in a fresh data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repos import git_repo

BIN = Path(sys.executable).parent / "branchwork"
FILES = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "check.py": "import calc\nassert calc.add(2, 2) == 4\nprint('ok')\n",
    ".gitignore": "__pycache__/\n",
}
SCRIPT = [
    {"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]},
    {
        "tool_calls": [
            {
                "name": "write_file",
                "arguments": {"path": "calc.py", "content": "def add(a, b):\n    return a + b\n"},
            }
        ]
    },
    {
        "tool_calls": [
            {"name": "write_file", "arguments": {"path": "NOTES.md", "content": "fixed\n"}}
        ]
    },
    {"tool_calls": [{"name": "run_command", "arguments": {"command": "python3 check.py"}}]},
    "Fixed the sign; the check passes.",
]


def bw(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"branchwork {args} failed: {proc.stderr.decode()[-800:]}")


def fresh(root: Path, n: int) -> tuple[Path, dict[str, str], str]:
    """A repository registered in a new data dir, with one task; the model spec to use."""
    repo = git_repo(root / "repo", FILES)
    script = root / "script.json"
    script.write_text(json.dumps(SCRIPT))
    env = {**os.environ, "BRANCHWORK_HOME": str(root / "home"), "COLUMNS": "200"}
    bw(["project", "add", "."], repo, env)
    bw(["project", "config", "--concurrent-turns", str(n)], repo, env)
    bw(["task", "new", "Fix add", "--check", "python3 check.py"], repo, env)
    return repo, env, f"scripted:{script}"


def side_by_side(root: Path, n: int) -> float:
    repo, env, model = fresh(root, n)
    started = time.perf_counter()
    bw(["trial", "start", "1", "--n", str(n), "-m", model], repo, env)
    return time.perf_counter() - started


def sequential(root: Path, n: int) -> float:
    repo, env, model = fresh(root, n)
    started = time.perf_counter()
    for _ in range(n):
        bw(["ask", "--task", "1", "-m", model, "--mode", "autopilot", "Fix add"], repo, env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    parallel, serial = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            parallel.append(side_by_side(Path(a), args.trials))
            serial.append(sequential(Path(b), args.trials))
        print(f"run {i + 1}: side by side {parallel[-1]:.2f} s, sequential {serial[-1]:.2f} s")
    p, s = statistics.median(parallel), statistics.median(serial)
    ratio = p / s
    print(f"{args.trials} trials side by side: median {p:.2f} s")
    print(f"{args.trials} attempts one after another: median {s:.2f} s")
    print(
        f"side by side / sequential: {ratio:.2f}x (goal: at most 1.10x) -> "
        f"{'met' if ratio <= 1.10 else 'not met'}"
    )
    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
