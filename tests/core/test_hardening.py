"""Breaks found by attacking Branchwork as a user would, each kept fixed: secrets vs ids,
copied and ignored files, concurrent checkpoints, stale locks, a lost branch, large diffs,
dead processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from branchwork import InvalidInput, InvalidPath, Workspace
from branchwork.domain.events import FileWritten
from tests.conftest import BIN, RepoFactory, bw, git


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_secret_that_occurs_in_a_sha_never_touches_ids_shas_or_kinds(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.write_file(session, "a.txt", "one\n")
    first = ws.checkpoints(session)[-1].commit
    ws.set_env(project, "PIN", first[:6], secret=True)  # a value that is part of a sha
    ws.write_file(session, "a.txt", f"two {first[:6]}\n")
    ws.run(session, ["printf", f"out {first[:6]}"])
    events = ws.events(session)
    assert [e.kind for e in events]  # every event still parses: kinds are intact
    checkpoints = ws.checkpoints(session)
    assert checkpoints[0].commit == first and all(len(c.commit) == 40 for c in checkpoints)
    written = [e.payload for e in events if isinstance(e.payload, FileWritten)][-1]
    assert "[secret:PIN]" in written.diff and first[:6] not in written.diff
    assert "two" in ws.diff(session, against="-1")
    ws.revert(session, to="-1")
    assert (Path(session.worktree) / "a.txt").read_text() == "one\n"


def test_a_secret_too_short_to_redact_is_refused_with_the_reason(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    with pytest.raises(InvalidInput, match="too short"):
        ws.set_env(project, "PIN", "7", secret=True)
    assert ws.env(project) == []
    ws.set_env(project, "PIN", "7")  # as a plain variable it is fine
    session = ws.new_session(project)
    outcome = ws.run(session, "echo $PIN")
    assert ws.command_output(outcome.finished) == "7\n"


def test_an_ignored_copied_file_never_breaks_checkpoints_and_its_edits_survive_a_restore(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory(
        {".gitignore": ".env\n", ".branchwork.toml": '[session]\ncopy = [".env"]\n', "a": "a\n"}
    )
    (repo / ".env").write_text("TOKEN=checkout\n")
    project = ws.add_project(repo)
    session = ws.new_session(project)
    worktree = Path(session.worktree)
    assert (worktree / ".env").read_text() == "TOKEN=checkout\n"
    ws.write_file(session, "b.txt", "b\n")
    outcome = ws.run(session, "echo TOKEN=session > .env")
    assert outcome.finished.status == "ok"
    assert ".env" not in git(worktree, "ls-tree", "-r", "--name-only", "HEAD").split()
    ws.archive_session(session)
    ws.restore_session(session)
    assert (worktree / ".env").read_text() == "TOKEN=session\n"
    assert (repo / ".env").read_text() == "TOKEN=checkout\n"


def test_a_file_written_to_an_ignored_path_is_kept(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    repo = repo_factory({".gitignore": "*.log\n", "a": "a\n"})
    project = ws.add_project(repo)
    session = ws.new_session(project)
    outcome = ws.write_file(session, "notes.log", "kept\n")
    assert outcome.checkpoint is not None and "notes.log" in outcome.checkpoint.files
    ws.archive_session(session)
    ws.restore_session(session)
    assert (Path(session.worktree) / "notes.log").read_text() == "kept\n"


def test_a_write_inside_an_uninitialised_submodule_is_refused_up_front(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    inner = repo_factory({"lib.py": "x = 1\n"})
    repo = repo_factory({"a": "a\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "vendor")
    git(repo, "commit", "-qm", "submodule")
    project = ws.add_project(repo)
    session = ws.new_session(project)
    with pytest.raises(InvalidPath, match="cannot be recorded"):
        ws.write_file(session, "vendor/new.py", "y = 2\n")
    assert not (Path(session.worktree) / "vendor" / "new.py").exists()
    assert ws.events(session, kinds=["file_written"]) == []


def test_a_stale_index_lock_is_recovered_and_the_recovery_recorded(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    gitdir = Path(git(Path(session.worktree), "rev-parse", "--absolute-git-dir").strip())
    lock = gitdir / "index.lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 60, time.time() - 60))  # a killed git left it a while ago
    outcome = ws.write_file(session, "a.txt", "a\n")
    assert outcome.checkpoint is not None
    assert not lock.exists()
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert any("stale git index.lock" in n for n in notes)


def test_a_deleted_branch_and_a_detached_head_are_repaired_and_said(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    worktree = Path(session.worktree)
    ws.write_file(session, "a.txt", "a\n")
    head = ws.checkpoints(session)[-1].commit
    git(worktree, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", session.branch)
    outcome = ws.write_file(session, "b.txt", "b\n")
    assert outcome.checkpoint is not None and outcome.checkpoint.parent == head
    assert git(worktree, "symbolic-ref", "--short", "HEAD").strip() == session.branch
    git(worktree, "checkout", "-q", "--detach")  # detached, branch still there
    ws.archive_session(session)
    ws.restore_session(session)
    assert (worktree / "b.txt").read_text() == "b\n"
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert any("was deleted; recreated" in n for n in notes)
    assert any("put back on it" in n for n in notes)


def test_a_large_write_records_a_capped_diff_and_keeps_the_whole_one_as_a_blob(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    big = "".join(f"line {i:>8}\n" for i in range(1_300_000))  # ~18 MB: diff too large to keep
    started = time.monotonic()
    outcome = ws.write_file(session, "big.txt", big)
    assert time.monotonic() - started < 30
    written = outcome.written
    assert written.diff_truncated and len(written.diff) < 70_000
    assert written.diff_bytes > len(big) and written.diff_blob is None
    assert outcome.checkpoint is not None and "big.txt" in outcome.checkpoint.files
    medium = "".join(f"row {i}\n" for i in range(20_000))  # ~190 KB: the diff kept as a blob
    written = ws.write_file(session, "medium.txt", medium).written
    assert written.diff_truncated and written.diff_blob is not None
    assert ws.file_diff(written).endswith("+row 19999\n")
    bw("log", session.id, cwd=repo)  # renders the capped previews, quickly


def test_concurrent_writes_and_runs_in_one_session_all_succeed_and_commit_no_temp_file(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    procs = []
    for i in range(6):
        args = ["write", f"f{i}.txt", "-s", session.id] if i % 2 else ["run", "-s", session.id]
        if not i % 2:
            args += ["--", f"echo {i} > r{i}.txt"]
        procs.append(
            subprocess.Popen(
                [str(BIN / "branchwork"), *args],
                cwd=repo,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [p.communicate(input=f"content {n}\n", timeout=120) for n, p in enumerate(procs)]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in results]
    worktree = Path(session.worktree)
    committed = git(worktree, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert {f"f{i}.txt" for i in (1, 3, 5)} | {f"r{i}.txt" for i in (0, 2, 4)} <= set(committed)
    assert not [name for name in committed if name.endswith(".bw")]
    assert git(worktree, "status", "--porcelain") == ""


def test_a_command_whose_process_was_killed_shows_interrupted_at_once(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    proc = subprocess.Popen(
        [str(BIN / "branchwork"), "run", "-s", session.id, "--", "echo up; exec sleep 300"],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    lines = bw("log", session.id, "--json", cwd=repo).stdout.splitlines()
    log = [json.loads(line) for line in lines]
    assert log[-1]["kind"] == "interrupted"
    assert not list((ws.settings.home / "running").glob("*"))
    ws.archive_session(session)  # nothing runs any more: archive is not refused


def test_archive_right_after_a_turns_process_was_killed(
    ws: Workspace, repo: Path, tmp_path: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    script = tmp_path / "slow.json"
    script.write_text(
        json.dumps(
            [{"tool_calls": [{"name": "run_command", "arguments": {"command": "sleep 60"}}]}]
        )
    )
    proc = subprocess.Popen(
        [str(BIN / "branchwork"), "ask", session.id, "go", "--model", f"scripted:{script}",
         "--mode", "autopilot"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for(lambda: bool(ws.events(session, kinds=["command_started"])))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    started = time.monotonic()
    archived = ws.archive_session(session)
    assert archived.status == "archived" and time.monotonic() - started < 10


def test_chat_revert_without_a_checkpoint_asks_for_one(repo: Path, tmp_path: Path) -> None:
    bw("project", "add", ".", cwd=repo)
    bw("session", "new", cwd=repo)
    bw("write", "a.txt", cwd=repo, stdin="a\n")
    chat = bw("chat", cwd=repo, stdin="/revert\n/exit\n")
    assert "give the checkpoint" in chat.stderr
    assert (Path(json.loads(bw("session", "show", "--json", cwd=repo).stdout)["worktree"])
            / "a.txt").exists()  # fmt: skip
    assert json.loads(bw("log", "--json", "--kind", "reverted", cwd=repo).stdout or "null") is None


def test_an_emptied_database_is_refused_and_rebuilt_from_branches_and_worktrees(
    repo: Path,
) -> None:
    bw("project", "add", ".", cwd=repo)
    live = json.loads(bw("session", "new", "--title", "live one", "--json", cwd=repo).stdout)
    bw("write", "kept.txt", cwd=repo, stdin="kept\n")
    gone = json.loads(bw("session", "new", "--title", "old one", "--json", cwd=repo).stdout)
    bw("session", "archive", gone["id"], cwd=repo)
    db = Path(os.environ["BRANCHWORK_HOME"]) / "branchwork.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"")  # the database lost its content
    refused = bw("session", "list", cwd=repo, check=False)
    assert refused.returncode == 3 and "doctor --rebuild" in refused.stderr
    assert refused.stderr.count("\n") == 1 and db.stat().st_size == 0
    rebuilt = json.loads(bw("doctor", "--rebuild", "--json", cwd=repo).stdout)
    assert sorted(rebuilt["sessions"]) == sorted([live["short_id"], gone["short_id"]])
    listed = json.loads(bw("session", "list", "--all", "--json", cwd=repo).stdout)
    by_short = {s["short_id"]: s for s in listed}
    assert by_short[live["short_id"]]["status"] == "active"
    assert by_short[gone["short_id"]]["status"] == "archived"
    assert by_short[live["short_id"]]["branch"] == live["branch"]
    assert bw("read", "kept.txt", "-s", live["short_id"], cwd=repo).stdout == "kept\n"
    bw("session", "restore", gone["short_id"], cwd=repo)


def test_a_checkpoint_committed_but_never_recorded_is_completed_by_the_next_operation(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    worktree = Path(session.worktree)
    (worktree / "half.txt").write_text("committed, not recorded\n")
    git(worktree, "add", "-A")  # what a process killed right after `git commit` leaves
    git(worktree, "commit", "-qm", "write half.txt")
    tip = git(worktree, "rev-parse", "HEAD").strip()
    ws.write_file(session, "next.txt", "next\n")
    recorded = [c.commit for c in ws.checkpoints(session)]
    assert recorded[0] == tip and len(recorded) == 2
    assert ws.session_details(session).state.head == git(worktree, "rev-parse", "HEAD").strip()
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert any("a stopped process had committed" in n for n in notes)
