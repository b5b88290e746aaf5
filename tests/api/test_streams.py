"""Live streams through a real server: resume with Last-Event-ID over 1,000 events written by
this server and by another process, live tokens, and the project's session list."""

from __future__ import annotations

import http.server
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tests.api.conftest import Server, start_server, stop_server
from tests.api.sse import Message, messages

WRITER = """
import sys, time
from branchwork.domain.events import Note
from branchwork.store import Store
store = Store.open(sys.argv[1])
for i in range(int(sys.argv[3])):
    store.append(sys.argv[2], [(Note(text=f"from another process {i}"), "system")] * 3)
    time.sleep(0.004)
store.close()
"""


def _run_writer(server: Server, session_id: str, batches: int) -> subprocess.Popen[str]:
    url = f"sqlite:///{server.home / 'branchwork.db'}"
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, session_id, str(batches)], text=True, env=server.env
    )


def _read_some(client: httpx.Client, path: str, last: str | None, count: int) -> list[Message]:
    """Up to `count` events from the stream (resuming after `last`), then hang up; fewer when
    none comes for 2 s (the client has caught up)."""
    headers = {"Last-Event-ID": last} if last else {}
    got: list[Message] = []
    timeout = httpx.Timeout(30, read=2)
    with client.stream("GET", path, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        try:
            for message in messages(response):
                if message.event == "event":
                    got.append(message)
                if len(got) >= count:
                    break
        except httpx.ReadTimeout:
            pass
    return got


def test_resume_with_last_event_id_loses_and_repeats_nothing_over_1000_events(
    server: Server,
) -> None:
    server.project("streams")
    session = server.session("streams")
    token = server.user("member", "streams")
    writer = _run_writer(server, session.id, batches=330)  # 990 events from another process
    path = f"/api/sessions/{session.id}/events/stream"
    received: list[Message] = []
    last: str | None = None
    with server.client(token) as client:
        for i in range(10):  # and events of the server's own process meanwhile
            done = client.post(
                f"/api/sessions/{session.id}/commands", json={"command": f"echo {i}"}
            )
            assert done.status_code == 200, done.text
            received += _read_some(client, path, last, random.randint(40, 160))
            last = received[-1].id if received else last
        assert writer.wait(60) == 0
        final = int(client.get(f"/api/sessions/{session.id}").json()["state"]["last_seq"])
        assert final >= 1000
        while not received or int(received[-1].id or 0) < final:
            received += _read_some(client, path, last, min(150, final - int(last or 0)))
            last = received[-1].id
    seqs = [int(m.id or 0) for m in received]
    assert seqs == list(range(1, final + 1))
    assert all(m.json()["seq"] == int(m.id or 0) for m in received)
    kinds = {m.json()["kind"] for m in received}
    assert {"note", "command_started", "command_finished"} <= kinds


def _script(tmp: Path, replies: list[object]) -> str:
    path = tmp / f"script-{random.randint(0, 10**9)}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def test_model_tokens_stream_live_and_only_the_final_message_is_stored(
    server: Server, tmp_path: Path
) -> None:
    server.project("live")
    session = server.session("live")
    token = server.user("member", "live")
    model = _script(tmp_path, ["The answer streams in pieces, then it is stored once."])
    live: list[str] = []
    stored: list[str] = []
    with server.client(token) as client:
        path = f"/api/sessions/{session.id}/events/stream"
        with client.stream("GET", path, timeout=30) as response:
            started = client.post(
                f"/api/sessions/{session.id}/messages", json={"text": "say it", "model": model}
            )
            assert started.status_code == 202, started.text
            for message in messages(response):
                data = message.json()
                if message.event == "live" and data["channel"] == "text":
                    live.append(data["text"])
                elif message.event == "event" and data["kind"] == "agent_message":
                    stored.append(data["payload"]["text"])
                elif message.event == "event" and data["kind"] == "turn_finished":
                    break
        page = client.get(f"/api/sessions/{session.id}/events?kind=agent_message").json()
    assert len(live) > 1 and "".join(live) == stored[0]
    assert [e["payload"]["text"] for e in page["events"]] == stored


