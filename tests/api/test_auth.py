"""Authentication and roles through a real server: no token, a wrong token, too low a role,
two users on two projects, share links, login links, rate limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.api.conftest import Server


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body  # type: ignore[no-any-return]


def test_every_call_is_refused_without_a_token(server: Server) -> None:
    project = server.project("noauth")
    session = server.session("noauth")
    with server.client() as anonymous:
        for path in (
            "/api/projects",
            f"/api/projects/{project.id}/sessions",
            f"/api/sessions/{session.id}",
            f"/api/sessions/{session.id}/events",
        ):
            body = _problem(anonymous.get(path), 401)
            assert "Bearer" in str(body["detail"])
        _problem(anonymous.post(f"/api/sessions/{session.id}/messages", json={"text": "hi"}), 401)


def test_a_wrong_or_revoked_token_is_refused(server: Server) -> None:
    with server.client("bwu_not-a-token") as wrong:
        _problem(wrong.get("/api/me"), 401)
    token = server.user("viewer")
    with server.client(token) as client:
        assert client.get("/api/me").status_code == 200
        name = client.get("/api/me").json()["name"]
    server.cli("user", "revoke", name)
    with server.client(token) as client:  # a server keeps what it checked for 2 s at most
        deadline = time.monotonic() + 5
        while client.get("/api/me").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        _problem(client.get("/api/me"), 401)


def test_too_low_a_role_is_refused_with_what_to_ask_for(server: Server) -> None:
    server.project("roles")
    session = server.session("roles")
    viewer = server.user("viewer", "roles")
    with server.client(viewer) as client:
        assert client.get(f"/api/sessions/{session.id}").status_code == 200
        body = _problem(
            client.post(f"/api/sessions/{session.id}/messages", json={"text": "x"}), 403
        )
        assert "member" in str(body["detail"]) and "user grant" in str(body["detail"])
        _problem(client.put(f"/api/sessions/{session.id}/files/a.txt", json={"content": "x"}), 403)
        _problem(client.post("/api/users", json={"name": "eve"}), 403)
    member = server.user("member", "roles")
    with server.client(member) as client:
        _problem(client.post("/api/users", json={"name": "eve"}), 403)
        written = client.put(f"/api/sessions/{session.id}/files/a.txt", json={"content": "x\n"})
        assert written.status_code == 200, written.text


def test_two_users_on_two_projects_never_see_each_others_sessions(server: Server) -> None:
    server.project("alpha")
    server.project("beta")
    mine, theirs = server.session("alpha", "mine"), server.session("beta", "theirs")
    alice, bob = server.user("member", "alpha"), server.user("member", "beta")
    with server.client(alice) as client:
        assert [p["name"] for p in client.get("/api/projects").json()] == ["alpha"]
        assert [s["id"] for s in client.get("/api/projects/alpha/sessions").json()] == [mine.id]
        _problem(client.get("/api/projects/beta/sessions"), 404)
        for path in ("", "/events", "/diff", "/files", "/checkpoints", "/export"):
            _problem(client.get(f"/api/sessions/{theirs.id}{path}"), 404)
        _problem(client.get(f"/api/sessions/{theirs.id}/events/stream"), 404)
        _problem(client.post(f"/api/sessions/{theirs.id}/messages", json={"text": "x"}), 404)
        _problem(client.post(f"/api/sessions/{theirs.id}/share"), 404)
    with server.client(bob) as client:
        assert [p["name"] for p in client.get("/api/projects").json()] == ["beta"]
        _problem(client.get(f"/api/sessions/{mine.id}"), 404)


def test_a_share_link_reads_its_one_session_and_nothing_else(server: Server) -> None:
    server.project("shared")
    shared, other = server.session("shared", "shared"), server.session("shared", "other")
    member = server.user("member", "shared")
    with server.client(member) as client:
        link = client.post(f"/api/sessions/{shared.id}/share").json()
    assert link["url"].endswith(f"/share#{link['token']}")
    with server.client(link["token"]) as client:
        assert client.get(f"/api/sessions/{shared.id}").json()["session"]["id"] == shared.id
        events = client.get(f"/api/sessions/{shared.id}/events").json()["events"]
        assert events[0]["kind"] == "session_created"
        assert client.get(f"/api/sessions/{shared.id}/export?format=jsonl").status_code == 200
        _problem(client.get(f"/api/sessions/{other.id}"), 404)
        _problem(client.get(f"/api/sessions/{other.id}/events"), 404)
        _problem(client.get("/api/projects"), 403)
        _problem(client.get("/api/projects/shared/sessions"), 403)
        _problem(client.post(f"/api/sessions/{shared.id}/messages", json={"text": "x"}), 403)
        _problem(client.post(f"/api/sessions/{shared.id}/revert", json={"to": "base"}), 403)
        _problem(client.post(f"/api/sessions/{shared.id}/share"), 403)
    with server.client(member) as client:
        assert client.delete(f"/api/tokens/{link['id']}").status_code == 204
    with server.client(link["token"]) as client:
        _problem(client.get(f"/api/sessions/{shared.id}"), 401)


def test_a_login_link_gives_a_browser_token_once(server: Server) -> None:
    server.cli("user", "add", "browser-user", "--role", "viewer")
    link = server.cli("user", "login", "browser-user", "--url", server.url).strip()
    token = link.split("#", 1)[1]
    with server.client() as client:
        logged = client.post("/api/login", json={"token": token})
        assert logged.status_code == 200 and logged.json()["name"] == "browser-user"
        browser = logged.json()["token"]
        assert browser.startswith("bwb_") and browser not in logged.headers.get("set-cookie", "")
        mine = {"Authorization": f"Bearer {browser}"}
        assert client.get("/api/me", headers=mine).json()["name"] == "browser-user"
        client.cookies.set("bw_session", browser)  # the cookie of an earlier version …
        cross_site = client.post("/api/logout", headers={"Origin": "http://evil.example"})
        _problem(cross_site, 403)  # … is refused from another site
    with server.client() as again:
        _problem(again.post("/api/login", json={"token": token}), 401)
        _problem(again.get("/api/me", headers={"Authorization": f"Bearer {token}"}), 401)


def test_a_token_over_its_rate_is_told_when_to_retry(server: Server) -> None:
    """Sent faster than the refill (8 clients at once, whatever the machine's load), a token
    gets its burst of 100, then 429s with a Retry-After; never more than the bucket allows."""
    token = server.user("viewer")

    with server.client(token) as client, ThreadPoolExecutor(max_workers=8) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda _: client.get("/api/me"), range(600)))
        elapsed = time.monotonic() - started
    allowed = sum(1 for a in answers if a.status_code == 200)
    refused = [a for a in answers if a.status_code == 429]
    assert allowed + len(refused) == len(answers)
    assert 100 <= allowed <= 100 + 50 * elapsed + 1  # the burst, then the rate, no more
    assert refused and all(int(a.headers["retry-after"]) >= 1 for a in refused)
