"""SIGKILL at random points of real `branchwork` processes, then the durability rules.

Three kinds of process are killed, each many times on one session (the log grows across kills):
an agent turn (`ask` with a scripted model that writes, runs, edits and reads, then answers), a
direct `write` of a large file (its diff and checkpoint take a moment) and a direct `run`. Each
kill point is drawn from the seeded random source (`BRANCHWORK_FAULT_SEED`): after a delay drawn
uniformly over the operation's usual duration (measured first, uncut), when the Nth event of the
operation is in the log, or (writes and runs) the moment the branch moves, which is between the
checkpoint's `git commit` and its event. A kill hits the process alone (its git children finish
on their own) or, as often, its whole process group (a git killed mid-write leaves its locks).

After each kill: the log as stored has seqs 1..N and unique ids. Then the next operation runs (an
`ask` whose scripted model answers "done"), and must complete; after it: the turn that was in
flight is closed as interrupted, every tool call has a result, every command finished or was
interrupted (and nothing it started still runs), the worktree is on the session's branch with no
git lock file left and nothing uncommitted, the branch tip is the head the history records,
nothing of a dead process is left in the data dir's `tmp/`, and what the log says was done is
in git (a crash loses at most the step in flight; a file is never half written).

The last tests make the exact residue of a kill by hand (git's lock files, a commit never
recorded), so that each recovery is shown deterministically, and a person's own git holding a
lock while Branchwork needs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from branchwork import Workspace
from tests.conftest import GIT_ENV
from tests.fault._support import (
    RawLog,
    git,
    log_problems,
    open_turns,
    payloads,
    read_ref,
    replay_hint,
    report_figures,
    rng_for,
    run_cli,
    show_at,
    sigkill,
    spawn,
    stop,
    wait_for,
)
from tests.sandbox.procs import running_in_group

TURN_KILLS = 20
WRITE_KILLS = 8
RUN_KILLS = 8
POLL_S = 0.002
STALE_LOCK_NOTE = "removed a stale git "
LATE_CHECKPOINT_NOTE = "a stopped process had committed"


@dataclass(frozen=True)
class KillPlan:
    """When to kill: `delay` seconds after the start, at the `event`th event of the
    operation, or when the `branch` moves; the process alone or its whole group."""

    trigger: str
    value: float
    group: bool

    def __str__(self) -> str:
        what = {"delay": f"after {self.value:.3f} s", "event": f"at event {int(self.value)}"}
        target = "its process group" if self.group else "the process"
        return f"SIGKILL {target} {what.get(self.trigger, 'when the branch moved')}"


class Rig:
    """One session worked on by killed processes, and the checks after each kill."""

    def __init__(self, name: str, repo: Path, scratch: Path) -> None:
        self.name = name
        self.repo = repo
        self.scratch = scratch
        self.ws = Workspace()
        self.home = self.ws.settings.home
        self.session = self.ws.new_session(self.ws.add_project(repo), title=name)
        self.sid = self.session.id
        self.branch = self.session.branch
        self.worktree = Path(self.session.worktree)
        self.gitdir = Path(git(self.worktree, "rev-parse", "--absolute-git-dir").strip())
        self.log = RawLog(self.ws.settings.resolved_database_url)
        self.rng = rng_for(name)
        self.done = scratch / "done.json"
        self.done.write_text(json.dumps(["done"]))
        self.figures: Counter[str] = Counter()
        self.history: list[str] = []

    def close(self) -> None:
        self.log.close()
        self.ws.close()

    def context(self) -> str:
        return f"{self.name}, {replay_hint()}; kills so far: " + "; ".join(self.history[-6:])

    # -- one operation, killed --------------------------------------------------------------

    def calibrate(self, args: list[str], stdin: Path | None = None) -> tuple[float, int]:
        """Run the operation uncut: its duration and how many events it appends."""
        before = self.log.last_seq(self.sid)
        started = time.monotonic()
        proc = spawn(args, home=self.home, cwd=self.repo, stdin=stdin)
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            stop(proc)
        assert proc.returncode == 0, err.decode()
        self.figures["uncut operations"] += 1
        return time.monotonic() - started, self.log.last_seq(self.sid) - before

    def plan(self, duration: float, events: int, *, branch_moves: bool) -> KillPlan:
        triggers = ["delay", "event", "branch"] if branch_moves else ["delay", "event"]
        trigger = self.rng.choice(triggers)
        group = self.rng.random() < 0.5
        if trigger == "delay":
            return KillPlan("delay", self.rng.uniform(0.0, duration), group)
        if trigger == "event":
            return KillPlan("event", self.rng.randint(1, max(1, events)), group)
        return KillPlan("branch", 0, group)

    def kill(self, args: list[str], plan: KillPlan, stdin: Path | None = None) -> bool:
        """Start the operation and kill it as planned; False when it finished first."""
        base_seq = self.log.last_seq(self.sid)
        base_tip = read_ref(self.repo, self.branch)
        conditions: dict[str, Callable[[], bool]] = {
            "delay": lambda: time.monotonic() >= started + plan.value,
            "event": lambda: self.log.last_seq(self.sid) >= base_seq + plan.value,
            "branch": lambda: read_ref(self.repo, self.branch) != base_tip,
        }
        condition = conditions[plan.trigger]
        started = time.monotonic()
        proc = spawn(args, home=self.home, cwd=self.repo, stdin=stdin)
        try:
            while proc.poll() is None and not condition():
                time.sleep(POLL_S)
            err = sigkill(proc, group=plan.group)
        finally:
            stop(proc)
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 0, f"{plan}: the operation failed: {err}\n{self.context()}"
            self.figures["finished before the kill"] += 1
            self.history.append(f"{plan}: finished first")
            return False
        self.figures["kills"] += 1
        self.figures[f"kills {plan.trigger}"] += 1
        self.figures["kills of the group" if plan.group else "kills of the process"] += 1
        self.history.append(f"{plan} (events {base_seq + 1}..{self.log.last_seq(self.sid)})")
        return True

    # -- after a kill -------------------------------------------------------------------------

    def recover_and_check(self) -> list[dict[str, Any]]:
        """The checks on the log as the killed process left it, the next operation, and every
        check after it; returns the log."""
        left = self.log.events(self.sid)
        problems = log_problems(left, closed=False)
        assert not problems, f"after the kill: {problems}\n{self.context()}"
        in_flight = open_turns(left)
        orphans = self._running_commands()
        self.figures["left in tmp/ by the dead, removed"] += len(
            _left_by_the_dead(self.home / "tmp")
        )
        self.next_operation()
        events = self.log.events(self.sid)
        problems = log_problems(events, closed=True)
        assert not problems, f"after the next operation: {problems}\n{self.context()}"
        self._check_interrupted_turns(events, in_flight)
        self._check_no_orphans(orphans)
        assert self.log.lease(self.sid) is None, f"the turn lease is held\n{self.context()}"
        self.check_git()
        return events

    def next_operation(self) -> None:
        """An `ask` turn answered "done": it must complete, whatever the kill left."""
        args = ["ask", self.sid, "continue", "--model", f"scripted:{self.done}"]
        done = run_cli([*args, "--mode", "autopilot"], home=self.home, cwd=self.repo)
        assert done.returncode == 0, (
            f"the next operation failed ({done.returncode}): {done.stderr}\n{self.context()}"
        )
        finished = payloads(self.log.events(self.sid), "turn_finished")
        assert finished[-1]["status"] == "completed", f"{finished[-1]}\n{self.context()}"
        self.figures["next operations"] += 1

    def git_locks(self) -> list[Path]:
        """Lock files of git in the worktree's git dir and for the session's branch."""
        branch_lock = self.repo / ".git" / "refs" / "heads" / f"{self.branch}.lock"
        return [*self.gitdir.rglob("*.lock"), *([branch_lock] if branch_lock.exists() else [])]

    def _check_interrupted_turns(self, events: list[dict[str, Any]], in_flight: set[str]) -> None:
        if not in_flight:
            return
        self.figures["turns closed as interrupted"] += len(in_flight)
        statuses = {p["turn_id"]: p["status"] for p in payloads(events, "turn_finished")}
        said = {p.get("turn_id") for p in payloads(events, "interrupted")}
        for turn in in_flight:
            assert statuses[turn] == "interrupted", f"turn {turn}: {statuses}\n{self.context()}"
            assert turn in said, f"no interrupted event for turn {turn}\n{self.context()}"

    def _running_commands(self) -> dict[str, int]:
        """The process groups of the commands the killed process was running."""
        found = {}
        for path in (self.home / "running").glob("*"):
            try:
                found[path.name] = int(path.read_text())
            except (FileNotFoundError, ValueError):
                continue
        return found

    def _check_no_orphans(self, orphans: dict[str, int]) -> None:
        self.figures["orphaned commands stopped"] += len(orphans)
        for command_id, pgid in orphans.items():
            wait_for(lambda g=pgid: not running_in_group(g), 10, f"command {command_id} to end")
            assert not (self.home / "running" / command_id).exists(), self.context()

    def check_git(self) -> None:
        head = git(self.worktree, "symbolic-ref", "HEAD").strip()
        assert head == f"refs/heads/{self.branch}", f"HEAD is {head}\n{self.context()}"
        locks = self.git_locks()
        assert not locks, f"git locks left: {locks}\n{self.context()}"
        left = _left_by_the_dead(self.home / "tmp")
        assert not left, f"left in the data dir's tmp/: {left}\n{self.context()}"
        status = git(self.worktree, "status", "--porcelain", "--untracked-files=all")
        assert status == "", f"uncommitted after the next operation: {status}\n{self.context()}"
        tip = git(self.repo, "rev-parse", f"refs/heads/{self.branch}").strip()
        recorded = self.ws.session_details(self.sid).state.head
        assert tip == recorded, f"branch at {tip}, history at {recorded}\n{self.context()}"

    def tip(self) -> str:
        return git(self.repo, "rev-parse", f"refs/heads/{self.branch}").strip()

    def finish(self, started: float, wanted: int) -> None:
        assert self.figures["kills"] >= wanted, f"{self.figures}\n{self.context()}"
        counted = {k: v for k, v in sorted(self.figures.items())}
        counted["seconds"] = round(time.monotonic() - started, 1)
        notes = [n["text"] for n in payloads(self.log.events(self.sid), "note")]
        removed = Counter(
            "branch ref lock" if name.startswith("refs/") else name
            for name in (n.split()[4] for n in notes if n.startswith(STALE_LOCK_NOTE))
        )
        counted.update({f"stale {name} removed": count for name, count in removed.items()})
        counted["late checkpoints recorded"] = sum(LATE_CHECKPOINT_NOTE in n for n in notes)
        counted["events"] = self.log.last_seq(self.sid)
        report_figures(self.name, counted)


@pytest.fixture
def rig(request: pytest.FixtureRequest, repo: Path, tmp_path: Path) -> Iterator[Rig]:
    made = Rig(request.node.name, repo, tmp_path)
    try:
        yield made
    finally:
        made.close()


def _left_by_the_dead(tmp: Path) -> list[str]:
    """What processes that are gone left in the data dir's `tmp/` (every entry there is named
    `<what>-<pid>-<random>`)."""
    left = []
    for path in tmp.glob("*") if tmp.is_dir() else []:
        pid = next((int(part) for part in path.name.split("-") if part.isdigit()), None)
        if pid is None or not Path(f"/proc/{pid}").exists():
            left.append(path.name)
    return left


def _written(events: list[dict[str, Any]], path: str) -> list[str]:
    return [p["operation"] for p in payloads(events, "file_written") if p["path"] == path]


def _finished_ok(events: list[dict[str, Any]], command: str) -> bool:
    ids = {p["command_id"] for p in payloads(events, "command_started") if p["command"] == command}
    return any(
        p["command_id"] in ids and p["status"] == "ok" for p in payloads(events, "command_finished")
    )


# -- agent turns ---------------------------------------------------------------------------------


def _turn_script(rig: Rig, n: int) -> Path:
    def call(name: str, call_id: str, **arguments: str) -> dict[str, Any]:
        return {"tool_calls": [{"name": name, "call_id": call_id, "arguments": arguments}]}

    script = [
        call("write_file", f"w{n}", path=f"k{n}.txt", content=f"alpha {n}\n"),
        call("run_command", f"r{n}", command=_turn_command(n)),
        call("edit_file", f"e{n}", path=f"k{n}.txt", old_text="alpha", new_text="beta"),
        call("read_file", f"d{n}", path=f"k{n}.txt"),
        f"turn {n} is finished",
    ]
    path = rig.scratch / f"turn{n}.json"
    path.write_text(json.dumps(script))
    return path


def _turn_command(n: int) -> str:
    return f"echo x{n} | tee r{n}.txt; sleep 0.3"


def _check_turn_work(rig: Rig, events: list[dict[str, Any]], n: int) -> None:
    """What the log says the turn did is at the branch tip (the step in flight may or may not
    have happened, never half)."""
    tip, context = rig.tip(), f"turn {n}\n{rig.context()}"
    written, content = _written(events, f"k{n}.txt"), show_at(rig.worktree, tip, f"k{n}.txt")
    if "edit" in written:
        assert content == f"beta {n}\n", f"{content!r}: {context}"
    elif "write" in written:
        assert content in (f"alpha {n}\n", f"beta {n}\n"), f"{content!r}: {context}"
    else:
        assert content in (None, f"alpha {n}\n"), f"{content!r}: {context}"
    if _finished_ok(events, _turn_command(n)):
        assert show_at(rig.worktree, tip, f"r{n}.txt") == f"x{n}\n", context


def test_sigkill_during_agent_turns(rig: Rig) -> None:
    started = time.monotonic()
    ask = ["ask", rig.sid, "work", "--mode", "autopilot", "--model"]
    duration, events = rig.calibrate([*ask, f"scripted:{_turn_script(rig, 0)}"])
    n = 0
    while rig.figures["kills"] < TURN_KILLS:
        n += 1
        assert n < TURN_KILLS * 3, f"too few kills hit a running turn\n{rig.context()}"
        plan = rig.plan(duration, events, branch_moves=False)
        rig.kill([*ask, f"scripted:{_turn_script(rig, n)}"], plan)
        log = rig.recover_and_check()
        _check_turn_work(rig, log, n)
    rig.finish(started, TURN_KILLS)


# -- direct writes and runs ----------------------------------------------------------------------


def _big_text(n: int) -> str:
    return f"write {n}\n" + "".join(f"{n} line {i:>7}\n" for i in range(110_000))


def test_sigkill_during_direct_writes(rig: Rig) -> None:
    started = time.monotonic()
    source = rig.scratch / "content.txt"
    source.write_text(_big_text(0))
    duration, events = rig.calibrate(["write", "w0.txt", "-s", rig.sid], stdin=source)
    n = 0
    while rig.figures["kills"] < WRITE_KILLS:
        n += 1
        assert n < WRITE_KILLS * 3, f"too few kills hit a running write\n{rig.context()}"
        text = _big_text(n)
        source.write_text(text)
        plan = rig.plan(duration, events, branch_moves=True)
        rig.kill(["write", f"w{n}.txt", "-s", rig.sid], plan, stdin=source)
        on_disk = rig.worktree / f"w{n}.txt"
        assert not on_disk.exists() or on_disk.read_text() == text, f"half written: {rig.context()}"
        log = rig.recover_and_check()
        at_tip = show_at(rig.worktree, rig.tip(), f"w{n}.txt")
        if _written(log, f"w{n}.txt"):
            assert at_tip == text, f"recorded write of w{n}.txt not at the tip\n{rig.context()}"
        else:
            assert at_tip in (None, text), f"w{n}.txt half written\n{rig.context()}"
    rig.finish(started, WRITE_KILLS)


def _run_command(n: int) -> str:
    return f"seq 1 40000 > run{n}.txt; sleep 0.3; echo ok {n}"


def test_sigkill_during_direct_runs(rig: Rig) -> None:
    started = time.monotonic()
    expected = "".join(f"{i}\n" for i in range(1, 40_001))
    duration, events = rig.calibrate(["run", "-s", rig.sid, "--", _run_command(0)])
    n = 0
    while rig.figures["kills"] < RUN_KILLS:
        n += 1
        assert n < RUN_KILLS * 3, f"too few kills hit a running command\n{rig.context()}"
        plan = rig.plan(duration, events, branch_moves=True)
        rig.kill(["run", "-s", rig.sid, "--", _run_command(n)], plan)
        log = rig.recover_and_check()
        if _finished_ok(log, _run_command(n)):
            at_tip = show_at(rig.worktree, rig.tip(), f"run{n}.txt")
            assert at_tip == expected, f"run {n}'s output file not at the tip\n{rig.context()}"
    rig.finish(started, RUN_KILLS)


# -- the residue of a kill, made exactly ---------------------------------------------------------


def _just_made(lock: Path, content: str = "") -> Path:
    """A lock file as a git killed a moment ago leaves it: its time set a minute ahead, so
    that it counts as "just made" however slow this machine is."""
    lock.write_text(content)
    os.utime(lock, (time.time() + 60, time.time() + 60))
    return lock


def _removed_lock_notes(rig: Rig) -> list[str]:
    notes = [n["text"] for n in payloads(rig.log.events(rig.sid), "note")]
    return [n.split()[4] for n in notes if n.startswith(STALE_LOCK_NOTE)]


def test_an_index_lock_left_by_a_git_killed_a_moment_ago_does_not_fail_the_next_turn(
    rig: Rig,
) -> None:
    """What a git killed in the middle of `git add` or `git commit` leaves: its `index.lock`
    and the files it was adding. No git runs any more (its process group was killed)."""
    (rig.worktree / "pending.txt").write_text("written before the crash\n")
    _just_made(rig.gitdir / "index.lock")
    rig.next_operation()
    rig.check_git()
    assert _removed_lock_notes(rig) == ["index.lock"]
    assert show_at(rig.worktree, rig.tip(), "pending.txt") == "written before the crash\n"


def test_ref_locks_left_by_a_killed_git_commit_do_not_block_later_checkpoints(
    rig: Rig,
) -> None:
    """What a `git commit` killed while it updates the branch leaves (seen in the random
    kills): `HEAD.lock` in the worktree's git dir, the branch's lock in the repository's."""
    _just_made(rig.gitdir / "HEAD.lock", f"ref: refs/heads/{rig.branch}\n")
    branch_lock = rig.repo / ".git" / "refs" / "heads" / f"{rig.branch}.lock"
    _just_made(branch_lock, rig.tip() + "\n")
    (rig.worktree / "pending.txt").write_text("written after the crash\n")
    rig.next_operation()
    rig.check_git()
    assert sorted(_removed_lock_notes(rig)) == ["HEAD.lock", f"refs/heads/{rig.branch}.lock"]
    assert show_at(rig.worktree, rig.tip(), "pending.txt") == "written after the crash\n"


