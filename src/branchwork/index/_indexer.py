"""Indexing a view: list the tree, find the blobs never seen, read and process only those.

A view already known is answered from the database without running git. A new view is listed
as its changes from the last view indexed from the same repository (`git diff-tree`), or in
full (`git ls-tree`) when there is none. The work is then: blobs never stored (chunked,
parsed) and stored blobs that now appear under a language they were never parsed as (parsed
only). Everything else is reused as is.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from branchwork.domain.errors import GitError
from branchwork.index._git import (
    MODE_SUBMODULE,
    MODE_SYMLINK,
    Change,
    TreeEntry,
    blob_sizes,
    diff_trees,
    list_tree,
    read_blobs,
    resolve,
)
from branchwork.index._languages import PARSEABLE, language_of
from branchwork.index._models import IndexReport
from branchwork.index._process import (
    PARALLEL_MIN_BYTES,
    BlobResult,
    WorkItem,
    process_all,
)
from branchwork.index._store import (
    BaseViewGone,
    KnownBlob,
    Layers,
    Listing,
    OverlayRows,
    Store,
)

Progress = Callable[[int, int], None]
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_WRITE_BATCH_BLOBS = 256
_WRITE_BATCH_BYTES = 8 * 1024 * 1024
_ABSENT = "000000"
# After storing this many contents at once (a first index), the FTS segments are merged into one
# (a few seconds on Django): searches get up to 3x faster. Small runs rely on FTS5's automerge.
OPTIMIZE_MIN_BLOBS = 1000


@dataclass(frozen=True, slots=True)
class _Options:
    max_file_bytes: int
    workers: int | None
    progress: Progress | None


@dataclass
class _Plan:
    known: dict[str, KnownBlob]
    work: list[WorkItem] = field(default_factory=list)
    huge: list[TreeEntry] = field(default_factory=list)


@dataclass
class _Outcome:
    stored_text: set[str] = field(default_factory=set)  # shas whose text this run stored


def index_view(
    store: Store,
    repo: Path,
    tree: str,
    *,
    max_file_bytes: int,
    workers: int | None,
    progress: Progress | None,
) -> IndexReport:
    started = time.perf_counter()
    if _SHA.fullmatch(tree) and (view := store.view_id(tree)) is not None:
        return _report(store, tree, view, 0, started)
    tree, repo_key = resolve(repo, tree)
    if (view := store.view_id(tree)) is not None:
        return _report(store, tree, view, 0, started)
    options = _Options(max_file_bytes, workers, progress)
    listing = _diff_listing(store, repo, repo_key, tree, max_file_bytes)
    listing = listing or _full_listing(repo, repo_key, tree)
    stored = _store_contents(store, repo, listing, options)
    try:
        view = store.save_view(listing)
    except BaseViewGone:  # another process forgot the base view meanwhile: list in full
        listing = _full_listing(repo, repo_key, tree)
        stored += _store_contents(store, repo, listing, options)
        view = store.save_view(listing)
    return _report(store, tree, view, stored, started)


def _store_contents(store: Store, repo: Path, listing: Listing, options: _Options) -> int:
    """Store what the listing's files need; return how many new texts were stored."""
    plan = _plan(store, listing.files, options.max_file_bytes)
    outcome = _execute(store, repo, plan, workers=options.workers, progress=options.progress)
    if len(outcome.stored_text) >= OPTIMIZE_MIN_BLOBS:
        store.optimize()
    return len(outcome.stored_text)


def _full_listing(repo: Path, repo_key: str, tree: str) -> Listing:
    entries = list_tree(repo, tree)
    return Listing(
        tree=tree,
        repo=repo_key,
        files=[e for e in entries if e.mode not in (MODE_SYMLINK, MODE_SUBMODULE)],
        symlinks=sum(e.mode == MODE_SYMLINK for e in entries),
        submodules=sum(e.mode == MODE_SUBMODULE for e in entries),
    )


def _diff_listing(
    store: Store, repo: Path, repo_key: str, tree: str, max_file_bytes: int
) -> Listing | None:
    """The new view as changes from the last view of the same repository: only the changed
    paths are listed (`git diff-tree` skips unchanged subtrees), so a one-file edit in a big
    tree costs a few milliseconds instead of a full `git ls-tree`. Unchanged files skipped as
    too large that now fit the size limit are listed again, to be indexed."""
    base = store.latest_view(repo_key)
    if base is None:
        return None
    try:
        changes = diff_trees(repo, base.tree, tree)
    except GitError:
        return None  # the base tree is not in this object database (any more)
    added = [c for c in changes if c.new_mode not in (_ABSENT, MODE_SYMLINK, MODE_SUBMODULE)]
    sizes = blob_sizes(repo, sorted({c.new_sha for c in added}))
    changed = {c.path for c in changes}
    now_fit = [f for f in store.huge_files(base.id, max_file_bytes) if f.path not in changed]
    files = [TreeEntry(c.path, c.new_mode, c.new_sha, sizes.get(c.new_sha, 0)) for c in added]
    return Listing(
        tree=tree,
        repo=repo_key,
        files=files + now_fit,
        symlinks=base.symlinks + _mode_delta(changes, MODE_SYMLINK),
        submodules=base.submodules + _mode_delta(changes, MODE_SUBMODULE),
        base=base.id,
        removed=[c.path for c in changes if c.old_mode != _ABSENT] + [f.path for f in now_fit],
    )


def _mode_delta(changes: Sequence[Change], mode: str) -> int:
    return sum(c.new_mode == mode for c in changes) - sum(c.old_mode == mode for c in changes)


