"""A regex the trigram index cannot narrow, handed to `git grep` on the view's tree (or on the
tracked files of a checkout of it: a session's worktree, main's mirror).

Scanning every chunk with Python's `re` costs ~10x `git grep` (PCRE with a JIT, one thread per
core, reading the object database directly). So a regex without a usable literal or trigram
set runs as `git grep -P` over the view's base tree, line by line, in path order; the paths an
overlay shadows are dropped from git's answer (the caller matches the overlay's own few files).
The matched lines are then placed in the index's chunks, so that the hits look like any other.
`grep_lines` returns None when git cannot take the pattern (no PCRE support, a syntax PCRE
refuses): the caller scans instead.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from branchwork.gitops.git import popen_git
from branchwork.index._store import Layers, Store, visible

_CHUNKS = (
    "SELECT p.path, b.sha, m.start_line, m.end_line, m.owned_end, p.language "  # noqa: S608
    f"FROM paths p JOIN view_files v ON v.path_id = p.id AND {visible('v')} "
    "JOIN blobs b ON b.id = v.blob_id JOIN chunk_meta m ON m.blob_id = v.blob_id "
    "WHERE p.path = :path ORDER BY m.start_line"
)


@dataclass(frozen=True, slots=True)
class GrepLine:
    path: str
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class ChunkLines:
    """The matching lines of one chunk of a file of the base view."""

    path: str
    blob_sha: str
    start_line: int
    end_line: int
    language: str | None
    lines: list[GrepLine]


def grep_lines(
    store: Store,
    view: Layers,
    pattern: str,
    *,
    case_sensitive: bool,
    wanted: Callable[[str], bool],
    worktree: Path | None = None,
) -> Generator[GrepLine] | None:
    """Matching lines, in path order, of the paths `wanted` accepts: of the view's base tree,
    or of `worktree`'s tracked files when the worktree holds the base (a session's worktree, or
    main's mirror: reading files beats inflating objects; the overlay's files, untracked ones
    included, are the caller's to scan); None when git cannot run the pattern."""
    args = ["grep", "-n", "-z", "-I", "-P", "--no-color", *([] if case_sensitive else ["-i"])]
    if worktree is not None:
        proc = popen_git([*args, "-e", pattern, "--"], cwd=worktree)
        prefix = ""
    else:
        row = store.conn.execute("SELECT tree, repo FROM views WHERE id = ?", (view.base,))
        found = row.fetchone()
        if found is None or not found[1]:
            return None
        tree, repo = found
        proc = popen_git(["--git-dir", repo, *args, "-e", pattern, tree, "--"], cwd=repo)
        prefix = f"{tree}:"
    stdout = proc.stdout
    assert isinstance(stdout, io.BufferedReader)
    if not stdout.peek(1) and proc.wait() > 1:
        stdout.close()
        return None  # exit 1 is "no match"; more is an error (a pattern PCRE refuses …)
    return _parse(proc, prefix, wanted)


def _parse(
    proc: subprocess.Popen[bytes], prefix: str, wanted: Callable[[str], bool]
) -> Generator[GrepLine]:
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            name, _, rest = raw.rstrip(b"\n").partition(b"\0")
            number, _, text = rest.partition(b"\0")
            path = name.decode("utf-8", "surrogateescape").removeprefix(prefix)
            if number.isdigit() and wanted(path):
                yield GrepLine(path, int(number), text.decode("utf-8", "replace"))
    finally:  # the caller may stop reading once it has enough: git is stopped with it
        proc.kill()
        proc.stdout.close()
        proc.wait()


def by_chunk(store: Store, view: Layers, lines: Iterator[GrepLine]) -> Iterator[ChunkLines]:
    """The lines grouped by the chunk of the base view that owns them, in path order."""
    pending: list[GrepLine] = []
    for line in lines:
        if pending and line.path != pending[0].path:
            yield from _chunks_of(store, view, pending)
            pending = []
        pending.append(line)
    if pending:
        yield from _chunks_of(store, view, pending)


def _chunks_of(store: Store, view: Layers, lines: list[GrepLine]) -> Iterator[ChunkLines]:
    rows = store.conn.execute(_CHUNKS, view.params(path=lines[0].path))
    for path, sha, start, end, owned, language in rows:
        inside = [line for line in lines if start <= line.line <= owned]
        if inside:
            yield ChunkLines(path, sha, start, end, language, inside)