def test_the_project_stream_shows_approval_needed_then_done(server: Server, tmp_path: Path) -> None:
    server.project("board")
    session = server.session("board")
    token = server.user("member", "board")
    model = _script(
        tmp_path,
        [
            {
                "tool_calls": [
                    {"name": "run_command", "arguments": {"command": "echo approved-run"}}
                ]
            },
            "Ran it.",
        ],
    )
    seen: list[dict[str, object]] = []
    with (
        server.client(token) as client,
        client.stream("GET", "/api/projects/board/stream", timeout=30) as response,
    ):
        stream = messages(response)
        snapshot = next(stream)
        assert snapshot.event == "snapshot" and snapshot.json()[0]["id"] == session.id
        body = {"text": "run it", "model": model}
        assert client.post(f"/api/sessions/{session.id}/messages", json=body).status_code == 202
        for message in stream:
            item = message.json()
            seen.append(item)
            if item["activity"] == "needs_approval":
                waiting = client.get(f"/api/sessions/{session.id}/approvals").json()
                answer = {"approved": True}
                url = f"/api/sessions/{session.id}/approvals/{waiting[0]['request_id']}"
                assert client.post(url, json=answer).status_code == 204
            if item["activity"] == "idle" and item["last_turn_status"] == "completed":
                break
    activities = [s["activity"] for s in seen]
    assert "needs_approval" in activities and activities[-1] == "idle"
    with server.client(token) as client:
        events = client.get(f"/api/sessions/{session.id}/events?kind=command_finished").json()
    assert "approved-run" in events["events"][0]["payload"]["output_head"]


def test_a_turn_refused_at_once_is_the_callers_error(server: Server, tmp_path: Path) -> None:
    server.project("busy")
    session = server.session("busy")
    token = server.user("member", "busy")
    slow = _script(tmp_path, [{"text": "slow", "delay_s": 3}])
    with server.client(token) as client:
        url = f"/api/sessions/{session.id}/messages"
        assert client.post(url, json={"text": "one", "model": slow}).status_code == 202
        second = client.post(url, json={"text": "two", "model": slow})
        assert second.status_code == 409 and "busy" in second.json()["detail"]
        assert client.post(f"/api/sessions/{session.id}/cancel").json()["cancel_requested"]
        unknown = client.post(url, json={"text": "x", "model": "nosuch:model"})
        deadline = time.monotonic() + 10
        while unknown.status_code == 409 and time.monotonic() < deadline:
            time.sleep(0.2)
            unknown = client.post(url, json={"text": "x", "model": "nosuch:model"})
        assert unknown.status_code in (404, 422), unknown.text


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_webhook_hears_of_approvals_and_turn_ends(tmp_path: Path) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    server = start_server(tmp_path, "--webhook", hook)
    try:
        server.project("hooked")
        session = server.session("hooked")
        model = _script(
            tmp_path,
            [{"tool_calls": [{"name": "run_command", "arguments": {"command": "true"}}]}, "Ok."],
        )
        with server.client(server.admin_token) as client:
            url = f"/api/sessions/{session.id}"
            assert client.post(f"{url}/messages", json={"text": "go", "model": model}).is_success
            waiting = _poll(lambda: client.get(f"{url}/approvals").json())
            answer = f"{url}/approvals/{waiting[0]['request_id']}"
            assert client.post(answer, json={"approved": False, "reason": "no"}).is_success
            _poll(lambda: [m for m in _Receiver.received if m["event"] == "turn_finished"])
    finally:
        stop_server(server)
        receiver.shutdown()
        receiver.server_close()
    events = [(m["event"], m["session_id"]) for m in _Receiver.received]
    assert events == [("approval_requested", session.id), ("turn_finished", session.id)]
    assert _Receiver.received[-1]["idle"] is True


def _poll(read: Callable[[], list[Any]], seconds: float = 15) -> list[Any]:
    deadline = time.monotonic() + seconds
    while not (found := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found
    return found


def test_a_cli_run_while_the_server_is_up_reaches_the_stream(server: Server) -> None:
    server.project("cli-run")
    session = server.session("cli-run")
    token = server.user("viewer", "cli-run")
    with (
        server.client(token) as client,
        client.stream("GET", f"/api/sessions/{session.id}/events/stream", timeout=30) as response,
    ):
        stream = messages(response)
        assert next(stream).json()["kind"] == "session_created"
        server.cli("run", "--session", session.id, "--", "echo", "from-the-cli")
        for message in stream:
            event = message.json()
            if event["kind"] == "command_finished":
                assert "from-the-cli" in event["payload"]["output_head"]
                break
