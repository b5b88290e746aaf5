"""Time to answer of the embedded model for the demo request, whole process.

    .venv/bin/python bench/embedded.py [--runs N]

`branchwork ask --mode autopilot "List the files in this project."` with the default model
(SmolLM2-135M, llama-cpp-python, 2 cores) in the demo's project, no step cap, against the same
process doing the least a turn needs: start Python, load the model and generate one short
completion (`BASELINE`). Also checks that the answer names the files. Goal: under a minute.
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

from _repos import git_repo  # bench/_repos.py

BIN = Path(sys.executable).parent
REQUEST = "List the files in this project."
BASELINE = """
from branchwork.providers import resolve_model
from branchwork.domain.messages import ModelRequest, UserTurn
model = resolve_model("local:smollm2")
for _ in model.stream(ModelRequest(messages=[UserTurn(text="Say hello.")], max_tokens=16)):
    pass
"""


DEMO = {
    "greet.py": 'def greet(name):\n    return "Hello, " + name\n',
    "README.md": "# greeter\nA tiny program that greets people.\n",
}


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done.stdout


def answer_of(log: str) -> str:
    messages = [json.loads(line) for line in log.splitlines()]
    return str(messages[-1]["payload"]["text"]) if messages else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bw = str(BIN / "branchwork")
    with tempfile.TemporaryDirectory(prefix="bw-embedded-bench-") as tmp:
        repo = git_repo(Path(tmp) / "greeter", DEMO)
        env = {**os.environ, "BRANCHWORK_HOME": str(Path(tmp) / "home")}
        subprocess.run([bw, "project", "add", "."], cwd=repo, env=env, check=True)
        ours, base, named = [], [], 0
        for _ in range(args.runs):
            seconds, _ = timed([bw, "ask", "--new", "--mode", "autopilot", REQUEST], repo, env)
            ours.append(seconds)
            log = [bw, "log", "--json", "--kind", "agent_message"]
            answer = answer_of(timed(log, repo, env)[1])
            named += "README.md" in answer and "greet.py" in answer
            base.append(timed([sys.executable, "-c", BASELINE], repo, env)[0])
        mine, theirs = statistics.median(ours), statistics.median(base)
        print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, {args.runs} runs")
        print(
            f"ask {REQUEST!r}: median {mine:.1f} s (min {min(ours):.1f}, max {max(ours):.1f}) "
            f"vs load + one short completion {theirs:.1f} s -> {mine / theirs:.1f}x; "
            f"answers naming both files: {named}/{args.runs}; "
            f"goal < 60 s: {'met' if max(ours) < 60 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
