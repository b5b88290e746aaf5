"""The web UI used hard (docs/server.md, "Attack review"): each test failed before its fix."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.api.conftest import Server
from tests.web.conftest import log_in


def test_visiting_many_sessions_never_starves_the_browser_of_connections(
    server: Server, browser: Browser
) -> None:
    """Each session visited kept its event stream open; a browser opens 6 connections to one
    server over HTTP/1.1, so the 6th session visited never loaded (nor did anything after)."""
    server.project("manyviews")
    sessions = [server.session("manyviews", f"view {i}") for i in range(9)]
    page = log_in(server, browser, "hopper", "member", "manyviews")
    for session in sessions:
        page.goto(f"{server.url}/#/s/{session.id}")
        view = page.locator(".session:not([hidden])")
        expect(view.locator("h1.title")).to_have_text(session.title, timeout=10_000)
    with server.client(server.admin_token) as admin:  # a hidden view catches up when shown
        done = admin.post(
            f"/api/sessions/{sessions[0].id}/commands", json={"command": "echo back-$((3*4))"}
        )
        assert done.status_code == 200, done.text
    page.goto(f"{server.url}/#/s/{sessions[0].id}")
    view = page.locator(".session:not([hidden])")
    expect(view.locator("h1.title")).to_have_text("view 0")
    expect(view).to_contain_text("back-12", timeout=10_000)
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_browser_keeps_its_token_from_other_ports(server: Server, browser: Browser) -> None:
    """The login gave a cookie, which the browser also sends to every other port of the host
    (a session's dev server on 127.0.0.1:PORT). Now the page keeps the token per origin."""
    server.project("noports")
    session = server.session("noports", "kept apart")
    page = log_in(server, browser, "turing", "member", "noports")
    assert [c for c in page.context.cookies() if c["name"] == "bw_session"] == []
    page.goto(f"{server.url}/#/s/{session.id}")
    expect(page.locator(".session:not([hidden]) h1.title")).to_have_text("kept apart")
    page.click("#logout")
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("#main")).to_contain_text("not logged in")
    assert page.evaluate("localStorage.getItem('bw_token')") is None
