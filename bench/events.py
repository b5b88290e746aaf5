"""The event log: appends through the recorder, `log --json` of a long session, reopen + resume.

    .venv/bin/python bench/events.py [--events N] [--runs N]

Each figure is a median of several runs with its baseline measured in the same run:
- appends: events recorded through the recorder (redaction on, a project secret configured;
  batches of 1, and of 10 as one agent step records them) against raw `sqlite3` `executemany`
  of the same rows, same batches, same pragmas (goal: at least 0.5x the raw throughput);
- `branchwork log --json` of a session of N (default 100,000) events against the `sqlite3`
  CLI's `-json` export of the same rows, whole processes, with the peak memory of each
  (goal: at most 3x, memory bounded: the peak stays flat from N/10 to N events);
- reopening that session in a new process and taking one agent turn with the scripted model
  (the state folded, the conversation rebuilt from its tail and compacted, as it no longer
  fits the window) against starting Python and importing `branchwork` (goal: under 1 s).
Needs the `sqlite3` command and GNU `time` (Debian packages sqlite3 and time).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _repos import git_repo  # bench/_repos.py
from _warm import warm_env  # bench/_warm.py

from branchwork import Workspace
from branchwork.domain.events import (
    AgentMessage,
    CommandOutput,
    Note,
    ToolCall,
    ToolResult,
    UserMessage,
)
from branchwork.store import Store

BIN = Path(sys.executable).parent
SECRET = "bench-secret-value-7f3a"


def step_payloads(n: int) -> list[object]:
    """What one agent step records: the model's answer and call, the tool's output and result."""
    return [
        AgentMessage(text=f"Let me look at step {n}."),
        ToolCall(call_id=f"c{n}", name="run_command", arguments={"command": "pytest -q"}),
        CommandOutput(command_id=f"c{n}", text="." * 300 + f" {n} passed\n"),
        ToolResult(call_id=f"c{n}", name="run_command", output="status: ok\n" + "." * 300),
        UserMessage(text=f"and now step {n + 1}"),
    ] * 2


def bench_appends(ws: Workspace, base: Path, events: int, runs: int) -> None:
    recorder = ws._services.recorder  # the one door to the log: what every use case goes through
    project = ws.projects()[0]
    ws.set_env(project, "API_TOKEN", SECRET, secret=True)
    for batch in (1, 10):
        ours, raw = [], []
        for run in range(runs):
            session = ws.new_session(project, title=f"appends {batch}-{run}", current=False)
            payloads = [p for n in range(events // 10) for p in step_payloads(n)][:events]
            items = [(p, "agent") for p in payloads]
            started = time.perf_counter()
            for i in range(0, len(items), batch):
                recorder.record_many(session, items[i : i + batch])  # type: ignore[arg-type]
            ours.append(time.perf_counter() - started)
            raw.append(raw_appends(base / f"raw-{batch}-{run}.db", ws, session.id, batch))
        mine, theirs = statistics.median(ours), statistics.median(raw)
        ratio = theirs / mine
        print(
            f"appends, batches of {batch:2}: {events / mine:8.0f} events/s through the recorder, "
            f"{events / theirs:8.0f} events/s raw executemany -> {ratio:.2f}x "
            f"(goal >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})"
        )


def raw_appends(path: Path, ws: Workspace, session_id: str, batch: int) -> float:
    """The same rows, copied from the store, inserted by raw sqlite3 into a copy of its
    schema with the same pragmas, `batch` rows per transaction."""
    source = sqlite3.connect(ws.settings.home / "branchwork.db")
    rows = source.execute(
        "SELECT id, session_id, seq, kind, ts, actor, schema_version, payload FROM events "
        "WHERE session_id = ? ORDER BY seq",
        (session_id,),
    ).fetchall()
    schema = source.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
    ).fetchall()
    source.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for (statement,) in schema:  # the table and its indexes, without the sessions foreign key
        db.execute(re.sub(r",\s*FOREIGN KEY\([^)]*\) REFERENCES \w+ \(\w+\)", "", statement))
    insert = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows[i : i + batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def seed(ws: Workspace, events: int) -> str:
    project = ws.projects()[0]
    session = ws.new_session(project, title="long", current=True)
    store = Store.open(ws.settings.resolved_database_url)
    n = 0
    while store.last_seq(session.id) < events:
        batch = [(p, "agent") for p in step_payloads(n)] * 50
        store.append(session.id, batch)  # type: ignore[arg-type]
        n += 1
    store.append(session.id, [(Note(text="end of the seeded history"), "system")])
    store.close()
    return session.id


def child_run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process. The peak is measured by GNU
    time around it: a child forked from this (large) process would otherwise count this
    process's memory at the fork as its own peak."""
    with tempfile.NamedTemporaryFile("r") as peak:
        command = ["/usr/bin/time", "-f", "%M", "-o", peak.name, *argv]
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
        elapsed = time.perf_counter() - started
        return elapsed, int(peak.read().split()[-1])


