"""The API attacked: what an attacker or a demanding user sent a real server, and what broke
before it was fixed (docs/server.md, "Attack review"). Each test failed before its fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from branchwork.api.limits import MAX_STREAMS_PER_TOKEN, MAX_TERMINALS_PER_USER
from tests.api.conftest import Server
from tests.conftest import BIN, make_repo


def _status_of_stream(client: httpx.Client, path: str, **kwargs: object) -> int:
    """The status a stream answers with (it is closed at once when it opened)."""
    with client.stream("GET", path, timeout=5, **kwargs) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            response.read()
        return response.status_code


def test_seqs_out_of_range_are_refused_not_a_bug(server: Server) -> None:
    """`after=2**63` was a 500 (and reset a stream's connection); a Last-Event-ID of digits
    Python reads but `int` does not (`²`) was a 500."""
    server.project("seqs")
    session = server.session("seqs")
    with server.client(server.user("viewer", "seqs")) as client:
        events = f"/api/sessions/{session.id}/events"
        for after in (2**63, 10**30):
            response = client.get(events, params={"after": after})
            assert response.status_code == 422, response.text
        assert _status_of_stream(client, f"{events}/stream", params={"after": 2**63}) == 422
        for garbage in (b"\xb2", b"-5", b"9" * 40, b"1e3"):
            headers = {"Last-Event-ID": garbage}
            assert _status_of_stream(client, f"{events}/stream", headers=headers) == 200


def test_a_share_link_is_not_revoked_by_whoever_logs_out_of_it(server: Server) -> None:
    """Anyone with the link pressing "Log out" revoked it for everyone it was sent to."""
    server.project("sharelogout")
    session = server.session("sharelogout")
    with server.client(server.user("member", "sharelogout")) as maker:
        link = maker.post(f"/api/sessions/{session.id}/share").json()
    with server.client(link["token"]) as reader:
        assert reader.post("/api/logout").status_code == 204
    with server.client(link["token"]) as other_reader:
        assert other_reader.get(f"/api/sessions/{session.id}").status_code == 200


def test_a_share_link_dies_with_its_makers_access(server: Server) -> None:
    """A member who lost their role could still read the session through the share links they
    had made (for 30 days)."""
    server.project("shareloss")
    session = server.session("shareloss")
    token = server.user("member", "shareloss")
    with server.client(token) as maker:
        name = maker.get("/api/me").json()["name"]
        link = maker.post(f"/api/sessions/{session.id}/share").json()
    server.cli("user", "grant", name, "--project", "shareloss", "--remove")
    with server.client(link["token"]) as reader:
        deadline = time.monotonic() + 5  # what a server checked is kept for 2 s
        while reader.get("/api/me").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reader.get(f"/api/sessions/{session.id}").status_code in (401, 404)


def _terminal(server: Server, session_id: str, token: str) -> Iterator[str]:
    url = server.url.replace("http", "ws", 1) + f"/api/sessions/{session_id}/terminal"
    # Each terminal starts a shell in the sandbox: on a loaded 2-core machine that took >10 s.
    return connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=30)


def _read_until(socket: object, text: str, seconds: float = 10) -> str:
    seen = ""
    deadline = time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        try:
            seen += socket.recv(timeout=0.3)  # type: ignore[attr-defined]
        except TimeoutError:
            continue
    return seen


def test_a_terminal_survives_input_that_is_not_unicode(server: Server) -> None:
    """A lone surrogate (`"\\ud800"` is valid JSON) ended the terminal with an error."""
    server.project("termsurrogate")
    session = server.session("termsurrogate")
    with _terminal(server, session.id, server.user("member", "termsurrogate")) as socket:
        socket.send('{"type": "input", "data": "\\ud800"}')  # type: ignore[attr-defined]
        socket.send(json.dumps({"type": "input", "data": "\x15echo alive-$((6*7))\r"}))  # type: ignore[attr-defined]
        assert "alive-42" in _read_until(socket, "alive-42")


def _log_in(server: Server, headers: dict[str, str]) -> httpx.Response:
    name = f"cookie{time.monotonic_ns()}"
    server.cli("user", "add", name, "--role", "viewer")
    link = server.cli("user", "login", name, "--json")
    token = json.loads(link)["token"]
    with server.client() as anonymous:
        return anonymous.post("/api/login", json={"token": token}, headers=headers)


def test_the_browser_token_is_no_cookie_that_other_ports_would_get(server: Server) -> None:
    """The browser's token was a cookie, and cookies are not kept apart by port: a session's
    dev server on 127.0.0.1:PORT, opened in the same browser, was sent the admin's token
    (and behind a TLS proxy the cookie was not even `Secure`). It is now the login's answer,
    kept by the page per origin and sent as a bearer header."""
    logged = _log_in(server, {"X-Forwarded-Proto": "https"})
    assert logged.status_code == 200, logged.text
    token = logged.json()["token"]
    assert token not in logged.headers.get("set-cookie", "")  # at most, an old one is cleared
    with server.client(token) as browser:
        assert browser.get("/api/me").json()["name"] == logged.json()["name"]
    session = server.session(server.project("subprotocol").name)
    server.cli(
        "user", "grant", logged.json()["name"], "--role", "member", "--project", "subprotocol"
    )
    time.sleep(2.5)  # what the server checked is kept 2 s
    url = server.url.replace("http", "ws", 1) + f"/api/sessions/{session.id}/terminal"
    with connect(url, subprotocols=["bw.bearer", token], open_timeout=10) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "bw.bearer"
        socket.send(json.dumps({"type": "input", "data": "echo sub-$((2*3))\r"}))
        assert "sub-6" in _read_until(socket, "sub-6")


def test_login_attempts_cannot_dodge_their_limit_with_forwarded_for(server: Server) -> None:
    """Login attempts were limited per client address, which X-Forwarded-For sets (uvicorn
    trusts it from loopback): a new address per attempt was never limited."""
    with server.client() as anonymous:
        codes = {
            anonymous.post(
                "/api/login",
                json={"token": "bwl_guess"},
                headers={"X-Forwarded-For": f"10.1.{i // 250}.{i % 250}"},
            ).status_code
            for i in range(400)
        }
    assert 429 in codes


def test_a_huge_body_is_refused_before_it_is_read(server: Server) -> None:
    """Any client, without a token, could make the server hold a body of any size in memory
    (FastAPI reads it before it checks the token)."""
    session = server.session(server.project("hugebody").name)
    path = f"/api/sessions/{session.id}/messages"

    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b" " * (1 << 20)

    with server.client() as anonymous:
        streamed = anonymous.post(
            path, content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413, streamed.text
        assert "MiB" in streamed.json()["detail"]
    assert _raw_status(server, path, content_length=1 << 40) == 413  # said, not sent
    with server.client(server.admin_token) as admin:  # a big file still fits
        content = "x" * (5 << 20)
        response = admin.put(f"/api/sessions/{session.id}/files/big.txt", json={"content": content})
        assert response.status_code == 200, response.text


def _raw_status(server: Server, path: str, *, content_length: int) -> int:
    """The status the server answers a POST with that declares a body it never sends."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n".encode()
        )
        return int(conn.recv(4096).split(b" ", 2)[1])


