"""gitops/merges.py on real repositories: a comment's line followed across edits (a property,
checked on seeded random edits),
conflict hunks, and the branch never moved from under a dirty checkout."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from branchwork import Conflict
from branchwork.gitops import merges
from tests.conftest import git, make_repo

ALPHABET = ("a", "b", "c", "d", "")  # few distinct lines: diffs have to choose between matches


def _tree(repo: Path, lines: list[str]) -> str:
    """A tree holding `f.txt` with `lines`, written to the object store only."""
    text = "".join(f"{line}\n" for line in lines)
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=text, text=True,
        capture_output=True, check=True,
    ).stdout.strip()  # fmt: skip
    return subprocess.run(
        ["git", "mktree"], cwd=repo, input=f"100644 blob {blob}\tf.txt\n", text=True,
        capture_output=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("objects") / "repo", {"x": "x\n"})


def _case(seed: int) -> tuple[list[str], list[str]]:
    """An old version of a file and a new one made from it by random edits."""
    rng = random.Random(seed)
    old = [rng.choice(ALPHABET) for _ in range(rng.randint(1, 12))]
    new = list(old)
    for _ in range(rng.randint(0, 4)):
        at = rng.randint(0, len(new))
        edit = rng.choice(("insert", "delete", "replace"))
        if edit == "insert" or not new:
            new.insert(at, rng.choice(ALPHABET))
        elif edit == "delete":
            del new[min(at, len(new) - 1)]
        else:
            new[min(at, len(new) - 1)] = rng.choice(ALPHABET)
    return old, new


@pytest.mark.parametrize("seed", range(40))
def test_a_followed_line_is_the_same_line_in_the_new_version(object_store: Path, seed: int) -> None:
    """For every line of the old version: followed, it is the same text in the new version;
    with nothing changed, it stays where it was."""
    old, new = _case(seed)
    before, after = _tree(object_store, old), _tree(object_store, new)
    hunks = merges.hunks(object_store, before, after).get("f.txt", [])
    for line in range(1, len(old) + 1):
        moved = merges.follow_line(hunks, line)
        if moved is not None:
            assert 1 <= moved <= len(new) and new[moved - 1] == old[line - 1]
        if old == new:
            assert moved == line


def test_conflict_hunks_are_given_in_the_targets_lines() -> None:
    merged = "one\n<<<<<<< main\ntwo\nthree\n=======\nTWO\n>>>>>>> topic\nfour\n"
    (hunk,) = merges.conflict_hunks(merged)
    assert (hunk.start_line, hunk.end_line) == (2, 3)
    assert hunk.target_text == "two\nthree" and hunk.source_text == "TWO"


def test_advance_branch_refuses_a_dirty_checkout_and_moves_a_clean_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    old = git(repo, "rev-parse", "main").strip()
    git(repo, "switch", "-q", "-c", "topic")
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "b")
    new = git(repo, "rev-parse", "topic").strip()
    git(repo, "switch", "-q", "main")
    (repo / "a.txt").write_text("dirty\n")
    with pytest.raises(Conflict, match="uncommitted changes"):
        merges.advance_branch(repo, "main", old, new)
    assert git(repo, "rev-parse", "main").strip() == old
    git(repo, "checkout", "--", "a.txt")
    assert merges.advance_branch(repo, "main", old, new) == repo
    assert (repo / "b.txt").read_text() == "b\n" and git(repo, "status", "--porcelain") == ""
    with pytest.raises(Conflict, match="moved"):
        merges.advance_branch(repo, "topic", old, new)  # topic is at `new`, not `old`
