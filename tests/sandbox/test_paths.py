"""The worktree boundary: a path lands inside the worktree and outside .git, or is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from branchwork.domain.errors import InvalidPath
from branchwork.sandbox import relative_to_worktree, resolve_in_worktree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A worktree full of traps, next to an `outside` directory.

    root/
      a/b.txt             a/inner_link -> ../a/b.txt
      .git                (a file, as in a git worktree)
      link_out -> /etc    link_in -> a      link_up -> ..
      dir_out -> ../outside                 file_out -> ../outside/secret.txt
      dangling_out -> /nonexistent/place    dangling_in -> a/not-yet.txt
      loop -> loop        git_link -> .git
    """
    base = tmp_path_factory.mktemp("paths")
    root, outside = base / "root", base / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "b.txt").write_text("inside")
    (outside / "secret.txt").write_text("outside")
    (root / ".git").write_text("gitdir: /somewhere/.git/worktrees/x\n")
    links = {
        "link_out": "/etc",
        "link_in": "a",
        "link_up": "..",
        "dir_out": "../outside",
        "file_out": "../outside/secret.txt",
        "dangling_out": "/nonexistent/place",
        "dangling_in": "a/not-yet.txt",
        "loop": "loop",
        "git_link": ".git",
        "a/inner_link": "../a/b.txt",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root


def refuse(root: Path, user_path: str) -> str:
    with pytest.raises(InvalidPath) as caught:
        resolve_in_worktree(root, user_path)
    return caught.value.message


def test_relative_path_resolves_to_absolute_path_inside_worktree(tree: Path) -> None:
    assert resolve_in_worktree(tree, "a/b.txt") == tree.resolve() / "a" / "b.txt"


def test_absolute_path_inside_worktree_is_accepted(tree: Path) -> None:
    assert resolve_in_worktree(tree, str(tree / "a" / "b.txt")) == tree.resolve() / "a/b.txt"


def test_path_that_does_not_exist_yet_is_accepted_for_writing(tree: Path) -> None:
    assert resolve_in_worktree(tree, "new/dir/file.txt") == tree.resolve() / "new/dir/file.txt"


def test_dot_dot_that_stays_inside_is_accepted(tree: Path) -> None:
    assert resolve_in_worktree(tree, "a/../a/./b.txt") == tree.resolve() / "a/b.txt"


def test_dot_names_the_worktree_root(tree: Path) -> None:
    assert resolve_in_worktree(tree, ".") == tree.resolve()


def test_symlink_inside_worktree_resolves_to_its_target(tree: Path) -> None:
    assert resolve_in_worktree(tree, "link_in/b.txt") == tree.resolve() / "a/b.txt"
    assert resolve_in_worktree(tree, "a/inner_link") == tree.resolve() / "a/b.txt"


def test_dangling_symlink_to_a_place_inside_is_accepted(tree: Path) -> None:
    assert resolve_in_worktree(tree, "dangling_in") == tree.resolve() / "a/not-yet.txt"


@pytest.mark.parametrize("user_path", ["", "   "])
def test_empty_path_is_refused_with_a_remedy(tree: Path, user_path: str) -> None:
    assert "relative to the worktree root" in refuse(tree, user_path)


@pytest.mark.parametrize("user_path", ["..", "../x", "a/../../x", "new/../../outside/secret.txt"])
def test_dot_dot_leaving_the_worktree_is_refused(tree: Path, user_path: str) -> None:
    assert "outside the session's worktree" in refuse(tree, user_path)


def test_absolute_path_outside_the_worktree_is_refused(tree: Path) -> None:
    message = refuse(tree, "/etc/passwd")
    assert message.endswith("use a path inside the worktree (relative to its root).")


@pytest.mark.parametrize(
    "user_path",
    [
        "link_out/passwd",  # symlink to /etc, then a file in it
        "link_out",  # the symlink to a directory outside, itself
        "dir_out/secret.txt",  # symlinked parent directory
        "dir_out/not-there-yet.txt",  # write through a symlinked directory
        "file_out",  # final component is a symlink to a file outside
        "dangling_out",  # final component points outside, to nothing yet
        "link_up/outside/secret.txt",  # a symlink to ..
        "link_in/../../outside/secret.txt",  # `..` applied after following the symlink
    ],
)
def test_symlink_leading_outside_the_worktree_is_refused(tree: Path, user_path: str) -> None:
    assert "outside the session's worktree" in refuse(tree, user_path)


@pytest.mark.parametrize(
    "user_path",
    [
        ".git",
        ".git/config",
        ".GIT/config",
        ".Git",
        "a/../.git/HEAD",
        ".git/../a/b.txt",
        "git_link",
        "sub/.git/hooks/pre-commit",
    ],
)
def test_anything_in_git_data_is_refused(tree: Path, user_path: str) -> None:
    assert "`.git`" in refuse(tree, user_path)


def test_absolute_path_into_git_data_is_refused(tree: Path) -> None:
    assert "`.git`" in refuse(tree, str(tree / ".git"))


def test_symlink_loop_is_refused(tree: Path) -> None:
    assert "symlink loop" in refuse(tree, "loop/x")


def test_symlink_loop_then_parent_cannot_smuggle_a_symlink_out(tree: Path) -> None:
    """`realpath` gives up at the loop and leaves `link_out` (-> /etc) unresolved."""
    assert "symlink loop" in refuse(tree, "loop/../link_out")
    assert "symlink loop" in refuse(tree, "loop/../link_out/passwd")


def test_nul_character_is_refused(tree: Path) -> None:
    assert "NUL" in refuse(tree, "a/b\x00.txt")


def test_missing_worktree_is_refused_with_restore_hint(tmp_path: Path) -> None:
    assert "restore the session" in refuse(tmp_path / "gone", "a.txt")


def test_worktree_reached_through_a_symlink_accepts_both_spellings(
    tree: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    expected = tree.resolve() / "a" / "b.txt"
    assert resolve_in_worktree(alias, "a/b.txt") == expected
    assert resolve_in_worktree(alias, str(alias / "a" / "b.txt")) == expected
    assert resolve_in_worktree(alias, str(tree / "a" / "b.txt")) == expected


def test_relative_to_worktree_gives_posix_relative_name(tree: Path) -> None:
    assert relative_to_worktree(tree, tree / "a" / "b.txt") == "a/b.txt"
    assert relative_to_worktree(tree, tree.resolve() / "a" / "b.txt") == "a/b.txt"
    assert relative_to_worktree(tree, tree) == "."


def test_relative_to_worktree_refuses_a_path_outside(tree: Path) -> None:
    with pytest.raises(InvalidPath):
        relative_to_worktree(tree, tree / ".." / "outside" / "secret.txt")
    with pytest.raises(InvalidPath):
        relative_to_worktree(tree, Path("/etc/passwd"))


def test_relative_to_worktree_round_trips_resolve(tree: Path) -> None:
    resolved = resolve_in_worktree(tree, "link_in/./b.txt")
    assert relative_to_worktree(tree, resolved) == "a/b.txt"


SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "a",
        "b.txt",
        "",
        "new",
        ".git",
        ".GIT",
        "link_out",
        "link_in",
        "link_up",
        "dir_out",
        "file_out",
        "dangling_out",
        "dangling_in",
        "loop",
        "git_link",
        "outside",
        "etc",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    segments=st.lists(SEGMENTS, max_size=8),
    prefix=st.sampled_from(["", "/", "ROOT/"]),
)
def test_resolved_path_never_escapes_the_worktree_or_enters_git(
    tree: Path, segments: list[str], prefix: str
) -> None:
    user_path = prefix.replace("ROOT", str(tree)) + "/".join(segments)
    real_root = tree.resolve()
    try:
        resolved = resolve_in_worktree(tree, user_path)
    except InvalidPath:
        return
    assert resolved.is_absolute()
    real = Path(os.path.realpath(resolved))
    assert real.is_relative_to(real_root)
    assert all(part.casefold() != ".git" for part in real.relative_to(real_root).parts)


def test_worktree_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert "not a directory" in refuse(tmp_path / "file", "a.txt")
