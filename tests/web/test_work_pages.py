"""The tasks and proposals pages in a real Chromium: a task is created, two trials run (real
workers, the scripted model) and show side by side with their checks, one is promoted; a
proposal is reviewed with a line comment, refused by its policy (the reason shown), approved
and merged; buttons follow the role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.api.conftest import Server
from tests.conftest import git
from tests.web.conftest import log_in, screenshot

CALC = "def add(a, b):\n    return a - b\n"
CHECK = "import calc\nassert calc.add(2, 2) == 4\nprint('ok')\n"
FIXED = "def add(a, b):\n    return a + b\n"


def _script(where: Path, name: str, content: str, answer: str) -> str:
    write = {"name": "write_file", "arguments": {"path": "calc.py", "content": content}}
    replies: list[Any] = [{"tool_calls": [write]}, answer]
    path = where / f"{name}.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def _calc_project(server: Server, name: str) -> None:
    files = {"calc.py": CALC, "check.py": CHECK, "TODO.md": "- TODO: write the docs\n"}
    server.project(name, {**files, ".gitignore": "__pycache__/\n"})
    with server.workspace() as ws:
        ws.configure_project(name, sandbox="local")


def test_a_task_with_trials_side_by_side(server: Server, browser: Browser, tmp_path: Path) -> None:
    _calc_project(server, "tasked")
    page = log_in(server, browser, "tasker", "member", "tasked")
    page.goto(f"{server.url}/#/p/tasked/tasks")
    page.click("button.suggest-button")
    expect(page.locator(".suggestions li")).to_contain_text("write the docs")
    page.fill(".new-task input[name=title]", "Fix add")
    page.fill(".new-task input[name=check]", "python3 check.py")
    page.click(".new-task button[type=submit]")
    expect(page.locator(".work.task h1")).to_have_text("#1 Fix add")

    right = _script(tmp_path, "right", FIXED, "Fixed the sign.")
    wrong = _script(tmp_path, "wrong", "def add(a, b):\n    return b - a\n", "Swapped them.")
    page.fill(".start-trials input[name=models]", f"{right}, {wrong}")
    page.click(".start-trials button[type=submit]")
    cards = page.locator(".trial")
    expect(cards).to_have_count(2)
    for n in (1, 2):  # the project's stream redraws the page as the trials finish
        expect(page.locator(f".trial[data-trial='{n}'] .badge")).to_have_text(
            "done", timeout=60_000
        )
    page.click("button.compare")
    expect(page.locator(".trial[data-trial='1'] .check")).to_contain_text("check passed just now")
    expect(page.locator(".trial[data-trial='2'] .check")).to_contain_text("check failed")
    expect(page.locator(".trial[data-trial='1'] .diffstat")).to_have_text("1 file(s), +1 −1")
    expect(page.locator(".trial[data-trial='1'] .approach")).to_contain_text("calc.py")
    expect(page.locator(".trial[data-trial='1'] a.session-link")).to_be_visible()
    page.click(".trials-diff button")
    expect(page.locator(".trials-diff code")).to_contain_text("b - a")
    screenshot(page, "task-trials")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".trial[data-trial='1'] button.promote")
    expect(page.locator(".work.proposal h1")).to_contain_text("#1")  # its proposal opens
    page.goto(f"{server.url}/#/p/tasked/tasks")
    expect(page.locator("tr[data-task='1'] .badge")).to_have_text("done")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_proposal_reviewed_refused_approved_and_merged(server: Server, browser: Browser) -> None:
    _calc_project(server, "reviewed")
    session = server.session("reviewed", "sign fix")
    with server.workspace() as ws:
        ws.write_file(session.id, "calc.py", FIXED)
        ws.propose(session.id, title="Fix the sign")
        ws.set_policy("reviewed", required_checks=["test -f NOTES.md"])
    viewer = log_in(server, browser, "reader", "viewer", "reviewed")
    viewer.goto(f"{server.url}/#/p/reviewed/proposals/1")
    expect(viewer.locator(".work.proposal h1")).to_have_text("#1 Fix the sign")
    expect(viewer.locator("button.approve")).to_have_count(0)
    expect(viewer.locator("button.add-comment")).to_have_count(0)
    viewer.close()

    page = log_in(server, browser, "keeper", "maintainer", "reviewed")
    page.goto(f"{server.url}/#/p/reviewed/proposals")
    page.click("tr[data-proposal='1'] a")
    proposal = page.locator(".work.proposal")
    expect(proposal.locator(".gate .reasons")).to_contain_text("0 of 1 required approval")
    expect(proposal.locator("button.merge")).to_be_disabled()
    expect(proposal.locator(".origin").first).to_contain_text("write")

    added = proposal.locator("tr.add[data-line='2']")
    added.hover()
    added.locator("button.add-comment").click()
    proposal.locator(".comment-form textarea").fill("Is there a test for this?")
    proposal.locator(".comment-form button[type=submit]").click()
    expect(proposal.locator(".comment")).to_contain_text("Is there a test for this?")

    proposal.locator("button.approve").click()
    expect(proposal.locator(".work-head .badge")).to_have_text("approved")
    expect(proposal.locator(".gate .ready")).to_be_visible()
    screenshot(page, "proposal-review")
    page.locator(".work.proposal button.merge").click()  # the required check fails: refused
    expect(page.locator(".refusal")).to_contain_text("required check `test -f NOTES.md` failed")
    expect(page.locator(".checks .status.failed")).to_contain_text("test -f NOTES.md (merge")
    screenshot(page, "proposal-refused")

    with server.workspace() as ws:  # the session adds what the check wants: a new head
        ws.write_file(session.id, "NOTES.md", "tested by hand\n")
    page.reload()
    proposal = page.locator(".work.proposal")
    expect(proposal.locator(".gate .reasons")).to_contain_text("1 on an older head")
    proposal.locator("button.approve").click()
    expect(proposal.locator(".gate .ready")).to_be_visible()
    proposal.locator("button.merge").click()
    expect(page.locator(".work.proposal .work-head .badge")).to_have_text("merged")
    expect(page.locator(".gate .merged")).to_contain_text("Merged as")
    assert "a + b" in git(server.home.parent / "reviewed", "show", "main:calc.py")
    assert page.errors == []  # type: ignore[attr-defined]


def test_fork_from_a_checkpoint_opens_the_new_session(server: Server, browser: Browser) -> None:
    server.project("forking")
    session = server.session("forking", "first try")
    with server.workspace() as ws:
        ws.write_file(session.id, "plan.md", "plan A\n")
    page = log_in(server, browser, "forker", "member", "forking")
    page.goto(f"{server.url}/#/s/{session.id}")
    view = page.locator(".session:not([hidden])")
    view.locator(".tabs button[data-tab=checkpoints]").click()
    page.on("dialog", lambda dialog: dialog.accept("second try"))
    view.locator(".checkpoint-list button.fork").first.click()
    expect(page.locator(".session:not([hidden]) h1.title")).to_have_text("second try")
    expect(page.locator(".session:not([hidden]) .note").first).to_contain_text("forked")
    with server.workspace() as ws:
        (fork,) = [s for s in ws.sessions("forking") if s.id != session.id]
        assert fork.parent_id == session.id and ws.read_file(fork, "plan.md") == "plan A\n"
    assert page.errors == []  # type: ignore[attr-defined]
