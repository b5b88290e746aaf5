"""Tasks, trials, comparison, proposals, reviews and merges through a real server: the whole
flow over HTTP (task → two trials run by real workers with the scripted model → compare →
promote → proposal → review → approve → merge), and each route's refusals by role."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server
from tests.conftest import git

CALC = "def add(a, b):\n    return a - b\n"
CHECK = "import calc\nassert calc.add(2, 2) == 4\nprint('ok')\n"
FINISHED = {"done", "failed", "stuck", "promoted", "discarded"}


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def _script(where: Path, name: str, replies: list[Any]) -> str:
    path = where / f"{name}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def _write(path: str, content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "write_file", "arguments": {"path": path, "content": content}}]}


def _project(server: Server, name: str) -> None:
    server.project(name, {"calc.py": CALC, "check.py": CHECK, ".gitignore": "__pycache__/\n"})
    with server.workspace() as ws:
        ws.configure_project(name, sandbox="local")


def _wait_finished(client: httpx.Client, path: str, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        trials: list[dict[str, Any]] = client.get(path).json()["trials"]
        if trials and all(t["status"] in FINISHED for t in trials):
            return trials
        assert time.monotonic() < deadline, trials
        time.sleep(0.3)


@pytest.fixture(scope="module")
def flow_project(server: Server) -> str:
    _project(server, "flow")
    return "flow"


def test_task_to_merge_over_http(server: Server, flow_project: str, tmp_path: Path) -> None:
    """The whole flow, by a maintainer; a member may start trials but not approve or merge."""
    maintainer = server.client(server.user("maintainer", flow_project))
    member = server.client(server.user("member", flow_project))
    tasks = f"/api/projects/{flow_project}/tasks"
    created = member.post(tasks, json={"title": "Fix add", "check": "python3 check.py"})
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    assert created.json()["status"] == "open"
    right = _script(
        tmp_path, "right", [_write("calc.py", "def add(a, b):\n    return a + b\n"), "Fixed."]
    )
    wrong = _script(
        tmp_path, "wrong", [_write("calc.py", "def add(a, b):\n    return b - a\n"), "Done."]
    )
    started = member.post(f"{tasks}/{number}/trials", json={"models": [right, wrong]})
    assert started.status_code == 201, started.text
    assert [t["number"] for t in started.json()] == [1, 2]

    trials = _wait_finished(member, f"{tasks}/{number}")
    assert [t["status"] for t in trials] == ["done", "done"], trials
    assert all(t["branch"] and t["spent"]["tokens"] > 0 for t in trials)

    compared = member.post(f"{tasks}/{number}/compare").json()["trials"]
    assert [c["check"]["passed"] for c in compared] == [True, False]
    assert [c["files"][0]["path"] for c in compared] == ["calc.py", "calc.py"]
    assert all(c["approach"] and c["spent"]["tokens"] > 0 for c in compared)
    shown = member.get(f"{tasks}/{number}/compare").json()["trials"]  # the last results, not rerun
    assert [c["check"]["fresh"] for c in shown] == [False, False]
    diff = member.get(f"{tasks}/{number}/diff", params={"one": 1, "other": 2}).json()["diff"]
    assert "a + b" in diff and "b - a" in diff

    promoted = member.post(f"{tasks}/{number}/trials/1/promote")
    assert promoted.status_code == 200, promoted.text
    assert [t["number"] for t in promoted.json()["discarded"]] == [2]
    proposal = promoted.json()["proposal"]["number"]
    assert member.get(f"{tasks}/{number}").json()["status"] == "done"

    one = f"/api/projects/{flow_project}/proposals/{proposal}"
    refused = _problem(maintainer.post(f"{one}/merge", json={}), 403)
    assert refused["type"] == "/problems/policy-refused"
    assert "0 of 1 required approval" in refused["detail"]
    assert maintainer.get(one).json()["gate"]["reasons"] == [
        "0 of 1 required approval(s) on the current head"
    ]
    _problem(member.post(f"{one}/approve", json={}), 403)

    commented = member.post(f"{one}/comments", json={"path": "calc.py", "line": 2, "text": "nice"})
    assert commented.status_code == 201, commented.text
    review = maintainer.get(f"{one}/review").json()
    (calc,) = review["files"]
    assert calc["path"] == "calc.py" and calc["comments"][0]["text"] == "nice"
    origins = calc["hunks"][0]["origins"]
    assert origins and origins[0]["source"] == "agent" and "Fix add" in origins[0]["prompt"]

    approved = maintainer.post(f"{one}/approve", json={"message": "good"}).json()
    assert approved["status"] == "approved" and approved["gate"]["reasons"] == []
    assert approved["reviews"][0]["reviewer"] == maintainer.get("/api/me").json()["name"]
    merged = maintainer.post(f"{one}/merge", json={})
    assert merged.status_code == 200, merged.text
    assert merged.json()["proposal"]["status"] == "merged"
    repo = server.home.parent / flow_project
    assert "a + b" in git(repo, "show", "main:calc.py")
    listed = maintainer.get(f"/api/projects/{flow_project}/proposals", params={"finished": True})
    assert [p["status"] for p in listed.json()] == ["merged"]
    maintainer.close()
    member.close()


def test_roles_on_the_new_routes(server: Server, tmp_path: Path) -> None:
    _project(server, "guarded")
    _project(server, "elsewhere")
    session = server.session("guarded")
    with server.workspace() as ws:
        ws.write_file(session.id, "calc.py", "def add(a, b):\n    return a + b\n")
        opened = ws.propose(session.id)
        ws.new_task("Nothing yet", project="guarded")
    viewer = server.client(server.user("viewer", "guarded"))
    member = server.client(server.user("member", "guarded"))
    stranger = server.client(server.user("maintainer", "elsewhere"))
    anonymous = server.client()
    tasks, proposals = "/api/projects/guarded/tasks", "/api/projects/guarded/proposals"
    one = f"{proposals}/{opened.number}"
    reads = [f"{tasks}", f"{tasks}/1", f"{tasks}/1/trials", f"{tasks}/1/compare", proposals, one]
    reads += [f"{one}/review", "/api/projects/guarded/conflicts", "/api/projects/guarded/policy"]
    for path in reads:
        assert viewer.get(path).status_code == 200, (path, viewer.get(path).text)
        _problem(anonymous.get(path), 401)
        _problem(stranger.get(path), 404)  # another project's: not confirmed to exist
    for path, body in (
        (tasks, {"title": "x"}),
        (f"{tasks}/1/comments", {"text": "x"}),
        (f"{tasks}/1/trials", {"n": 1}),
        (f"{one}/comments", {"path": "calc.py", "line": 1, "text": "x"}),
        (f"/api/sessions/{session.id}/proposal", {}),
        (f"/api/sessions/{session.id}/fork", {}),
    ):
        assert "member" in _problem(viewer.post(path, json=body), 403)["detail"]
    for verb in ("approve", "merge", "close"):
        assert "maintainer" in _problem(member.post(f"{one}/{verb}", json={}), 403)["detail"]
    _problem(member.post(f"{one}/request-changes", json={"message": "no"}), 403)
    _problem(viewer.get(f"{tasks}/99"), 404)
    _problem(viewer.get(f"{proposals}/99"), 404)
    _problem(viewer.get(f"{tasks}/1/trials/5"), 404)
    assert member.patch(f"{tasks}/1", json={"closed": True}).json()["status"] == "closed"
    assert member.post(f"{tasks}/1/comments", json={"text": "why"}).status_code == 201
    assert viewer.get(f"{tasks}/1").json()["comments"][0]["text"] == "why"
    _problem(member.post(f"{tasks}/1/trials", json={"n": 1}), 409)  # a closed task
    forked = member.post(f"/api/sessions/{session.id}/fork", json={"title": "other way"})
    assert forked.status_code == 201 and forked.json()["parent_id"] == session.id
    for client in (viewer, member, stranger, anonymous):
        client.close()


def test_changes_requested_checked_addressed_and_closed(server: Server, tmp_path: Path) -> None:
    """A request for changes blocks the merge; a member runs the required checks and has the
    agent address the review (a background turn in the proposal's session)."""
    _project(server, "changes")
    session = server.session("changes")
    with server.workspace() as ws:
        ws.write_file(session.id, "calc.py", "def add(a, b):\n    return a + b\n")
        ws.set_policy("changes", required_checks=["python3 check.py"])
    maintainer = server.client(server.user("maintainer", "changes"))
    member = server.client(server.user("member", "changes"))
    viewer = server.client(server.user("viewer", "changes"))
    opened = member.post(f"/api/sessions/{session.id}/proposal", json={"title": "sign"})
    assert opened.status_code == 201, opened.text
    one = f"/api/projects/changes/proposals/{opened.json()['number']}"
    asked = maintainer.post(f"{one}/request-changes", json={"message": "add a test"}).json()
    assert asked["status"] == "changes_requested"
    refused = _problem(maintainer.post(f"{one}/merge", json={"strategy": "merge"}), 403)
    assert "changes requested by" in refused["detail"]

    _problem(viewer.post(f"{one}/checks"), 403)
    (ran,) = member.post(f"{one}/checks").json()
    assert ran["check"] == "python3 check.py" and ran["passed"] and ran["purpose"] == "proposal"
    _problem(viewer.post(f"{one}/address", json={}), 403)
    test = "import calc\nassert calc.add(1, 2) == 3\n"
    model = _script(tmp_path, "address", [_write("test_calc.py", test), "Added a test."])
    ticket = member.post(f"{one}/address", json={"model": model})
    assert ticket.status_code == 202, ticket.text
    events = f"/api/sessions/{session.id}/events"
    deadline = time.monotonic() + 30
    while not member.get(events, params={"kind": "turn_finished"}).json()["events"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    (prompt,) = member.get(events, params={"kind": "user_message"}).json()["events"]
    assert "add a test" in prompt["payload"]["text"]
    moved = member.get(one).json()
    assert moved["head"] != asked["head"] and moved["status"] == "changes_requested"
    closed = maintainer.post(f"{one}/close", json={"reason": "superseded"})
    assert closed.json()["status"] == "closed"
    _problem(maintainer.post(f"{one}/approve", json={}), 409)
    for client in (maintainer, member, viewer):
        client.close()


def test_suggestions_become_a_task_with_its_first_trial(server: Server) -> None:
    server.project("todos", {"app.py": "def run():\n    pass  # TODO: handle errors\n"})
    viewer = server.client(server.user("viewer", "todos"))
    member = server.client(server.user("member", "todos"))
    _problem(viewer.post("/api/projects/todos/suggestions", json={}), 403)
    found = member.post("/api/projects/todos/suggestions", json={})
    assert found.status_code == 200, found.text
    (todo,) = found.json()["suggestions"]
    assert todo["source"] == "todo" and "handle errors" in todo["title"]
    accepted = member.post(f"/api/projects/todos/suggestions/{todo['number']}/accept")
    assert accepted.status_code == 201, accepted.text
    task = accepted.json()["task"]
    assert task["labels"] == ["suggested"] and accepted.json()["trial"]["number"] == 1
    shown = viewer.get(f"/api/projects/todos/tasks/{task['number']}").json()
    assert shown["status"] == "in_progress" and len(shown["trials"]) == 1
    _problem(member.post("/api/projects/todos/suggestions/9/accept"), 404)
    viewer.close()
    member.close()
