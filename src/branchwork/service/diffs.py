"""The diff a file write records: whole when small, a capped preview plus a blob when large.

Like command output, what an event carries is bounded (`PREVIEW_BYTES`); the whole diff goes to
the blob store, redacted, up to `BLOB_LIMIT` (beyond that the checkpoint holds the file and
`branchwork diff` recomputes it). Small texts are diffed with difflib; large ones (or huge new
files) by `git diff --no-index`, written to a file, so that neither time nor memory grows with
a 200 MB write as difflib's would.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from branchwork import gitops
from branchwork.service.scope import SessionScope, scratch_dir, scratch_prefix

PREVIEW_BYTES = 64 * 1024
BLOB_LIMIT = 16 * 1024 * 1024
DIFFLIB_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class RecordedDiff:
    text: str  # the whole diff, or its head and a note when truncated
    truncated: bool = False
    size: int = 0  # bytes of the whole diff
    blob: str | None = None  # the whole diff (redacted) when truncated and not too large


def unified_diff(path: str, old: str | None, new: str) -> str:
    before = (old or "").splitlines(keepends=True)
    after = new.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        after,
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile=f"b/{path}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def preview_diff(path: str, old: str | None, new: str) -> str:
    """The diff a write would make, to show before it is made (cut when large)."""
    if max(len(new), len(old or "")) > DIFFLIB_LIMIT:
        return f"(a write of {len(new):,} characters to {path}: too large to show a diff)\n"
    whole = unified_diff(path, old, new)
    if len(whole) <= PREVIEW_BYTES:
        return whole
    return whole[:PREVIEW_BYTES] + f"\n[... diff of {len(whole):,} characters cut ...]\n"


def record_diff(scope: SessionScope, path: str, old: str | None, target: Path) -> RecordedDiff:
    """The diff of a write of `target` (already written) over `old`, bounded for the event."""
    size = target.stat().st_size
    if max(size, len(old or "")) <= DIFFLIB_LIMIT:
        whole = unified_diff(path, old, target.read_text(encoding="utf-8"))
        return bounded(scope, whole.encode("utf-8"))
    return _git_diff(scope, path, old, target)


def bounded(scope: SessionScope, whole: bytes) -> RecordedDiff:
    text = whole.decode("utf-8", errors="replace")
    if len(whole) <= PREVIEW_BYTES:
        return RecordedDiff(text=text, size=len(whole))
    blob = None
    if len(whole) <= BLOB_LIMIT:
        blob = scope.services.store.put_blob(scope.redactor.redact(text).encode("utf-8"))
    kept = "the whole diff is kept" if blob else "too large to keep; the checkpoint has the file"
    head = whole[:PREVIEW_BYTES].decode("utf-8", errors="ignore")
    note = f"\n[... diff of {len(whole):,} bytes cut at {PREVIEW_BYTES:,}; {kept} ...]\n"
    return RecordedDiff(text=head + note, truncated=True, size=len(whole), blob=blob)


def _git_diff(scope: SessionScope, path: str, old: str | None, target: Path) -> RecordedDiff:
    tmp = scratch_dir(scope.services)
    tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=scratch_prefix("diff"), dir=tmp) as work:
        before = Path(work) / "before"
        before.write_text(old or "", encoding="utf-8")
        out = Path(work) / "diff"
        left = os.devnull if old is None else str(before)
        gitops.diff_files(Path(left), target, out)
        return _relabel(scope, out, path, old is None)


def _relabel(scope: SessionScope, out: Path, path: str, created: bool) -> RecordedDiff:
    """git names the temporary files; the diff shows `a/PATH` and `b/PATH`."""
    size = out.stat().st_size
    with out.open("rb") as diff:
        head = diff.read(min(size, BLOB_LIMIT + 1))
    body = head.split(b"\n@@", 1)
    hunks = b"\n@@" + body[1] if len(body) == 2 else b""
    source = b"/dev/null" if created else f"a/{path}".encode()
    header = b"--- " + source + b"\n+++ b/" + path.encode() + b"\n"
    whole = header + hunks.lstrip(b"\n")
    if size > BLOB_LIMIT:  # only the head was read: the total is git's size
        return _too_large(whole, size)
    return bounded(scope, whole)


def _too_large(head: bytes, size: int) -> RecordedDiff:
    text = head[:PREVIEW_BYTES].decode("utf-8", errors="ignore")
    note = (
        f"\n[... diff of {size:,} bytes cut at {PREVIEW_BYTES:,}; too large to keep; "
        "the checkpoint has the file ...]\n"
    )
    return RecordedDiff(text=text + note, truncated=True, size=size)
