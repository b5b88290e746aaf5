"""Sessions under the bubblewrap runner: the worktree is writable, the data dir is hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwork import Workspace
from branchwork.sandbox import bubblewrap_problem

problem = bubblewrap_problem()
pytestmark = pytest.mark.skipif(problem is not None, reason=f"bubblewrap unusable: {problem}")


def test_session_command_in_bubblewrap_writes_worktree_but_cannot_read_secrets(
    repo: Path, tmp_path: Path
) -> None:
    with Workspace(home=tmp_path / "bwhome", sandbox="bubblewrap") as ws:
        project = ws.add_project(repo)
        ws.set_env(project, "TOKEN", "hidden-value-123", secret=True)
        session = ws.new_session(project)
        secrets = ws.settings.home / "secrets"
        outcome = ws.run(session, f"echo made > made.txt; cat {secrets}/*.json || echo no-access")
        output = ws.command_output(outcome.finished)
        assert "no-access" in output and "hidden-value-123" not in output
        assert (Path(session.worktree) / "made.txt").read_text() == "made\n"
        outside = ws.run(session, "touch /usr/escape.txt")  # the root is read-only
        assert outside.finished.status == "failed"
        ws.run(session, f"touch {repo}/escape.txt")  # /tmp is the sandbox's own
        assert not (repo / "escape.txt").exists() and not Path("/usr/escape.txt").exists()


def test_commands_run_in_bubblewrap_by_default_and_a_project_may_choose_local(
    ws: Workspace, repo: Path
) -> None:
    project = ws.add_project(repo)
    session = ws.new_session(project)
    confined = ws.run(session, "cat /proc/1/cmdline | tr '\\0' ' '")
    assert "bwrap" in ws.command_output(confined.finished)  # pid 1 is the sandbox's
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert not any("unconfined" in n for n in notes)
    ws.configure_project(project, sandbox="local")
    ws.run(session, "true")
    ws.run(session, "true")
    notes = [e.payload.model_dump()["text"] for e in ws.events(session, kinds=["note"])]
    assert len([n for n in notes if "unconfined" in n]) == 1  # said once per session


def test_a_project_without_network_has_none(ws: Workspace, repo: Path) -> None:
    project = ws.add_project(repo)
    ws.configure_project(project, network="off")
    session = ws.new_session(project)
    outcome = ws.run(session, "cat /proc/net/dev")
    devices = ws.command_output(outcome.finished)
    assert "lo:" in devices and "eth0" not in devices and "ens" not in devices
