"""Full-text search: exact lines, ranking inputs, regex, globs, languages, references."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.index import CodeIndex
from branchwork.index._chunks import CHUNK_LINES, CHUNK_STEP
from branchwork.index._regex import regex_prefilter, required_literals
from tests.index.conftest import new_repo

LONG = "".join(f"line {n}\n" for n in range(1, 301)).replace("line 250\n", "the NEEDLE here\n")
OVERLAP = "".join(f"row {n}\n" for n in range(1, 241)).replace("row 117\n", "overlap_marker\n")
FILES: dict[str, str | bytes] = {
    "README.md": "# demo\n\nUse `render_page` to draw.\n",
    "src/app.py": "from src.view import render_page\n\n\ndef main():\n    render_page('home')\n",
    "src/view.py": "def render_page(name):\n    return f'<p>{name}</p>'\n\n\ndef render_pages():\n"
    "    pass\n",
    "web/page.ts": "export function renderPage(name: string): string {\n  return name;\n}\n",
    "docs/long.txt": LONG,
    "docs/overlap.txt": OVERLAP,
    "ab.txt": "xy\nab cd\nAB\n",
}


@pytest.fixture
def tree(tmp_path: Path, index: CodeIndex) -> str:
    return index.index_view(new_repo(tmp_path / "repo", FILES), "HEAD").tree


def test_hits_give_the_exact_matching_line_deep_in_a_file(index: CodeIndex, tree: str) -> None:
    [hit] = index.search(tree, "needle")

    assert (hit.path, hit.line, hit.match_lines, hit.snippet) == (
        "docs/long.txt", 250, (250,), "the NEEDLE here"
    )  # fmt: skip
    assert hit.start_line <= 250 <= hit.end_line and hit.source == "code"
    assert len(hit.blob_sha) == 40 and hit.language == "text"


def test_a_match_in_the_overlap_of_two_chunks_is_reported_once(index: CodeIndex, tree: str) -> None:
    hits = index.search(tree, "overlap_marker")

    assert CHUNK_STEP < 117 <= CHUNK_LINES  # in both the first and the second chunk
    assert [(h.path, h.line) for h in hits] == [("docs/overlap.txt", 117)]


def test_all_matching_lines_of_a_chunk_are_listed(index: CodeIndex, tree: str) -> None:
    [hit] = index.search(tree, "render_page", path_glob="src/view.py")

    assert hit.line == 1 and hit.match_lines == (1, 5)


def test_case_sensitivity_is_a_choice(index: CodeIndex, tree: str) -> None:
    assert len(index.search(tree, "needle")) == 1
    assert index.search(tree, "needle", case_sensitive=True) == []
    assert len(index.search(tree, "NEEDLE", case_sensitive=True)) == 1


def test_queries_shorter_than_three_characters_scan(index: CodeIndex, tree: str) -> None:
    [hit] = index.search(tree, "ab", case_sensitive=True)
    assert (hit.path, hit.match_lines) == ("ab.txt", (2,))
    [hit] = index.search(tree, "ab")
    assert hit.match_lines == (2, 3)


def test_regex_search_verifies_every_candidate(index: CodeIndex, tree: str) -> None:
    hits = index.search(tree, r"def render_\w+\(name\)", regex=True)
    assert [(h.path, h.line) for h in hits] == [("src/view.py", 1)]
    no_literal = index.search(tree, r"^\s+pass$", regex=True)
    assert [(h.path, h.line) for h in no_literal] == [("src/view.py", 6)]
    alternatives = index.search(tree, r"renderPage|overlap_marker", regex=True)
    assert {h.path for h in alternatives} == {"web/page.ts", "docs/overlap.txt"}


def test_path_glob_and_language_filters(index: CodeIndex, tree: str) -> None:
    everywhere = {h.path for h in index.search(tree, "render")}
    assert everywhere == {"README.md", "src/app.py", "src/view.py", "web/page.ts"}
    assert {h.path for h in index.search(tree, "render", path_glob="src/*")} == {
        "src/app.py",
        "src/view.py",
    }
    assert {h.path for h in index.search(tree, "render", path_glob="*.ts")} == {"web/page.ts"}
    assert {h.path for h in index.search(tree, "render", language="ts")} == {"web/page.ts"}
    assert {h.path for h in index.search(tree, "render", language="markdown")} == {"README.md"}


def test_limit_caps_the_hits(index: CodeIndex, tree: str) -> None:
    assert len(index.search(tree, "render", limit=2)) == 2
    assert index.search(tree, "render", limit=0) == []


def test_bad_input_says_what_to_do(index: CodeIndex, tree: str) -> None:
    with pytest.raises(InvalidInput, match="fix the pattern"):
        index.search(tree, "(unclosed", regex=True)
    with pytest.raises(InvalidInput, match="empty"):
        index.search(tree, "")
    with pytest.raises(InvalidInput, match="use one of"):
        index.search(tree, "x", language="klingon")
    with pytest.raises(NotFound, match="index_view"):
        index.search("0" * 40, "render")


def test_references_are_whole_words_with_definitions_flagged_first(
    index: CodeIndex, tree: str
) -> None:
    refs = index.references("render_page", tree)

    assert [(r.path, r.line, r.is_definition) for r in refs] == [
        ("src/view.py", 1, True),
        ("README.md", 3, False),
        ("src/app.py", 1, False),
        ("src/app.py", 5, False),
    ]
    assert refs[0].column == 5 and refs[0].text == "def render_page(name):"


def test_results_are_json_ready(index: CodeIndex, tree: str) -> None:
    [hit] = index.search(tree, "needle")
    data = hit.to_json()
    assert data["match_lines"] == [250] and data["source"] == "code"


# --- the regex prefilter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("QuerySet", [["QuerySet"]]),
        (r"def \w+_display\(", [["def ", "_display("]]),
        (r"get_(object|list)_or_404", [["get_", "_or_404"]]),
        ("colou?r", [["colo", "r"]]),
        ("ab+cde", [["ab", "cde"]]),
        (r"foo\.bar", [["foo.bar"]]),
        ("[abc]+xyz|hello", [["xyz"], ["hello"]]),
        ("a|bcd", [["a"], ["bcd"]]),
        (r"\d+", [[]]),
        ("(?x) a b c", None),
        (r"x{2,}yz", [["x", "yz"]]),
        (r"\x41BCD", [["BCD"]]),
    ],
)
def test_required_literals_of_a_regex(pattern: str, expected: list[list[str]] | None) -> None:
    assert required_literals(pattern) == expected


def test_the_prefilter_needs_a_long_literal_in_every_alternative() -> None:
    assert regex_prefilter(r"get_(object|list)_or_404") == '"get_" AND "_or_404"'
    assert regex_prefilter("[abc]+xyz|hello") == '("xyz") OR ("hello")'
    assert regex_prefilter('say "hi" now') == '"say ""hi"" now"'
    assert regex_prefilter("a|bcd") is None
    assert regex_prefilter(r"\d+") is None


REGEX_PIECES = st.sampled_from(
    ["ab", "c", "Def", "x?", "y*", "z+", r"\d", "[a-c]", "(pq|rs)", ".", r"\.", "{", "tuv", "_w"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(REGEX_PIECES, min_size=1, max_size=6), data=st.data())
def test_every_text_a_regex_matches_contains_its_required_literals(
    pieces: list[str], data: st.DataObject
) -> None:
    pattern = "".join(pieces)
    re.compile(pattern)
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    branches = required_literals(pattern)
    if branches is not None:
        assert any(all(lit.lower() in text.lower() for lit in branch) for branch in branches)


def test_regex_without_a_long_literal_scans_and_finds_matches(tmp_path: Path) -> None:
    from branchwork.index import CodeIndex

    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "a.py").write_text("def get_user(id):\n    return price(5.00)\n")
    import subprocess

    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "i"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    with CodeIndex(tmp_path / "i.sqlite") as index:
        tree = index.index_view(repo, "HEAD").tree
        for pattern, line in ((r"\bid\b", 1), (r"\d+\.\d+", 2), (r"r.t", 2)):
            hits = index.search(tree, pattern, regex=True)
            assert [h.line for h in hits] == [line], pattern
