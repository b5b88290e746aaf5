"""Browser tests: Debian's Chromium (headless), driven by Playwright for Python, against a
real server. Chromium comes from the `chromium` package (`make test` installs it); Playwright's
own browser download is never used."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api.conftest import Server, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("web"))
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def log_in(server: Server, browser: Browser, name: str, role: str, project: str) -> Page:
    """A page logged in (through a one-time login link) as a new user."""
    server.cli("user", "add", name, "--role", role, "--project", project)
    link = server.cli("user", "login", name, "--url", server.url).strip()
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(link)
    page.wait_for_url(f"{server.url}/")
    page.wait_for_selector("#who:has-text('" + name + "')")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def screenshot(page: Page, name: str) -> None:
    """Saved when WEB_SCREENSHOTS names a directory (docs/screenshots is made so)."""
    where = os.environ.get("WEB_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / f"{name}.png"))
