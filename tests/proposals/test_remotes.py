"""Remote pull requests: a push to a bare remote, and the GitHub / GitLab API requests checked
against a real HTTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwork import InvalidInput, Workspace
from tests.conftest import git
from tests.proposals.conftest import APP, SessionMaker
from tests.providers._loopback import LoopbackServer

TOKEN = "ghp_test_token_0123456789"


@pytest.fixture
def bare_remote(checkout: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(checkout, "remote", "add", "origin", str(remote))
    git(checkout, "push", "-q", "origin", "main")
    return remote


@pytest.fixture
def api() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_propose_push_pushes_the_branch_to_the_remote(
    ws: Workspace, make_session: SessionMaker, bare_remote: Path
) -> None:
    session = make_session("greeting", {"app.py": APP.replace("hello", "howdy")})
    proposal = ws.propose(session, push=True)
    assert git(bare_remote, "rev-parse", session.branch).strip() == proposal.head
    notes = [e.payload.text for e in ws.events(session, kinds=["note"])]  # type: ignore[union-attr]
    assert any(f"pushed {session.branch}" in n for n in notes)


def test_propose_without_a_remote_says_how_to_add_one(
    ws: Workspace, make_session: SessionMaker
) -> None:
    session = make_session("greeting", {"app.py": APP.replace("hello", "howdy")})
    with pytest.raises(InvalidInput, match="git remote add"):
        ws.propose(session, push=True)


def test_github_pull_request_is_opened_through_the_rest_api(
    ws: Workspace,
    make_session: SessionMaker,
    bare_remote: Path,
    api: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkout = Path(ws.project().path)
    git(checkout, "remote", "set-url", "origin", "git@github.com:acme/demo.git")
    git(checkout, "remote", "set-url", "--push", "origin", str(bare_remote))  # pushes stay local
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    api.reply_json(201, {"html_url": "https://github.example/acme/demo/pull/7", "number": 7})
    session = make_session("friendlier greeting", {"app.py": APP.replace("hello", "howdy")})
    proposal = ws.propose(session, host="github")
    (request,) = api.requests
    assert request.method == "POST" and request.path == "/repos/acme/demo/pulls"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body["head"] == session.branch and body["base"] == "main"
    assert body["title"] == "friendlier greeting" and body["body"] == proposal.description
    assert proposal.remote_url == "https://github.example/acme/demo/pull/7"
    assert git(bare_remote, "rev-parse", session.branch).strip() == proposal.head
    log = "\n".join(json.dumps(e.to_json_dict()) for e in ws.events(session))
    assert TOKEN not in log and "pull/7" in log


def test_gitlab_merge_request_is_opened_through_the_rest_api(
    ws: Workspace,
    make_session: SessionMaker,
    bare_remote: Path,
    api: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-test-token-0123")
    monkeypatch.setenv("GITLAB_API_URL", f"{api.url}/api/v4")
    monkeypatch.setenv("CI_PROJECT_PATH", "group/sub/demo")
    api.reply_json(201, {"web_url": "https://gitlab.example/group/sub/demo/-/merge_requests/3"})
    session = make_session("greeting", {"app.py": APP.replace("hello", "howdy")})
    proposal = ws.propose(session, host="gitlab")
    (request,) = api.requests
    assert request.path == "/api/v4/projects/group%2Fsub%2Fdemo/merge_requests"
    assert request.headers["private-token"] == "glpat-test-token-0123"
    body = request.json()
    assert body["source_branch"] == session.branch and body["target_branch"] == "main"
    assert proposal.remote_url and proposal.remote_url.endswith("/merge_requests/3")


def test_a_refused_token_is_one_clear_error_and_the_proposal_stays(
    ws: Workspace,
    make_session: SessionMaker,
    bare_remote: Path,
    api: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_API_URL", api.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/demo")
    session = make_session("greeting", {"app.py": APP.replace("hello", "howdy")})
    with pytest.raises(InvalidInput, match="set GITHUB_TOKEN"):
        ws.propose(session, host="github")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    api.reply_json(401, {"message": "Bad credentials"})
    with pytest.raises(InvalidInput, match=r"refused the token.*Bad credentials"):
        ws.propose(session, host="github")
    assert [p.number for p in ws.proposals()] == [1]
    with pytest.raises(InvalidInput, match="unknown host"):
        ws.propose(session, host="bitbucket")
