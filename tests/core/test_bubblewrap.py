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
        outside = ws.run(session, f"touch {repo}/escape.txt")
        assert outside.finished.status == "failed"
        assert not (repo / "escape.txt").exists()
