"""Search inside sessions (overlays), capped results, and regexes without a literal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from branchwork import Workspace
from branchwork.index import CodeIndex
from branchwork.index._regex import trigram_prefilter
from branchwork.service import files, scope, search
from tests.conftest import RepoFactory, bw
from tests.index.conftest import new_repo

CODE = {
    "app/models.py": "class Order:\n    code = 'x123'\n    total = 1999\n",
    "app/views.py": "def show(order):\n    ref = 'x042' + 'ab'\n    limit = 50\n",
    "app/util.py": "def pad(n):\n    return f'x{n:03d}'\n",
    "docs/notes.txt": "codes look like x777 and X901, never x12 or x1234\n",
    "README.md": "# demo\nretries = 3\n",
}
PATTERNS = [r"\bx\d{3}\b", r"^\s*\w+\s*=\s*\d{2,}$", r"[.']\w+'\)?$", r"\d\d\d\d"]


def _git_grep(worktree: Path, pattern: str, *extra: str) -> set[tuple[str, int]]:
    out = subprocess.run(
        ["git", "grep", "-n", "-I", "-P", "-i", *extra, "-e", pattern],
        cwd=worktree,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = set()
    for line in out.splitlines():
        path, number, _ = line.split(":", 2)
        found.add((path, int(number)))
    return found


def _lines(hits: list) -> set[tuple[str, int]]:  # type: ignore[type-arg]
    return {(h.path, line) for h in hits for line in h.match_lines}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_regex_without_a_literal_finds_what_git_grep_finds(
    tmp_path: Path, index: CodeIndex, pattern: str
) -> None:
    repo = new_repo(tmp_path / "repo", CODE)
    tree = index.index_view(repo, "HEAD").tree
    found = index.search(tree, pattern, regex=True, limit=1000)
    assert _lines(found) == _git_grep(repo, pattern)


def test_class_regexes_use_trigrams_and_wide_ones_git_grep() -> None:
    expression = trigram_prefilter(r"\bx\d{3}\b")
    assert expression is not None and '"x00"' in expression and '"x99"' in expression
    assert trigram_prefilter(r"^\s*\w+\s*=\s*\d{2,}$") is None  # handed to git grep


@pytest.mark.parametrize("pattern", PATTERNS)
def test_inside_a_session_a_regex_sees_its_files_as_git_grep_sees_its_worktree(
    ws: Workspace, repo_factory: RepoFactory, pattern: str
) -> None:
    session = ws.new_session(ws.add_project(repo_factory(CODE)))
    worktree = Path(session.worktree)
    (worktree / "app" / "views.py").write_text("def show(order):\n    ref = 'x555'\n")
    (worktree / "app" / "new.py").write_text("LIMIT = 4096\ncode = 'x321'\n")
    (worktree / "app" / "util.py").unlink()
    found = ws.search(pattern, session=session, regex=True, limit=None)
    assert _lines(found.hits) == _git_grep(worktree, pattern, "--untracked")


def test_capped_results_say_so_and_how_to_see_more(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    many = {f"pkg/m{i}.py": f"def f{i}():\n    return QuerySet()\n" for i in range(30)}
    repo = repo_factory(many)
    project = ws.add_project(repo)
    found = ws.search("QuerySet", project=project, limit=5)
    assert (len(found.hits), found.capped, found.limit) == (5, True, 5)
    assert "--limit" in found.more and "--all" in found.more
    everything = ws.search("QuerySet", project=project, limit=None)
    assert (len(everything.hits), everything.capped) == (30, False) and everything.more == ""
    exact = ws.search("QuerySet", project=project, limit=30)
    assert not exact.capped
    refs = ws.references("QuerySet", project=project, limit=10)
    assert (len(refs.references), refs.capped) == (10, True)
    assert len(ws.references("QuerySet", project=project, limit=None).references) == 30
    shown = bw("search", "QuerySet", "--limit", "3", cwd=repo)
    assert "there are more" in shown.stderr and "--all" in shown.stderr
    data = json.loads(bw("search", "QuerySet", "--all", "--json", cwd=repo).stdout)
    assert len(data["hits"]) == 30 and data["capped"] is False and data["limit"] is None
    refs_json = json.loads(
        bw("symbols", "QuerySet", "-r", "--limit", "4", "--json", cwd=repo).stdout
    )
    assert refs_json["capped"] is True and len(refs_json["references"]) == 4


def test_within_one_use_case_branchworks_own_writes_update_the_view_in_place(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    session = ws.new_session(ws.add_project(repo_factory(CODE)))
    opened = scope.open_scope(ws._services, session)
    assert search.search_session(opened, "zebra").hits == []
    files.write_file(opened, "app/zoo.py", "ZEBRA = 1\n", checkpoint=False)
    [hit] = search.search_session(opened, "zebra").hits
    assert (hit.path, hit.line) == ("app/zoo.py", 1)
    files.edit_file(opened, "app/zoo.py", "ZEBRA", "OKAPI", checkpoint=False)
    assert search.search_session(opened, "zebra").hits == []
    assert [h.path for h in search.search_session(opened, "okapi").hits] == ["app/zoo.py"]
    main = search.search_main(ws._services, opened.project, "okapi")
    assert main.hits == []  # main never sees a session's files


def test_an_overlay_without_its_worktree_greps_the_base_and_matches_its_own_files(
    ws: Workspace, repo_factory: RepoFactory
) -> None:
    session = ws.new_session(ws.add_project(repo_factory(CODE)))
    worktree = Path(session.worktree)
    (worktree / "app" / "views.py").write_text("def show(order):\n    limit = 77\n")
    (worktree / "app" / "new.py").write_text("LIMIT = 4096\n")
    (worktree / "README.md").unlink()
    ws.search("warm up the view", session=session)
    index = ws._services.code_index()
    pattern = PATTERNS[1]
    found = index.search(f"overlay:{session.id}", pattern, regex=True, limit=1000)
    assert _lines(found) == _git_grep(worktree, pattern, "--untracked")
