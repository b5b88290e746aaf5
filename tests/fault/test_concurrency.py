"""Eight processes at once, through the Python API: on one session, and on eight sessions.

Each process (`_hammer.py`) writes new files, runs commands that write files, edits and reads
them, in a loop, for `BRANCHWORK_FAULT_SECONDS` (default 30) seconds, and reports what it was
told succeeded and what failed (with the error). Then, from the outside: every reported success
is in the log (its `file_written`, `command_finished` or `file_read` event) and in git (the file,
with the content it must have, at the branch tip, which is the head the history records);
nothing reported failed happened all the same; the seqs are 1..N; the worktree holds nothing
uncommitted; no error mentions a locked database, and none was a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from branchwork import Workspace
from tests.fault._support import (
    RawLog,
    fault_seconds,
    git,
    log_problems,
    payloads,
    replay_hint,
    report_figures,
    wait_for,
)

PROCESSES = 8
HAMMER = Path(__file__).with_name("_hammer.py")


def _hammer(ws: Workspace, sessions: list[str], tmp_path: Path) -> list[dict[str, Any]]:
    """Run the processes (process i on sessions[i % len]) and return their reports."""
    gate = tmp_path / "gate"
    gate.mkdir()
    seconds = fault_seconds()
    procs = []
    try:
        for i in range(PROCESSES):
            args = [str(ws.settings.home), str(gate), f"p{i}", str(seconds)]
            args += [str(tmp_path / f"p{i}.json"), sessions[i % len(sessions)]]
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HAMMER), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        wait_for(
            lambda: len(list(gate.iterdir())) == PROCESSES or any(p.poll() for p in procs),
            120,
            "every process to be ready",
        )
        (gate / "go").touch()
        outputs = [p.communicate(timeout=seconds + 300) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                p.communicate(timeout=30)
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and "Traceback" not in err, err
    return [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(PROCESSES)]


def _contents_at(cwd: Path, commit: str, paths: list[str]) -> dict[str, str | None]:
    """The content of each path in `commit` (None when absent), in one `git cat-file`."""
    query = "".join(f"{commit}:{p}\n" for p in paths).encode()
    out = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=cwd, input=query, capture_output=True, check=True
    ).stdout
    found: dict[str, str | None] = {}
    at = 0
    for path in paths:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if header[-1] == b"missing":
            found[path] = None
            continue
        size = int(header[2])
        found[path] = out[at : at + size].decode("utf-8", "replace")
        at += size + 1
    return found


class Verdict:
    """Every reported operation checked against the log and git of its session."""

    def __init__(self, ws: Workspace, log: RawLog) -> None:
        self.ws = ws
        self.log = log
        self.figures: Counter[str] = Counter()
        self.problems: list[str] = []
        self.errors: Counter[str] = Counter()

    def check_session(self, session_id: str, ops: list[dict[str, Any]]) -> None:
        events = self.log.events(session_id)
        self.problems += [f"{session_id}: {p}" for p in log_problems(events, closed=True)]
        details = self.ws.session_details(session_id)
        worktree = Path(details.session.worktree)
        tip = git(worktree, "rev-parse", f"refs/heads/{details.session.branch}").strip()
        if tip != details.state.head:
            self.problems.append(f"{session_id}: branch at {tip}, history at {details.state.head}")
        if status := git(worktree, "status", "--porcelain", "--untracked-files=all"):
            self.problems.append(f"{session_id}: uncommitted at the end: {status[:500]}")
        written = Counter((p["path"], p["operation"]) for p in payloads(events, "file_written"))
        read = Counter(p["path"] for p in payloads(events, "file_read"))
        finished = {p["command_id"]: p["status"] for p in payloads(events, "command_finished")}
        started = {p["command"]: p["command_id"] for p in payloads(events, "command_started")}
        final = self._final_contents(ops)
        at_tip = _contents_at(worktree, tip, sorted(final))
        self.figures["events"] += len(events)
        for op in ops:
            self.figures["operations"] += 1
            self.figures[f"{op['op']} operations"] += 1
            facts = (op, written, read, finished, started)
            if op["ok"]:
                self._success(*facts, at_tip, final)
            else:
                self._failure(*facts)

    @staticmethod
    def _final_contents(ops: list[dict[str, Any]]) -> dict[str, str]:
        """What each file written or edited (successfully) must hold in the end."""
        final = {}
        for op in ops:
            if op["ok"] and op["op"] in ("write", "edit", "run"):
                final[op["path"]] = op["content"]
        return final

    def _success(
        self,
        op: dict[str, Any],
        written: Counter[tuple[str, str]],
        read: Counter[str],
        finished: dict[str, str],
        started: dict[str, str],
        at_tip: dict[str, str | None],
        final: dict[str, str],
    ) -> None:
        kind, path = op["op"], op["path"]
        in_log = {
            "write": written[path, "write"] == 1,
            "edit": written[path, "edit"] == 1,
            "run": finished.get(op.get("command_id", "")) == "ok",
            "read": read[path] >= 1,
        }[kind]
        in_git = kind == "read" or at_tip.get(path) == final[path]
        if not (in_log and in_git):
            self.figures["losses"] += 1
            missing = [] if in_log else ["not in the log"]
            missing += [] if in_git else [f"not in git (the tip has {at_tip.get(path)!r})"]
            self.problems.append(f"reported done, {' and '.join(missing)}: {op}")

    def _failure(
        self,
        op: dict[str, Any],
        written: Counter[tuple[str, str]],
        read: Counter[str],
        finished: dict[str, str],
        started: dict[str, str],
    ) -> None:
        kind, path, error = op["op"], op["path"], op["error"]
        self.figures["failures"] += 1
        self.figures[f"{kind} failures"] += 1
        self.errors[error.split(":")[0]] += 1
        if op.get("unexpected") or "Traceback" in error:
            self.problems.append(f"unexpected exception: {op.get('traceback', error)}")
        if "database is locked" in error:
            self.problems.append(f"database is locked: {op}")
        command_id = op.get("command_id") or started.get(op.get("command", ""), "")
        happened = {
            "write": written[path, "write"] > 0,
            "edit": written[path, "edit"] > 0,
            "run": finished.get(command_id) == "ok",  # raised, or returned a failed status
            "read": False,  # a read changes nothing: nothing to compare
        }[kind]
        if happened:
            self.problems.append(f"reported failed, yet done: {op}")

    def conclude(self, name: str, reports: list[dict[str, Any]], seconds: float) -> None:
        self.figures["rounds"] = sum(r["rounds"] for r in reports)
        figures: dict[str, Any] = dict(self.figures)
        figures.update(
            processes=len(reports),
            seconds=round(seconds, 1),
            hammer_seconds=fault_seconds(),
            errors=dict(self.errors),
        )
        report_figures(name, figures)
        assert not self.problems, f"{replay_hint()}:\n" + "\n".join(self.problems[:30])
        assert self.figures["losses"] == 0


def test_eight_processes_on_one_session(ws: Workspace, repo: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    session = ws.new_session(ws.add_project(repo), title="one for eight")
    reports = _hammer(ws, [session.id], tmp_path)
    log = RawLog(ws.settings.resolved_database_url)
    try:
        verdict = Verdict(ws, log)
        verdict.check_session(session.id, [op for r in reports for op in r["ops"]])
        verdict.conclude("test_eight_processes_on_one_session", reports, time.monotonic() - started)
    finally:
        log.close()


def test_eight_processes_on_eight_sessions(ws: Workspace, repo: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    project = ws.add_project(repo)
    sessions = [ws.new_session(project, title=f"own {i}").id for i in range(PROCESSES)]
    reports = _hammer(ws, sessions, tmp_path)
    log = RawLog(ws.settings.resolved_database_url)
    try:
        verdict = Verdict(ws, log)
        for session_id in sessions:
            ops = [op for r in reports for op in r["ops"] if op["session"] == session_id]
            verdict.check_session(session_id, ops)
        verdict.conclude(
            "test_eight_processes_on_eight_sessions", reports, time.monotonic() - started
        )
    finally:
        log.close()
