"""What the fault suite shares: the seed, the CLI in a subprocess, killing what it starts,
reading the log exactly as stored (without the recovery a `Workspace` read does), git, and the
durability checks that hold for every session whatever happened to its processes.

Environment:
- `BRANCHWORK_FAULT_SEED`: the seed of every random choice (default `DEFAULT_SEED`); each
  failure message names it, so that a failing run can be replayed.
- `BRANCHWORK_FAULT_SECONDS`: how long each concurrency test hammers (default 30).
- `BRANCHWORK_FAULT_REPORT`: a file to which each test appends its figures as one JSON line
  (they are printed too; `pytest -s` shows them).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from branchwork.store import Store
from tests.sandbox.procs import running_in_group

BIN = Path(sys.executable).parent
DEFAULT_SEED = 20240611
SEED_ENV = "BRANCHWORK_FAULT_SEED"
SECONDS_ENV = "BRANCHWORK_FAULT_SECONDS"
REPORT_ENV = "BRANCHWORK_FAULT_REPORT"
# Read once, at import: the suite's autouse fixture removes every BRANCHWORK_* variable from
# the environment of each test.
_GIVEN = {name: os.environ.get(name, "") for name in (SEED_ENV, SECONDS_ENV, REPORT_ENV)}


def fault_seed() -> int:
    return int(_GIVEN[SEED_ENV] or DEFAULT_SEED)


def rng_for(name: str) -> random.Random:
    """The random source of one test: the run's seed and the test's name."""
    return random.Random(f"{fault_seed()}:{name}")


def replay_hint() -> str:
    return f"seed {fault_seed()} (replay: {SEED_ENV}={fault_seed()} pytest tests/fault)"


def fault_seconds(default: float = 30.0) -> float:
    return float(_GIVEN[SECONDS_ENV] or default)


def report_figures(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures and append them to `$BRANCHWORK_FAULT_REPORT` when set."""
    line = json.dumps({"test": name, "seed": fault_seed(), **figures}, sort_keys=True)
    print(f"\nfault figures: {line}")
    target = _GIVEN[REPORT_ENV]
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


# -- processes ---------------------------------------------------------------------------------


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHWORK_")}
    env.update(
        BRANCHWORK_HOME=str(home),
        PATH=f"{BIN}:{os.environ['PATH']}",
        COLUMNS="200",
        **extra,
    )
    return env


def spawn(
    args: list[str], *, home: Path, cwd: Path, stdin: Path | None = None
) -> subprocess.Popen[bytes]:
    """`branchwork ARGS` as the leader of its own process group (so that the group, git
    children included, can be killed at once); stdout discarded, stderr kept."""
    with open(stdin or os.devnull, "rb") as source:
        return subprocess.Popen(
            [str(BIN / "branchwork"), *args],
            cwd=cwd,
            env=cli_env(home),
            stdin=source,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )


def run_cli(
    args: list[str],
    *,
    home: Path,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "branchwork"), *args],
        cwd=cwd,
        env=cli_env(home),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sigkill(proc: subprocess.Popen[bytes], *, group: bool) -> str:
    """SIGKILL the process (or its whole group: git children too), reap it, and wait until no
    process of its group runs any more (a killed process's children may outlive it for a
    moment, and SIGKILL is asynchronous). Returns its stderr."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    wait_for(lambda: not running_in_group(proc.pid), 30, f"process group {proc.pid} to end")
    return err.decode("utf-8", "replace")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """For `finally`: whatever happened, nothing we started keeps running or keeps a pipe."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# -- the log as stored, and git ----------------------------------------------------------------


class RawLog:
    """The store opened by this process, read as stored: no recovery is triggered."""

    def __init__(self, url: str) -> None:
        self._store = Store.open(url)

    def close(self) -> None:
        self._store.close()

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return list(self._store.iter_event_dicts(session_id))

    def last_seq(self, session_id: str) -> int:
        return self._store.last_seq(session_id)

    def lease(self, session_id: str) -> dict[str, Any] | None:
        return self._store.get_lease(session_id)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {out.stderr.strip()}")
    return out.stdout


def show_at(cwd: Path, commit: str, path: str) -> str | None:
    """The content of `path` in `commit`, None when it is not there."""
    out = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=cwd, capture_output=True, check=False
    )
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def read_ref(repo: Path, branch: str) -> str:
    """The branch's commit, read from its loose ref file (cheap enough to poll)."""
    try:
        return (repo / ".git" / "refs" / "heads" / branch).read_text().strip()
    except FileNotFoundError:
        return ""


# -- durability checks on a log -----------------------------------------------------------------


def payloads(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in events if e["kind"] == kind]


def log_problems(events: list[dict[str, Any]], *, closed: bool) -> list[str]:
    """What is wrong with a session's log: seqs not exactly 1..N, ids not unique; and, when
    `closed` (after the next operation ran), a turn without its end, a tool call without its
    result, a command neither finished nor interrupted."""
    problems = []
    seqs = [e["seq"] for e in events]
    if seqs != list(range(1, len(events) + 1)):
        problems.append(f"seqs are not 1..{len(events)}: {_seq_defects(seqs)}")
    ids = Counter(e["id"] for e in events)
    if len(ids) != len(events):
        problems.append(f"duplicate event ids: {[i for i, n in ids.items() if n > 1]}")
    if not closed:
        return problems
    started = {p["turn_id"] for p in payloads(events, "turn_started")}
    finished = Counter(p["turn_id"] for p in payloads(events, "turn_finished"))
    if open_turns := started - set(finished):
        problems.append(f"turns without turn_finished: {sorted(open_turns)}")
    if twice := [t for t, n in finished.items() if n > 1]:
        problems.append(f"turns finished twice: {twice}")
    calls = {(p.get("turn_id"), p["call_id"]) for p in payloads(events, "tool_call")}
    results = Counter((p.get("turn_id"), p["call_id"]) for p in payloads(events, "tool_result"))
    if unanswered := calls - set(results):
        problems.append(f"tool calls without a tool_result: {sorted(unanswered)}")
    if answered_twice := [c for c, n in results.items() if n > 1]:
        problems.append(f"tool calls with several results: {answered_twice}")
    commands = {p["command_id"] for p in payloads(events, "command_started")}
    ended = {p["command_id"] for p in payloads(events, "command_finished")}
    ended |= {p["call_id"] for p in payloads(events, "interrupted") if p.get("call_id")}
    if still_open := commands - ended:
        problems.append(f"commands neither finished nor interrupted: {sorted(still_open)}")
    return problems


def _seq_defects(seqs: list[int]) -> str:
    expected = set(range(1, len(seqs) + 1))
    repeated = [s for s, n in Counter(seqs).items() if n > 1]
    return f"missing {sorted(expected - set(seqs))[:10]}, repeated {repeated[:10]}"


def open_turns(events: list[dict[str, Any]]) -> set[str]:
    started = {p["turn_id"] for p in payloads(events, "turn_started")}
    return started - {p["turn_id"] for p in payloads(events, "turn_finished")}