def paired(ours: list[str], theirs: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Median seconds of ours and of the baseline, run alternately; the peak RSS of ours."""
    mine, base, peaks = [], [], []
    for _ in range(runs):
        seconds, peak = child_run(ours, env)
        mine.append(seconds)
        peaks.append(peak)
        base.append(child_run(theirs, env)[0])
    return [statistics.median(mine), statistics.median(base), max(peaks)]


def bench_log(ws: Workspace, session_id: str, env: dict[str, str], runs: int, goal: bool) -> None:
    """Timed as by default (a warm process runs it) and on its own (`BRANCHWORK_WARM=0`): the
    peak memory is that of the process doing the work, which is visible on its own only."""
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        print("log --json: skipped, the sqlite3 command is missing (apt-get install sqlite3)")
        return
    db = str(ws.settings.home / "branchwork.db")
    export = [sqlite, "-json", db, f"SELECT * FROM events WHERE session_id = '{session_id}'"]
    log = [str(BIN / "branchwork"), "log", session_id, "--json"]
    with warm_env(env, log[0], Path.cwd()) as warm:
        mine, theirs, _ = paired(log, export, warm, runs)
    alone, theirs_alone, peak = paired(log, export, env, runs)
    ratio = mine / theirs  # as by default: in a warm process
    verdict = f" (goal <= 3x: {'met' if ratio <= 3 else 'NOT met'})" if goal else ""
    print(
        f"log --json (default: warm) {mine:.2f} s vs sqlite3 -json export {theirs:.2f} s "
        f"-> {ratio:.2f}x{verdict}; on its own (BRANCHWORK_WARM=0) {alone:.2f} s vs "
        f"{theirs_alone:.2f} s -> {alone / theirs_alone:.2f}x, peak RSS {peak / 1024:.0f} MiB"
    )


RESUME = """
import sys
from branchwork import Workspace
from branchwork.providers import ScriptedModel
with Workspace() as ws:
    # a long conversation is compacted first: the model summarises, then answers
    model = ScriptedModel(["SUMMARY: a long history of steps.", "done"])
    result = ws.send_message(sys.argv[1], "continue", model=model)
    assert result.status == "completed", result
"""


def bench_resume(session_id: str, env: dict[str, str], runs: int) -> None:
    python = [sys.executable, "-c", "import branchwork; branchwork.Workspace"]
    mine, theirs, peak = paired([sys.executable, "-c", RESUME, session_id], python, env, runs)
    print(
        f"reopen + one agent turn in the long session: {mine:.2f} s (goal < 1 s: "
        f"{'met' if mine < 1 else 'NOT met'}) vs python + import branchwork {theirs:.2f} s; "
        f"peak RSS {peak / 1024:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # No pool: its refiller would check out worktrees in the background during the appends.
    os.environ["BRANCHWORK_POOL"] = "false"
    with tempfile.TemporaryDirectory(prefix="bw-events-bench-") as tmp:
        base = Path(tmp)
        # Commands on their own (BRANCHWORK_WARM=0) unless a figure says so (docs/cli-warm.md).
        env = {**os.environ, "BRANCHWORK_HOME": str(base / "home"), "BRANCHWORK_WARM": "0"}
        print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
        with Workspace(home=base / "home") as ws:
            ws.add_project(git_repo(base / "repo", {"app.py": "print('hi')\n"}))
            bench_appends(ws, base, args.appends, args.runs)
            short = seed(ws, args.events // 10)
            long = seed(ws, args.events)
        bench_log_sizes(ws, short, long, env, args.runs)
        bench_resume(long, env, args.runs)


def bench_log_sizes(ws: Workspace, short: str, long: str, env: dict[str, str], runs: int) -> None:
    for session_id in (short, long):
        print(f"{len_of(ws, session_id):,} events:", end=" ")
        bench_log(ws, session_id, env, runs, goal=session_id == long)


def len_of(ws: Workspace, session_id: str) -> int:
    store = Store.open(ws.settings.resolved_database_url)
    try:
        return store.last_seq(session_id)
    finally:
        store.close()


if __name__ == "__main__":
    main()
