"""The event log: durability across processes, gap-free seq, checkpoints, diff, revert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchwork import InvalidInput, Workspace
from branchwork.domain.events import SCHEMA_VERSION, Checkpoint, FileWritten
from branchwork.store import Store
from tests.conftest import git

_READ_LOG = """
import json, sys
from branchwork import Workspace
with Workspace() as ws:
    print(json.dumps([e.to_json_dict() for e in ws.events(sys.argv[1])]))
"""

_APPEND_MANY = """
import sys
from branchwork import load_settings
from branchwork.domain.events import Note
from branchwork.store import Store
store = Store.open(load_settings().resolved_database_url)
for i in range(int(sys.argv[2])):
    store.append(sys.argv[1], [(Note(text=f"{sys.argv[3]}-{i}"), "system")])
store.close()
"""


def test_history_survives_reopening_in_a_new_process(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project, title="durable")
    ws.write_file(session, "a.txt", "a\n")
    ws.run(session, "echo hi")
    expected = [e.to_json_dict() for e in ws.events(session)]
    ws.close()
    out = subprocess.run(
        [sys.executable, "-c", _READ_LOG, session.id], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == json.loads(json.dumps(expected))


def test_concurrent_appends_from_two_processes_stay_gap_free(
    store: Store, ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPEND_MANY, session.id, "40", name])
        for name in ("left", "right")
    ]
    for _ in range(40):
        store.append(session.id, [(Checkpoint(commit="c", parent="p", message="m"), "system")])
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    seqs = [e.seq for e in ws.events(session)]
    assert seqs == list(range(1, 1 + 1 + 120))


def test_events_carry_identity_fields_set_at_creation(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.write_file(session, "x.txt", "x\n")
    events = ws.events(session)
    assert len({e.id for e in events}) == len(events)
    assert all(e.session_id == session.id and e.ts.tzinfo is not None for e in events)
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    written = ws.events(session, kinds=["file_written"])[0]
    assert written.actor == "user" and written.schema_version == SCHEMA_VERSION
    with pytest.raises(ValueError, match="frozen"):
        written.seq = 99  # type: ignore[misc]


def test_write_records_the_unified_diff_and_checkpoints(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    outcome = ws.edit_file(session, "app.py", "hello", "bonjour")
    assert isinstance(outcome.written, FileWritten)
    assert "-print('hello')\n+print('bonjour')\n" in outcome.written.diff
    assert outcome.checkpoint is not None
    head = git(Path(session.worktree), "rev-parse", "HEAD").strip()
    assert outcome.checkpoint.commit == head
    assert git(Path(session.worktree), "log", "-1", "--format=%an %cn") == "Branchwork Branchwork\n"


def test_edit_refuses_missing_or_ambiguous_text(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    ws.write_file(session, "twice.txt", "x\nx\n")
    with pytest.raises(InvalidInput, match="not found"):
        ws.edit_file(session, "app.py", "absent", "y")
    with pytest.raises(InvalidInput, match="occurs 2 times"):
        ws.edit_file(session, "twice.txt", "x", "y")


def test_diff_against_base_main_and_checkpoint(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    first = ws.write_file(session, "one.txt", "1\n").checkpoint
    assert first is not None
    ws.write_file(session, "two.txt", "2\n")
    Path(session.worktree, "three.txt").write_text("3\n")
    against_base = ws.diff(session)
    assert all(f"b/{n}.txt" in against_base for n in ("one", "two", "three"))
    against_first = ws.diff(session, against=first.commit[:8])
    assert "one.txt" not in against_first and "two.txt" in against_first
    (repo / "main-only.txt").write_text("m\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main moves")
    assert "main-only.txt" in ws.diff(session, against="main")


def test_revert_restores_files_as_a_new_checkpoint(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    first = ws.write_file(session, "keep.txt", "v1\n").checkpoint
    assert first is not None
    ws.write_file(session, "keep.txt", "v2\n")
    ws.write_file(session, "later.txt", "later\n")
    commits_before = git(Path(session.worktree), "rev-list", "HEAD").split()
    reverted = ws.revert(session, to=first.commit[:10])
    worktree = Path(session.worktree)
    assert (worktree / "keep.txt").read_text() == "v1\n"
    assert not (worktree / "later.txt").exists()
    commits_after = git(worktree, "rev-list", "HEAD").split()
    assert commits_after[1:] == commits_before
    assert reverted.commit == commits_after[0]
    assert ws.events(session)[-1].kind == "reverted"
    assert ws.revert(session, to="base").commit != reverted.commit
    assert not (worktree / "keep.txt").exists()


def test_revert_to_unknown_checkpoint_is_refused(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    with pytest.raises(InvalidInput, match="not a checkpoint"):
        ws.revert(session, to="deadbeef")


def test_follow_sees_events_appended_later(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    last = ws.events(session)[-1].seq
    ws.run(session, "true")
    followed = list(ws.follow(session, after_seq=last, stop_after=0.5))
    assert [e.kind for e in followed][:2] == ["command_started", "command_finished"]


def test_a_command_whose_process_died_is_stopped_and_recorded_as_interrupted(
    ws: Workspace, repo: Path, tmp_path: Path
) -> None:
    import time

    from tests.sandbox.procs import is_running

    project = ws.add_project(repo)
    ws.configure_project(project, sandbox="local")  # host pids, readable from here
    session = ws.new_session(project)
    pid_file = tmp_path / "pid"
    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [
            str(bin_dir / "branchwork"),
            "run",
            "--session",
            session.id,
            "--",
            f"echo $$ > {pid_file}; sleep 60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    orphan = int(pid_file.read_text())
    assert is_running(orphan)
    assert ws.session_state(session).open_commands
    ws.run(session, "true")
    for _ in range(50):
        if not is_running(orphan):
            break
        time.sleep(0.05)
    assert not is_running(orphan)
    [interrupted] = ws.events(session, kinds=["interrupted"])
    assert "did not finish" in interrupted.payload.model_dump()["reason"]
    assert ws.session_state(session).open_commands == ()


def test_checkpoints_ignore_the_repositorys_hooks(ws: Workspace, repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho hook ran >&2\nexit 1\n")
    hook.chmod(0o755)
    project = ws.add_project(repo)
    session = ws.new_session(project)
    saved = ws.write_file(session, "x.txt", "x\n").checkpoint
    assert saved is not None
    assert git(Path(session.worktree), "log", "-1", "--format=%s").strip() == "write x.txt"


def test_a_revert_that_changes_nothing_does_not_shift_checkpoint_numbers(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    first = ws.write_file(session, "a.txt", "1\n").checkpoint
    ws.write_file(session, "a.txt", "2\n")
    assert first is not None
    ws.revert(session, to=first.commit)
    ws.revert(session, to=first.commit)
    commits = [c.commit for c in ws.checkpoints(session)]
    assert len(commits) == 3 and len(set(commits)) == 3
    assert "-2\n+1\n" in ws.diff(session, against="-1")


def test_log_lines_are_the_events_json(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project, title="lignes é")
    ws.write_file(session, "ü.txt", 'grüße — "quoted" \\ back\n')
    ws.run(session, ["printf", "tab\\tnew\\nline"])
    lines = [json.loads(line) for line in ws.event_lines(session)]
    assert lines == [e.to_json_dict() for e in ws.events(session)]
    later = [json.loads(line) for line in ws.event_lines(session, kinds=["checkpoint"])]
    assert lines and later == [e.to_json_dict() for e in ws.events(session, kinds=["checkpoint"])]
