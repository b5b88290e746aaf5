"""The conflict radar on real sessions: same function, same lines, same files, and main."""

from __future__ import annotations

from pathlib import Path

from branchwork import Workspace
from tests.proposals.conftest import APP, SessionMaker, commit_on_main

# greet() spans lines 1-3: one session changes its line 2, another its line 3.
GREETING = APP.replace('"hello"', '"howdy"')
RETURN = APP.replace('f"{greeting}, {name}"', 'f"{greeting}, {name}!"')


def test_the_radar_finds_two_sessions_editing_the_same_function(
    ws: Workspace, make_session: SessionMaker
) -> None:
    first = make_session("greeting word", {"app.py": GREETING})
    second = make_session("exclamation", {"app.py": RETURN})
    third = make_session("docs", {"docs.md": "docs\n"})
    report = ws.conflicts()
    assert {c.session.id for c in report.sessions} == {first.id, second.id, third.id}
    (overlap,) = report.overlaps
    assert {overlap.first, overlap.second} == {first.id, second.id}
    assert overlap.files == ["app.py"] and overlap.definitions == ["app.py: greet"]
    assert report.with_main == []
    assert report.order[0].session.id == third.id
    assert "touches nothing" in report.order[0].reason
    assert "app.py: greet" in report.order[1].reason


def test_the_radar_sees_uncommitted_edits_and_real_conflicts(
    ws: Workspace, make_session: SessionMaker
) -> None:
    first = make_session("one", {"app.py": GREETING})
    second = make_session("two")
    (Path(second.worktree) / "app.py").write_text(APP.replace('"hello"', '"hey"'))  # not saved
    (overlap,) = ws.conflicts().overlaps
    assert overlap.level == "conflict"
    assert [(s.path, s.lines) for s in overlap.conflicts] == [("app.py", [(2, 2)])]
    assert {overlap.first, overlap.second} == {first.id, second.id}


def test_the_radar_compares_each_session_with_what_main_gained(
    ws: Workspace, make_session: SessionMaker, checkout: Path
) -> None:
    behind = make_session("behind", {"app.py": GREETING})
    clear = make_session("clear", {"other.txt": "x\n"})
    commit_on_main(checkout, "app.py", APP.replace('"hello"', '"hi there"'))
    report = ws.conflicts()
    (with_main,) = report.with_main
    assert with_main.first == behind.id and with_main.second == "main"
    assert with_main.level == "conflict" and with_main.definitions == ["app.py: greet"]
    assert [s.session.id for s in report.order] == [clear.id, behind.id]
    assert "bring it up to date with main" in report.order[-1].reason
