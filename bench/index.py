"""Benchmark of the code index on the Django 5.2.8 sdist.

    .venv/bin/python bench/index.py [--cache-dir DIR] [--workers N] [--runs N]

Downloads the sdist once (`pip download --no-binary :all: --no-deps django==5.2.8`), unpacks it
into a git repo in the cache dir and reuses it afterwards. Measures, in one run:
- full index of HEAD into a fresh database, against the raw cost of `git ls-tree` + `git cat-file`
- one-file incremental re-index: edit a file, `snapshot_tree`, `index_view` (goal < 200 ms)
- search p50 over 20 identifier queries, against `git grep -n` (goal: at least 10x faster)
Goals: full index < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from branchwork.gitops.git import run_git, run_git_bytes
from branchwork.index import CodeIndex, snapshot_tree

VERSION = "5.2.8"
QUERIES = [
    "QuerySet",
    "get_object_or_404",
    "HttpResponseRedirect",
    "ForeignKey",
    "reverse_lazy",
    "ValidationError",
    "ModelAdmin",
    "select_related",
    "prefetch_related",
    "TemplateResponse",
    "CharField",
    "ImproperlyConfigured",
    "cached_property",
    "JsonResponse",
    "get_user_model",
    "transaction.atomic",
    "MiddlewareMixin",
    "format_html",
    "ContentType",
    "SuspiciousOperation",
]
EDIT_TARGETS = [
    "django/db/models/query.py",
    "django/http/response.py",
    "django/shortcuts.py",
    "django/urls/base.py",
    "django/utils/functional.py",
]


def prepare_repo(cache_dir: Path) -> Path:
    repo = cache_dir / f"django-{VERSION}"
    if (repo / ".git").exists() and run_git(
        ["rev-parse", "-q", "--verify", "HEAD"], repo, check=False
    ):
        run_git(["checkout", "-q", "--", "."], repo)  # undo an edit left by an interrupted run
        return repo
    cache_dir.mkdir(parents=True, exist_ok=True)
    sdist = cache_dir / f"django-{VERSION}.tar.gz"
    if not sdist.exists():
        print(f"downloading Django {VERSION} sdist …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
             f"django=={VERSION}", "-d", str(cache_dir)],
            check=True, capture_output=True,
        )  # fmt: skip
    with tarfile.open(sdist) as archive:
        archive.extractall(cache_dir, filter="data")
    run_git(["init", "-q"], repo)
    run_git(["add", "-A"], repo)
    run_git(["commit", "-q", "-m", f"Django {VERSION} sdist"], repo)
    return repo


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_time(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(fn) for _ in range(runs))


def raw_git_read(repo: Path) -> None:
    out = run_git_bytes(["ls-tree", "-r", "-z", "--full-tree", "HEAD"], repo)
    shas = [rec.split(b"\t")[0].split()[2] for rec in out.split(b"\0") if rec]
    run_git_bytes(["cat-file", "--batch"], repo, input_bytes=b"\n".join(shas) + b"\n")


def bench_full(index: CodeIndex, repo: Path) -> str:
    started = time.perf_counter()
    report = index.index_view(repo, "HEAD")
    elapsed = time.perf_counter() - started
    baseline = median_time(lambda: raw_git_read(repo), 3)
    print(f"full index: {elapsed:.2f} s  (goal < 60 s)  cores: {os.cpu_count()}")
    print(
        f"  files {report.files_total}, indexed {report.indexed}, reused {report.reused}, "
        f"skipped {report.skipped}"
    )
    print(f"  baseline git ls-tree + cat-file of every blob: {baseline:.2f} s "
          f"(index / baseline = {elapsed / baseline:.1f}x)")  # fmt: skip
    again = timed(lambda: index.index_view(repo, "HEAD"))
    print(f"  same view again: {again * 1000:.1f} ms")
    return report.tree


def bench_incremental(index: CodeIndex, repo: Path) -> None:
    snapshots, indexes = [], []
    for n, target in enumerate(EDIT_TARGETS):
        path = repo / target
        original = path.read_bytes()
        try:
            path.write_bytes(original + f"\n# branchwork bench edit {n} {time.time()}\n".encode())
            started = time.perf_counter()
            tree = snapshot_tree(repo)
            middle = time.perf_counter()
            report = index.index_view(repo, tree)
            done = time.perf_counter()
        finally:
            path.write_bytes(original)
        assert report.indexed == 1, report
        snapshots.append(middle - started)
        indexes.append(done - middle)
    total = [a + b for a, b in zip(snapshots, indexes, strict=True)]
    print(
        f"one-file re-index: median {statistics.median(total) * 1000:.0f} ms total "
        f"(snapshot_tree {statistics.median(snapshots) * 1000:.0f} ms + index_view "
        f"{statistics.median(indexes) * 1000:.0f} ms; goal < 200 ms), "
        f"max {max(total) * 1000:.0f} ms"
    )


def bench_search(index: CodeIndex, repo: Path, tree: str, runs: int) -> None:
    ours, greps = [], []
    print(f"{'query':24} {'hits':>4} {'index ms':>9} {'git grep ms':>12} {'ratio':>7}")
    for query in QUERIES:
        index.search(tree, query)  # warm
        mine = median_time(lambda q=query: index.search(tree, q), runs)
        theirs = median_time(
            lambda q=query: subprocess.run(
                ["git", "grep", "-n", q], cwd=repo, capture_output=True, check=False
            ),
            max(3, runs // 2),
        )
        hits = len(index.search(tree, query))
        ours.append(mine)
        greps.append(theirs)
        print(f"{query:24} {hits:4} {mine * 1000:9.2f} {theirs * 1000:12.1f} {theirs / mine:7.1f}x")
    p50_ours, p50_grep = statistics.median(ours), statistics.median(greps)
    print(
        f"search p50: {p50_ours * 1000:.2f} ms vs git grep p50 {p50_grep * 1000:.1f} ms "
        f"-> {p50_grep / p50_ours:.1f}x faster (goal >= 10x); "
        f"p90 ours {sorted(ours)[int(len(ours) * 0.9) - 1] * 1000:.2f} ms"
    )


def bench_other(index: CodeIndex, tree: str) -> None:
    regex, no_literal = r"def get_\w+_display", r"\bx\d{3}\b"
    cases: list[tuple[str, Callable[[], object]]] = [
        (f"regex search {regex!r}", lambda: index.search(tree, regex, regex=True)),
        (f"regex, no literal {no_literal!r}", lambda: index.search(tree, no_literal, regex=True)),
        ("2-char search 'qs'", lambda: index.search(tree, "qs")),
        ("definitions('QuerySet')", lambda: index.definitions("QuerySet", tree)),
        ("references('get_object_or_404')", lambda: index.references("get_object_or_404", tree)),
    ]
    for label, fn in cases:
        print(f"{label:45} {median_time(fn, 3) * 1000:8.1f} ms")
    first = timed(lambda: index.repo_map(tree, 1024))
    cached = timed(lambda: index.repo_map(tree, 1024))
    print(f"{'repo_map(1024), first / cached':45} {first * 1000:8.1f} ms / {cached * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/branchwork-bench"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--show-map", action="store_true")
    args = parser.parse_args()
    repo = prepare_repo(args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="bw-index-bench-") as tmp:
        db = Path(tmp) / "index.sqlite"
        with CodeIndex(db, workers=args.workers) as index:
            tree = bench_full(index, repo)
            bench_incremental(index, repo)
            bench_search(index, repo, tree, args.runs)
            bench_other(index, tree)
            if args.show_map:
                print(index.repo_map(tree, 1024))
        print(f"database size: {db.stat().st_size / 1e6:.0f} MB (+ WAL)")


if __name__ == "__main__":
    main()