def _plan(store: Store, files: Sequence[TreeEntry], max_file_bytes: int) -> _Plan:
    plan = _Plan(known=store.known_blobs({f.sha for f in files}))
    languages = _languages_by_sha(files)
    parsed = store.parsed_pairs(k.id for k in plan.known.values() if k.status == "text")
    seen: set[str] = set()
    for entry in files:
        if entry.sha in seen:
            continue
        seen.add(entry.sha)
        _plan_blob(plan, entry, languages.get(entry.sha, set()), parsed, max_file_bytes)
    return plan


def _plan_blob(
    plan: _Plan,
    entry: TreeEntry,
    languages: set[str],
    parsed: set[tuple[int, str]],
    max_file_bytes: int,
) -> None:
    known = plan.known.get(entry.sha)
    if known is None or (known.status == "huge" and entry.size <= max_file_bytes):
        if entry.size > max_file_bytes:
            plan.huge.append(entry)
        else:
            plan.work.append(WorkItem(entry.sha, entry.size, True, tuple(sorted(languages))))
    elif known.status == "text":
        missing = tuple(sorted(lang for lang in languages if (known.id, lang) not in parsed))
        if missing:
            plan.work.append(WorkItem(entry.sha, entry.size, False, missing))


def _languages_by_sha(files: Sequence[TreeEntry]) -> dict[str, set[str]]:
    languages: dict[str, set[str]] = {}
    for entry in files:
        language = language_of(entry.path)
        if language in PARSEABLE:
            languages.setdefault(entry.sha, set()).add(language)
    return languages


def _execute(
    store: Store, repo: Path, plan: _Plan, *, workers: int | None, progress: Progress | None
) -> _Outcome:
    outcome = _Outcome()
    if plan.huge:
        with store.write():
            for entry in plan.huge:
                store.save_blob(entry.sha, "huge", entry.size, 0)
    count = _worker_count(workers, sum(item.size for item in plan.work))
    done = 0
    for batch in _write_batches(process_all(_with_data(repo, plan.work), workers=count)):
        _save_batch(store, batch, outcome)
        done += len(batch)
        if progress is not None:
            progress(done, len(plan.work))
    return outcome


def _worker_count(workers: int | None, total_bytes: int) -> int:
    if workers is not None:
        return workers
    if total_bytes < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _with_data(repo: Path, work: list[WorkItem]) -> Iterator[WorkItem]:
    items = {item.sha: item for item in work}
    for sha, data in read_blobs(repo, [(item.sha, item.size) for item in work]):
        item = items[sha]
        yield WorkItem(item.sha, item.size, item.fresh, item.languages, data)


def _write_batches(results: Iterator[BlobResult]) -> Iterator[list[BlobResult]]:
    batch: list[BlobResult] = []
    size = 0
    for result in results:
        batch.append(result)
        size += result.size
        if len(batch) >= _WRITE_BATCH_BLOBS or size >= _WRITE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _save_batch(store: Store, batch: list[BlobResult], outcome: _Outcome) -> None:
    with store.write():
        chunks = []
        for result in batch:
            blob_id = _save_blob(store, result, outcome)
            if blob_id is None:
                continue
            for parse in result.parses:
                store.save_parse(blob_id, parse.language, parse.symbols, parse.idents)
            chunks.append((blob_id, result.chunks))
        store.save_chunks(chunks)


def _save_blob(store: Store, result: BlobResult, outcome: _Outcome) -> int | None:
    """The blob's id if this run must store its chunks or symbols, else None."""
    if not result.fresh:
        return store.blob_id(result.sha)
    blob_id = store.save_blob(result.sha, result.status, result.size, result.lines)
    if blob_id is not None and result.status == "text":
        outcome.stored_text.add(result.sha)
    return blob_id  # None: another process stored this content meanwhile


def update_overlay(
    store: Store,
    repo: Path,
    name: str,
    base_tree: str,
    changes: OverlayRows,
    *,
    max_file_bytes: int,
    workers: int | None,
) -> IndexReport:
    """Index the contents an overlay's changes bring (its base view first, if new), then save
    the overlay: a view that is its base plus these files, without copying the base."""
    started = time.perf_counter()
    base = store.base_view(base_tree) if _SHA.fullmatch(base_tree) else None
    if base is None:
        tree = index_view(
            store, repo, base_tree, max_file_bytes=max_file_bytes, workers=workers, progress=None
        ).tree
        base = store.base_view(tree)
        assert base is not None
    shas = sorted({sha for _, sha, _ in changes.rows if sha is not None})
    sizes = blob_sizes(repo, shas)
    files = [
        TreeEntry(path, f"{mode:06o}", sha, sizes.get(sha, 0))
        for path, sha, mode in changes.rows
        if sha is not None and sha in sizes
    ]
    options = _Options(max_file_bytes, workers, None)
    stored = _store_contents(store, repo, Listing(base_tree, "", files, 0, 0), options)
    view = store.save_overlay(name, base, changes)
    return _report(store, f"overlay:{name}", Layers(view, base.id), stored, started)


def _report(
    store: Store, tree: str, view: int | Layers, indexed: int, started: float
) -> IndexReport:
    """Counts over the whole view: files by content status, plus links and submodules."""
    layers = view if isinstance(view, Layers) else Layers(view, view)
    by_status, symlinks, submodules = store.view_counts(layers)
    skipped = {
        "binary": by_status.get("binary", 0),
        "too_large": by_status.get("huge", 0),
        "symlink": symlinks,
        "submodule": submodules,
    }
    text_files = by_status.get("text", 0)
    return IndexReport(
        tree=tree,
        files_total=text_files + sum(skipped.values()),
        indexed=indexed,
        reused=text_files - indexed,
        skipped=skipped,
        duration_s=time.perf_counter() - started,
    )
