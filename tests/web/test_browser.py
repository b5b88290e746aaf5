"""The web UI in a real Chromium: a session is created, the scripted model answers, a command
asks for approval and its output shows, the diff and the checkpoints open, a revert is made,
the terminal runs what is typed, and switching sessions keeps each one's state."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, Route, expect

from tests.api.conftest import Server
from tests.web.conftest import log_in, screenshot

PROMPT = re.compile(r"[#$]\s")  # the shell is ready for input
GREET = "def greet(name):\n    return f'Hello, {name}!'\n\nprint(greet('web'))\n"
REPLIES = [
    {
        "tool_calls": [
            {
                "name": "write_file",
                "arguments": {
                    "path": "greet.py",
                    "content": GREET,
                },
            }
        ]
    },
    {"tool_calls": [{"name": "run_command", "arguments": {"command": "python3 greet.py"}}]},
    {"reasoning": "The command printed the greeting.", "text": "Done: greet.py prints Hello, web!"},
]


def _script(tmp_path: Path) -> str:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(REPLIES))
    return f"scripted:{path}"


def _new_session(page: Page, title: str) -> None:
    page.click("#new-session")
    page.fill("#new-session-form input[name=title]", title)
    page.click("#new-session-form button[type=submit]")
    expect(page.locator(".session:not([hidden]) h1.title")).to_have_text(title)


def test_a_session_in_the_browser(server: Server, browser: Browser, tmp_path: Path) -> None:
    server.project("webapp", {"README.md": "# web app\n"})
    page = log_in(server, browser, "webber", "member", "webapp")
    page.goto(f"{server.url}/#/p/webapp")
    _new_session(page, "greeting")
    screenshot(page, "new-session")
    view = page.locator(".session:not([hidden])")

    view.locator("textarea[name=text]").fill("Write greet.py and run it.")
    view.locator("input[name=model]").fill(_script(tmp_path))
    view.locator(".composer button[type=submit]").click()
    approval = view.locator(".card.approval")
    expect(approval).to_contain_text("python3 greet.py", timeout=20_000)
    expect(page.locator("#session-list .badge.warn")).to_have_text("approval")
    screenshot(page, "session-approval")
    approval.locator("button.approve").click()
    expect(view.locator("details.command .output")).to_contain_text("Hello, web!", timeout=20_000)
    expect(view.locator(".msg.agent")).to_have_text("Done: greet.py prints Hello, web!")
    expect(view.locator("details.file summary")).to_contain_text("greet.py")
    expect(view.locator(".activity")).to_have_text("idle")
    screenshot(page, "session-chat")

    view.locator(".tabs button[data-tab=diff]").click()
    diff = view.locator(".diff-view code")
    expect(diff).to_contain_text("+def greet(name):")
    expect(diff.locator(".hljs-addition").first).to_be_visible()
    screenshot(page, "session-diff")

    view.locator(".tabs button[data-tab=timeline]").click()
    expect(view.locator(".events tbody tr").first).to_be_visible()
    view.locator(".filters input[data-group=messages]").uncheck()
    expect(view.locator(".events tbody td:text-is('user_message')")).to_have_count(0)
    expect(view.locator(".events tbody td:text-is('command_finished')")).to_have_count(1)
    screenshot(page, "session-timeline")

    view.locator(".tabs button[data-tab=checkpoints]").click()
    checkpoints = view.locator(".checkpoint-list li")
    expect(checkpoints.nth(1)).to_contain_text("Write greet.py")
    screenshot(page, "session-checkpoints")
    page.on("dialog", lambda dialog: dialog.accept())
    checkpoints.first.locator("button.revert").click()  # back to the base: greet.py goes
    expect(page.locator("#toast")).to_contain_text("reverted")
    expect(checkpoints).to_have_count(3)
    view.locator(".tabs button[data-tab=diff]").click()
    expect(diff).to_have_text("(no changes)")

    view.locator(".tabs button[data-tab=terminal]").click()
    view.locator("button[data-action=open-terminal]").click()
    expect(view.locator(".xterm-rows")).to_contain_text(PROMPT, timeout=15_000)
    page.keyboard.type("echo hello-$((6*7))\n")
    expect(view.locator(".xterm-rows")).to_contain_text("hello-42", timeout=15_000)
    screenshot(page, "session-terminal")

    _new_session(page, "second")
    page.click("#session-list a:has-text('greeting')")
    first = page.locator(".session:not([hidden])")
    expect(first.locator("h1.title")).to_have_text("greeting")
    expect(first.locator(".tabs button.on")).to_have_text("Terminal")  # its state was kept
    expect(first.locator(".xterm-rows")).to_contain_text("hello-42")
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_terminal_transcript_is_recorded(server: Server, browser: Browser) -> None:
    server.project("termrec")
    session = server.session("termrec", "shell")
    page = log_in(server, browser, "typist", "member", "termrec")
    page.goto(f"{server.url}/#/s/{session.id}")
    view = page.locator(".session:not([hidden])")
    view.locator(".tabs button[data-tab=terminal]").click()
    view.locator("button[data-action=open-terminal]").click()
    expect(view.locator(".xterm-rows")).to_contain_text(PROMPT, timeout=15_000)
    page.keyboard.type("echo recorded-$((2+3)) > note.txt; cat note.txt\n")
    expect(view.locator(".xterm-rows")).to_contain_text("recorded-5", timeout=15_000)
    page.close()  # the socket closes: the transcript is recorded, a checkpoint taken
    with server.workspace() as ws:
        for _ in range(50):
            closed = ws.events(session, kinds=["terminal_closed"])
            if closed:
                break
            time.sleep(0.1)
        assert closed and "recorded-5" in closed[0].payload.transcript_tail  # type: ignore[union-attr]
        assert ws.events(session, kinds=["terminal_opened"])[0].payload.user == "typist"  # type: ignore[union-attr]
        assert "note.txt" in ws.diff(session)


def test_a_session_asked_for_several_times_at_once_is_shown_in_one_view(
    server: Server, browser: Browser
) -> None:
    """A link opened while the page starts routes twice (CI saw two views of one session,
    both shown): each load of a view is shared by those asking for it meanwhile."""
    server.project("twice")
    session = server.session("twice", "one")
    page = log_in(server, browser, "twin", "member", "twice")
    asks = ", ".join(f"showSession('{key}')" for key in (session.id, session.id, session.short_id))
    page.evaluate(f"Promise.all([{asks}])")
    expect(page.locator(".session")).to_have_count(1)
    expect(page.locator(".session:not([hidden]) h1.title")).to_have_text("one")
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_session_asked_for_last_is_shown_even_when_an_earlier_one_loads_later(
    server: Server, browser: Browser
) -> None:
    """Two sessions clicked in a row: the first, still loading, must not replace the second
    when it arrives (its answer is held back here to make it arrive last)."""
    server.project("clicks")
    first = server.session("clicks", "first")
    second = server.session("clicks", "second")
    page = log_in(server, browser, "clicker", "member", "clicks")

    def slow(route: Route) -> None:
        time.sleep(0.8)
        route.continue_()

    page.route(f"**/api/sessions/{first.id}", slow)
    page.evaluate(f"showSession('{first.id}'); showSession('{second.id}')")
    shown = page.locator(".session:not([hidden]) h1.title")
    expect(shown).to_have_text("second")
    expect(page.locator(".session")).to_have_count(2)  # the first arrived, and stays hidden
    expect(shown).to_have_text("second")
    assert page.evaluate("state.current.id") == second.id
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_share_link_shows_the_session_read_only(server: Server, browser: Browser) -> None:
    server.project("sharing")
    session = server.session("sharing", "to show")
    token = server.user("member", "sharing")
    with server.client(token) as client:
        link = client.post(f"/api/sessions/{session.id}/share").json()["url"]
    page = browser.new_page()
    page.goto(link)
    view = page.locator(".session:not([hidden])")
    expect(view.locator("h1.title")).to_have_text("to show")
    expect(view.locator(".composer")).to_be_hidden()
    expect(page.locator("#who")).to_contain_text("read only")
