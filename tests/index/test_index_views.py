"""Views: content indexed once by blob sha, incremental re-index, isolation, what is skipped."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path

import pytest

from branchwork.domain.errors import GitError, NotAGitRepository, NotFound, StoreError
from branchwork.gitops.git import run_git
from branchwork.index import CodeIndex, snapshot_tree
from tests.index.conftest import commit, new_repo, tree_of, write

FILES: dict[str, str | bytes] = {
    "README.md": "# shop\n\nA small shop.\n",
    "shop/cart.py": "class Cart:\n    def total(self):\n        return sum_prices(self.items)\n",
    "shop/prices.py": "def sum_prices(items):\n    return sum(i.price for i in items)\n",
}


def _chunk_rows(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM chunk_meta").fetchone()[0])


def test_identical_content_on_two_branches_is_indexed_once(
    tmp_path: Path, index: CodeIndex
) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    first = index.index_view(repo, "main")
    run_git(["switch", "-q", "-c", "feature"], repo)
    second_tree = commit(repo, {"shop/tax.py": "RATE = 0.2\n"})

    second = index.index_view(repo, second_tree)

    assert (first.indexed, first.reused, first.files_total) == (3, 0, 3)
    assert (second.indexed, second.reused, second.files_total) == (1, 3, 4)
    assert first.tree == tree_of(repo, "main") and second.tree == second_tree


def test_identical_worktree_snapshots_share_all_content(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    other = tmp_path / "other"
    run_git(["worktree", "add", "-q", "-b", "other", str(other)], repo)
    write(repo, {"notes.txt": "same uncommitted text\n"})
    write(other, {"notes.txt": "same uncommitted text\n"})

    first = index.index_view(repo, snapshot_tree(repo))
    second = index.index_view(other, snapshot_tree(other))

    assert first.tree == second.tree
    assert (first.indexed, second.indexed, second.reused) == (4, 0, 4)


def test_one_file_edit_reindexes_exactly_that_file(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(
        tmp_path / "repo", {**FILES, **{f"pkg/m{i}.py": f"X{i} = {i}\n" for i in range(30)}}
    )
    index.index_view(repo, snapshot_tree(repo))
    write(repo, {"shop/prices.py": "def sum_prices(items):\n    return 0  # discount day\n"})

    report = index.index_view(repo, snapshot_tree(repo))

    assert (report.indexed, report.reused, report.files_total) == (1, 32, 33)
    [hit] = index.search(report.tree, "discount day")
    assert (hit.path, hit.line) == ("shop/prices.py", 2)


def test_deleted_and_added_files_are_reflected_in_an_incremental_view(
    tmp_path: Path, index: CodeIndex
) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    index.index_view(repo, "HEAD")
    (repo / "shop" / "cart.py").unlink()
    tree = commit(repo, {"shop/basket.py": "class Basket:\n    pass\n"})

    report = index.index_view(repo, tree)

    assert report.files_total == 3
    assert index.search(tree, "class Cart") == []
    assert [h.path for h in index.search(tree, "class Basket")] == ["shop/basket.py"]
    assert [s.path for s in index.definitions("Basket", tree)] == ["shop/basket.py"]


def test_a_view_never_returns_content_only_present_in_another_worktree(
    tmp_path: Path, index: CodeIndex
) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    second = tmp_path / "second"
    run_git(["worktree", "add", "-q", "-b", "second", str(second)], repo)
    write(second, {"shop/secret_plan.py": "def zebra_discount():\n    pass\n"})
    view_a = index.index_view(repo, snapshot_tree(repo)).tree
    view_b = index.index_view(second, snapshot_tree(second)).tree

    assert index.search(view_a, "zebra_discount") == []
    assert index.definitions("zebra_discount", view_a) == []
    assert index.references("zebra_discount", view_a) == []
    assert [h.path for h in index.search(view_b, "zebra_discount")] == ["shop/secret_plan.py"]


def test_a_symlink_pointing_outside_and_its_target_are_never_indexed(
    tmp_path: Path, index: CodeIndex
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOPSECRET_VALUE\n")
    repo = new_repo(tmp_path / "repo", FILES)
    (repo / "link.txt").symlink_to(outside / "secret.txt")
    (repo / "linkdir").symlink_to(outside)
    tree = commit(repo, {})

    for view in (index.index_view(repo, tree), index.index_view(repo, snapshot_tree(repo))):
        assert view.skipped["symlink"] == 2
        assert index.search(view.tree, "TOPSECRET") == []
        assert index.search(view.tree, "secret.txt") == []  # nor the link's own text
        assert index.search(view.tree, "sec", regex=True) == []


def test_binary_and_huge_files_are_skipped_and_counted(tmp_path: Path) -> None:
    repo = new_repo(
        tmp_path / "repo",
        {
            **FILES,
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00binary needle",
            "big.txt": "needle in a big file\n" * 20,
        },
    )
    with CodeIndex(tmp_path / "index.sqlite", max_file_bytes=200) as small:
        report = small.index_view(repo, "HEAD")
        assert report.skipped == {"binary": 1, "too_large": 1, "symlink": 0, "submodule": 0}
        assert (report.indexed, report.files_total) == (3, 5)
        assert small.search(report.tree, "needle") == []
        assert small.index_view(repo, "HEAD").skipped == report.skipped  # known view, same counts
    with CodeIndex(tmp_path / "index.sqlite", max_file_bytes=10_000) as large:
        new_tree = commit(repo, {"more.txt": "more\n"})
        report = large.index_view(repo, new_tree)
        assert report.skipped["too_large"] == 0 and report.indexed == 2
        assert [h.path for h in large.search(new_tree, "needle")] == ["big.txt"]


def test_submodules_are_counted_but_never_indexed(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    sha = run_git(["rev-parse", "HEAD"], repo).strip()
    run_git(["update-index", "--add", "--cacheinfo", f"160000,{sha},vendor/lib"], repo)
    run_git(["commit", "-q", "-m", "submodule"], repo)

    report = index.index_view(repo, "HEAD")

    assert report.skipped["submodule"] == 1 and report.files_total == 4


def test_the_index_survives_reopening(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    db = tmp_path / "index.sqlite"
    with CodeIndex(db) as first:
        tree = first.index_view(repo, "HEAD").tree

    with CodeIndex(db) as again:
        assert again.has_view(tree)
        assert again.index_view(repo, tree).indexed == 0
        assert [h.path for h in again.search(tree, "sum_prices", path_glob="*prices*")] == [
            "shop/prices.py"
        ]
        assert [s.name for s in again.outline(tree, "shop/cart.py")] == ["Cart", "total"]
    with pytest.raises(StoreError, match="open a new CodeIndex"):
        again.search(tree, "sum_prices")


def test_a_repository_without_commits_can_be_snapshot_and_indexed(
    tmp_path: Path, index: CodeIndex
) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    run_git(["init", "-q"], repo)
    write(repo, {"hello.py": "def hello():\n    pass\n"})

    report = index.index_view(repo, snapshot_tree(repo))

    assert (report.indexed, report.files_total) == (1, 1)
    assert [s.name for s in index.definitions("hello", report.tree)] == ["hello"]


def test_snapshot_never_touches_the_real_index(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    write(repo, {"shop/prices.py": "changed\n", "new.py": "x = 1\n"})
    run_git(["add", "new.py"], repo)
    real_index = repo / ".git" / "index"
    before = (real_index.read_bytes(), real_index.stat().st_mtime_ns)

    tree = snapshot_tree(repo)

    assert (real_index.read_bytes(), real_index.stat().st_mtime_ns) == before
    assert run_git(["diff", "--cached", "--name-only"], repo).split() == ["new.py"]
    listed = run_git(["ls-tree", "-r", "--name-only", tree], repo).split()
    assert listed == ["README.md", "new.py", "shop/cart.py", "shop/prices.py"]


def test_snapshot_respects_gitignore(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(tmp_path / "repo", {**FILES, ".gitignore": "*.log\nbuild/\n"})
    write(repo, {"debug.log": "IGNORED_TEXT\n", "build/out.py": "IGNORED_TEXT = 1\n"})

    tree = index.index_view(repo, snapshot_tree(repo)).tree

    assert index.search(tree, "IGNORED_TEXT") == []


def test_progress_reports_blobs_done(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    calls: list[tuple[int, int]] = []

    index.index_view(repo, "HEAD", progress=lambda done, total: calls.append((done, total)))

    assert calls and calls[-1] == (3, 3)


def test_forgotten_views_and_their_unused_content_are_collected(
    tmp_path: Path, index: CodeIndex
) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    base = index.index_view(repo, "HEAD").tree
    edited = commit(repo, {"shop/prices.py": "def sum_prices(items):\n    return -1\n"})
    index.index_view(repo, edited)

    assert index.forget_view(base) and not index.forget_view(base)
    assert index.collect_garbage() == 1  # the old prices.py
    assert index.collect_garbage() == 0
    with pytest.raises(NotFound, match="index_view"):
        index.search(base, "sum_prices")
    assert len(index.search(edited, "sum_prices")) == 2


def test_unknown_revision_and_non_repository_are_reported(tmp_path: Path, index: CodeIndex) -> None:
    repo = new_repo(tmp_path / "repo", FILES)
    with pytest.raises(GitError, match="does not name a commit or tree"):
        index.index_view(repo, "no-such-branch")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepository, match="not a git repository"):
        index.index_view(plain, "HEAD")


def test_two_processes_indexing_at_once_store_each_content_once(tmp_path: Path) -> None:
    repo = new_repo(
        tmp_path / "repo", {f"m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(200)}
    )
    db = tmp_path / "index.sqlite"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from branchwork.index import CodeIndex
        with CodeIndex(Path({str(db)!r}), workers=1) as index:
            print(index.index_view(Path({str(repo)!r}), "HEAD").tree)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    trees = {proc.communicate(timeout=60)[0].decode().strip() for proc in procs}

    assert all(proc.returncode == 0 for proc in procs)
    assert trees == {tree_of(repo, "HEAD")}
    assert _chunk_rows(db) == 200
    with CodeIndex(db) as index:
        assert len(index.definitions("f7", tree_of(repo, "HEAD"))) == 1


def test_two_openers_of_a_new_index_file_both_open_it(tmp_path: Path) -> None:
    """SQLite refuses a second connection that sets WAL on a new file at once ("database is
    locked", no busy wait): about one pair in five here before `_set_wal` waited for it."""
    failures: list[BaseException] = []

    def open_index(db: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            CodeIndex(db, workers=1).close()
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    for attempt in range(40):
        start = threading.Barrier(2)
        db = tmp_path / f"index{attempt}.sqlite"
        openers = [threading.Thread(target=open_index, args=(db, start)) for _ in range(2)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
    assert failures == []


def test_worker_processes_index_exactly_like_one_process(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        f"pkg/mod{i}.py": f"class Model{i}:\n    def save(self):\n        return {i}\n" * 3
        for i in range(40)
    }
    repo = new_repo(tmp_path / "repo", files)
    results = []
    for workers in (1, 2):
        with CodeIndex(tmp_path / f"index{workers}.sqlite", workers=workers) as index:
            report = index.index_view(repo, "HEAD")
            hits = index.search(report.tree, "return 7", limit=100)
            symbols = index.definitions("save", report.tree, limit=500)
            results.append(
                (
                    report.indexed,
                    sorted((h.path, h.match_lines) for h in hits),
                    sorted((s.path, s.line, s.container) for s in symbols),
                )
            )

    assert results[0] == results[1] and results[0][0] == 40 and len(results[0][2]) == 120