def _persons_commit(rig: Rig, go: Path) -> subprocess.Popen[bytes]:
    """A person's own `git commit -a` in the session's worktree, waiting in its editor until
    `go` exists (`-a` holds `index.lock` meanwhile, as git's own message about it says)."""
    (rig.worktree / "mine.txt").write_text("a person's own change\n")
    git(rig.worktree, "add", "mine.txt")
    editor = f"while [ ! -e {go} ]; do sleep 0.02; done; true"
    env = {**os.environ, **GIT_ENV, "GIT_EDITOR": editor}
    proc = subprocess.Popen(
        ["git", "commit", "-q", "-a", "-e", "-m", "a person's commit"],
        cwd=rig.worktree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (rig.gitdir / "index.lock").exists(), 30, "the person's git to lock")
    except AssertionError:
        stop(proc)
        raise
    return proc


def test_a_persons_git_holding_the_index_is_waited_for_then_named_and_the_turn_closed(
    rig: Rig,
) -> None:
    """A lock a live git holds is never removed: after a short wait the turn's checkpoint is
    refused in one line naming that git, and the turn ends in the log as failed (not left
    open). Once the person's commit is done, the next turn works."""
    go = rig.scratch / "go"
    person = _persons_commit(rig, go)
    try:
        args = ["ask", rig.sid, "go", "--model", f"scripted:{rig.done}", "--mode", "autopilot"]
        failed = run_cli(args, home=rig.home, cwd=rig.repo)
        assert failed.returncode == 3, failed.stderr
        line = failed.stderr.strip()
        assert len(line.splitlines()) == 1 and line.startswith("error:"), line
        assert f"pid {person.pid}" in line and "index.lock" in line, line
        assert (rig.gitdir / "index.lock").exists(), "a live git's lock was removed"
        events = rig.log.events(rig.sid)
        assert not open_turns(events), "the turn ended, its process exited, the log says it runs"
        finished = payloads(events, "turn_finished")[-1]
        assert finished["status"] == "failed", finished
        assert finished["detail"].startswith("taking the turn's checkpoint failed:"), finished
        assert "\n" not in finished["detail"]
        go.write_text("")
        assert person.wait(timeout=30) == 0
    finally:
        stop(person)
    rig.next_operation()
    rig.check_git()
    assert _removed_lock_notes(rig) == []


def test_a_commit_whose_checkpoint_event_was_lost_is_recorded_by_the_next_operation(
    rig: Rig,
) -> None:
    """What a process killed between the checkpoint's `git commit` and its event leaves: the
    branch one commit ahead of the history."""
    (rig.worktree / "late.txt").write_text("committed, never recorded\n")
    git(rig.worktree, "add", "-A")
    git(
        rig.worktree,
        *("-c", "user.name=Branchwork", "-c", "user.email=branchwork@localhost"),
        *("commit", "-qm", "write late.txt"),
    )
    committed = rig.tip()
    rig.next_operation()
    rig.check_git()
    recorded = [p["commit"] for p in payloads(rig.log.events(rig.sid), "checkpoint")]
    assert committed in recorded
