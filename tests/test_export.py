"""`branchwork export`: a session's whole history as JSON lines or one self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchwork import InvalidInput, Workspace
from tests.conftest import bw


def test_jsonl_export_is_the_whole_log_as_log_json_prints_it(ws: Workspace, repo: Path) -> None:
    session = ws.new_session(ws.add_project(repo), title="export me")
    ws.write_file(session, "notes.md", "hello\n")
    ws.run(session, "echo printed")
    exported = bw("export", session.id, "--format", "jsonl", cwd=repo).stdout
    logged = bw("log", session.id, "--json", cwd=repo).stdout
    assert exported == logged
    kinds = [json.loads(line)["kind"] for line in exported.splitlines()]
    assert kinds[0] == "session_created" and "command_finished" in kinds


def test_html_export_holds_everything_readable_offline(
    ws: Workspace, repo: Path, tmp_path: Path
) -> None:
    session = ws.new_session(ws.add_project(repo), title="<b>escaped</b> title")
    ws.write_file(session, "app.py", "print('changed')\n")
    long_output = "".join(f"line {i}\n" for i in range(6000))  # beyond the event's head/tail
    ws.run(session, ["python3", "-c", f"print({long_output!r}, end='')"])
    target = tmp_path / "session.html"
    bw("export", session.id, "--format", "html", "--output", str(target), cwd=repo)
    page = target.read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http" not in page.split("</style>", 1)[0]
    assert "&lt;b&gt;escaped&lt;/b&gt; title" in page
    assert "line 0\n" in page and "line 3000\n" in page and "line 5999" in page
    assert "+print(&#x27;changed&#x27;)" in page


def test_an_unknown_format_is_refused_with_the_known_ones(ws: Workspace, repo: Path) -> None:
    session = ws.new_session(ws.add_project(repo))
    with pytest.raises(InvalidInput, match="jsonl, html"):
        ws.export(session, fmt="pdf")