def test_a_project_url_never_shows_its_credentials(server: Server, tmp_path: Path) -> None:
    """A project cloned from `https://user:TOKEN@host/repo.git` showed the URL, token and all,
    to every viewer and to share links."""
    repo = make_repo(tmp_path / "upstream", {"README.md": "# upstream\n"})
    home = tmp_path / "gituser"
    home.mkdir()
    url = "https://ann:ghp_s3cretT0ken@git.example.invalid/team/creds.git"
    (home / ".gitconfig").write_text(f'[url "{repo}"]\n\tinsteadOf = {url}\n')
    env = {**server.env, "HOME": str(home)}
    done = subprocess.run(
        [str(BIN / "branchwork"), "project", "add", url, "--name", "creds"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    session = server.session("creds")
    viewer = server.user("viewer", "creds")
    with server.client(viewer) as client:
        link = client.post(f"/api/sessions/{session.id}/share").json()
        shown = [
            client.get("/api/projects").text,
            client.get("/api/projects/creds").text,
            client.get(f"/api/sessions/{session.id}").text,
        ]
    with server.client(link["token"]) as reader:
        shown.append(reader.get(f"/api/sessions/{session.id}").text)
    for text in shown:
        assert "ghp_s3cretT0ken" not in text and "ann:" not in text
        assert "git.example.invalid/team/creds.git" in text
    assert os.environ.get("HOME") != str(home)


def test_revoking_a_share_link_ends_the_stream_it_opened(server: Server) -> None:
    """A share link's open stream kept sending the session's new events after the link was
    revoked (and a role taken away did not end a member's)."""
    server.project("sharestream")
    session = server.session("sharestream")
    with server.client(server.user("member", "sharestream")) as maker:
        link = maker.post(f"/api/sessions/{session.id}/share").json()

        def revoke_then_work() -> None:
            time.sleep(1.0)
            assert maker.delete(f"/api/tokens/{link['id']}").status_code == 204
            time.sleep(1.5)
            maker.post(f"/api/sessions/{session.id}/commands", json={"command": "echo after"})

        worker = threading.Thread(target=revoke_then_work)
        with server.client(link["token"]) as reader:
            path = f"/api/sessions/{session.id}/events/stream"
            with reader.stream("GET", path, timeout=20) as response:
                assert response.status_code == 200
                worker.start()
                lines, ended = _lines_for(response, seconds=12)
        worker.join()
    assert ended, "the stream of a revoked link went on"
    assert not any("command_started" in line for line in lines)


def _lines_for(response: httpx.Response, seconds: float) -> tuple[list[str], bool]:
    """The lines a stream sends within `seconds` (pings included), and whether it ended."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    for line in response.iter_lines():
        lines.append(line)
        if time.monotonic() > deadline:
            return lines, False
    return lines, True


def test_a_role_taken_away_closes_an_open_terminal(server: Server) -> None:
    """A terminal stayed open (a shell in the session, for as long as the tab lived) after its
    user's role or token was taken away."""
    server.project("termrevoke")
    session = server.session("termrevoke")
    token = server.user("member", "termrevoke")
    with server.client(token) as client:
        name = client.get("/api/me").json()["name"]
    with _terminal(server, session.id, token) as socket:
        socket.send(json.dumps({"type": "input", "data": "echo open-$((1+1))\r"}))  # type: ignore[attr-defined]
        assert "open-2" in _read_until(socket, "open-2")
        server.cli("user", "grant", name, "--project", "termrevoke", "--remove")
        with pytest.raises(ConnectionClosed) as closed:
            _read_until(socket, "never printed", seconds=15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_a_token_cannot_open_streams_without_end(server: Server) -> None:
    """One token could hold any number of event streams open (each counted once by the rate
    limit), each with its memory and socket for as long as it lasted."""
    server.project("manystreams")
    session = server.session("manystreams")
    path = f"/api/sessions/{session.id}/events/stream"
    with server.client(server.user("viewer", "manystreams")) as client, ExitStack() as stack:
        for _ in range(MAX_STREAMS_PER_TOKEN):
            opened = stack.enter_context(client.stream("GET", path, timeout=10))
            assert opened.status_code == 200
        with client.stream("GET", path, timeout=10) as refused:
            assert refused.status_code == 429
            assert "close one" in json.loads(refused.read())["detail"]
    with server.client(server.user("viewer", "manystreams")) as other:  # another token may
        assert _status_of_stream(other, path) == 200


def test_a_user_cannot_start_shells_without_end(server: Server) -> None:
    """Every terminal is a shell process: a member could start any number of them."""
    server.project("manyshells")
    session = server.session("manyshells")
    token = server.user("member", "manyshells")
    with ExitStack() as stack:
        for _ in range(MAX_TERMINALS_PER_USER):
            stack.enter_context(_terminal(server, session.id, token))
        with pytest.raises(InvalidStatus):
            _terminal(server, session.id, token)
    deadline = time.monotonic() + 10  # closed ones are counted out
    while time.monotonic() < deadline:
        try:
            with _terminal(server, session.id, token):
                return
        except InvalidStatus:
            time.sleep(0.3)
    raise AssertionError("a terminal could not be opened after the others closed")


def test_wrong_tokens_are_rate_limited_per_address(server: Server) -> None:
    """Requests with wrong tokens were never limited (the limit is per token, and they have
    none): each cost a read of the store, as many as a client could send."""
    with server.client("bwu_wrong") as wrong:
        codes = [wrong.get("/api/me").status_code for _ in range(300)]
    assert set(codes) == {401, 429}
    assert codes[:50] == [401] * 50  # a few mistakes are just mistakes
    time.sleep(2.5)  # the bucket fills again
    with server.client(server.admin_token) as admin:
        assert admin.get("/api/me").status_code == 200


def test_a_terminal_survives_a_resize_out_of_range(server: Server) -> None:
    """`{"type": "resize", "rows": -1, "cols": 70000}` raised `struct.error` and ended the
    terminal."""
    server.project("termresize")
    session = server.session("termresize")
    with _terminal(server, session.id, server.user("member", "termresize")) as socket:
        for rows, cols in ((-1, 70000), (10**9, 10**9), (0, 0)):
            socket.send(json.dumps({"type": "resize", "rows": rows, "cols": cols}))  # type: ignore[attr-defined]
        socket.send(
            json.dumps(
                {"type": "input", "data": "echo size-$(tput lines 2>/dev/null || stty size)\r"}
            )
        )  # type: ignore[attr-defined]
        assert "size-" in _read_until(socket, "size-2")


def test_a_terminal_survives_frames_it_does_not_expect(server: Server) -> None:
    """A binary frame (or a message that is not the JSON the page sends) ended the terminal."""
    server.project("termframes")
    session = server.session("termframes")
    with _terminal(server, session.id, server.user("member", "termframes")) as socket:
        for odd in (
            b"\x00\xff binary",
            "not json",
            "[1, 2]",
            '{"type": "input", "data": 5}',
            '{"type": "resize"}',
        ):
            socket.send(odd)  # type: ignore[attr-defined]
        socket.send(json.dumps({"type": "input", "data": "echo still-$((5*5))\r"}))  # type: ignore[attr-defined]
        assert "still-25" in _read_until(socket, "still-25")


def test_a_share_links_streams_are_counted_per_reader(server: Server) -> None:
    """A share link is sent to many people: the cap on its streams is per client address, so
    one reader cannot use up everyone's."""
    server.project("sharecap")
    session = server.session("sharecap")
    with server.client(server.user("viewer", "sharecap")) as maker:
        link = maker.post(f"/api/sessions/{session.id}/share").json()
    path = f"/api/sessions/{session.id}/events/stream"
    one, other = {"X-Forwarded-For": "10.9.0.1"}, {"X-Forwarded-For": "10.9.0.2"}
    with server.client(link["token"]) as reader, ExitStack() as stack:
        for _ in range(MAX_STREAMS_PER_TOKEN):
            opened = stack.enter_context(reader.stream("GET", path, headers=one, timeout=10))
            assert opened.status_code == 200
        assert _status_of_stream(reader, path, headers=one) == 429
        assert _status_of_stream(reader, path, headers=other) == 200
