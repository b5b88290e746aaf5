"""`branchwork serve`: on a data directory that has sessions already, and `--local` with its
one-time login link."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.api.conftest import BIN, Server, _wait_until_up, free_port, stop_server
from tests.api.sse import messages
from tests.conftest import make_repo


def test_serve_local_prints_a_login_link_that_works_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = Server("", home, None)  # type: ignore[arg-type]
    repo = make_repo(tmp_path / "existing", {"README.md": "# here before the server\n"})
    server.cli("project", "add", str(repo))
    server.cli("session", "new", "--project", "existing", "--title", "older")
    port = free_port()
    server.url = f"http://127.0.0.1:{port}"
    server.proc = subprocess.Popen(
        [str(BIN / "branchwork"), "serve", "--local", "--port", str(port)],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.proc.stdout is not None
        lines = [server.proc.stdout.readline() for _ in range(3)]
        link = re.search(r"(http://127\.0\.0\.1:\d+/login#\S+)", "".join(lines))
        assert link, lines
        _wait_until_up(server)
        token = link.group(1).split("#", 1)[1]
        with httpx.Client(base_url=server.url) as browser:
            logged = browser.post("/api/login", json={"token": token}).json()
            assert logged["admin"] is True
            browser.headers["Authorization"] = f"Bearer {logged['token']}"  # as the page does
            sessions = browser.get("/api/projects/existing/sessions").json()
            assert [s["title"] for s in sessions] == ["older"]
            started = time.monotonic()
            with browser.stream("GET", f"/api/sessions/{sessions[0]['id']}/events/stream") as r:
                assert r.status_code == 200
                first = next(messages(r))
                assert first.id == "1" and first.json()["kind"] == "session_created"
            assert time.monotonic() - started < 5
        with httpx.Client(base_url=server.url) as other:
            assert other.post("/api/login", json={"token": token}).status_code == 401
    finally:
        stop_server(server)
