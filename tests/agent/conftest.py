"""Fixtures for agent tests: a project with a session, and the scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwork import Session, Workspace


@pytest.fixture
def session(ws: Workspace, repo: Path) -> Session:
    project = ws.add_project(repo)
    return ws.new_session(project, title="agent")
