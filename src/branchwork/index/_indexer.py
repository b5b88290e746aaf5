"""Indexing a view: list the tree, find the blobs never seen, read and process only those.

A view already known is answered from the database without running git. For a new view, the
work is: blobs never stored (chunked, parsed) and stored blobs that now appear under a language
they were never parsed as (parsed only). Everything else is reused as is.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from branchwork.index._git import (
    MODE_SUBMODULE,
    MODE_SYMLINK,
    TreeEntry,
    list_tree,
    read_blobs,
    resolve_tree,
)
from branchwork.index._languages import PARSEABLE, language_of
from branchwork.index._models import IndexReport
from branchwork.index._process import (
    PARALLEL_MIN_BYTES,
    BlobResult,
    WorkItem,
    process_all,
)
from branchwork.index._store import KnownBlob, Store

Progress = Callable[[int, int], None]
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_WRITE_BATCH_BLOBS = 256
_WRITE_BATCH_BYTES = 8 * 1024 * 1024


@dataclass
class _Plan:
    files: list[TreeEntry]
    symlinks: int
    submodules: int
    known: dict[str, KnownBlob]
    work: list[WorkItem] = field(default_factory=list)
    huge: list[TreeEntry] = field(default_factory=list)


@dataclass
class _Outcome:
    status: dict[str, str] = field(default_factory=dict)  # sha -> final status
    stored: set[str] = field(default_factory=set)  # shas whose content this run stored


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
        return _known_report(store, tree, view, started)
    tree = resolve_tree(repo, tree)
    if (view := store.view_id(tree)) is not None:
        return _known_report(store, tree, view, started)
    plan = _plan(store, repo, tree, max_file_bytes)
    outcome = _execute(store, repo, plan, workers=workers, progress=progress)
    store.save_view(tree, plan.files, symlinks=plan.symlinks, submodules=plan.submodules)
    return _new_report(tree, plan, outcome, started)


def _plan(store: Store, repo: Path, tree: str, max_file_bytes: int) -> _Plan:
    entries = list_tree(repo, tree)
    files = [e for e in entries if e.mode not in (MODE_SYMLINK, MODE_SUBMODULE)]
    plan = _Plan(
        files=files,
        symlinks=sum(e.mode == MODE_SYMLINK for e in entries),
        submodules=sum(e.mode == MODE_SUBMODULE for e in entries),
        known=store.known_blobs({f.sha for f in files}),
    )
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
    outcome = _Outcome(status={sha: k.status for sha, k in plan.known.items()})
    if plan.huge:
        with store.write():
            for entry in plan.huge:
                store.save_blob(entry.sha, "huge", entry.size, 0)
                outcome.status[entry.sha] = "huge"
    total_bytes = sum(item.size for item in plan.work)
    count = _worker_count(workers, total_bytes)
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
    outcome.status[result.sha] = result.status
    if blob_id is not None:  # else another process stored this content meanwhile
        outcome.stored.add(result.sha)
    return blob_id


def _new_report(tree: str, plan: _Plan, outcome: _Outcome, started: float) -> IndexReport:
    indexed = reused = 0
    skipped = _skipped(binary=0, too_large=0, symlink=plan.symlinks, submodule=plan.submodules)
    counted: set[str] = set()
    for entry in plan.files:
        status = outcome.status.get(entry.sha, "text")
        if status == "binary":
            skipped["binary"] += 1
        elif status == "huge":
            skipped["too_large"] += 1
        elif entry.sha in outcome.stored and entry.sha not in counted:
            counted.add(entry.sha)
            indexed += 1
        else:
            reused += 1
    total = len(plan.files) + plan.symlinks + plan.submodules
    return IndexReport(
        tree=tree,
        files_total=total,
        indexed=indexed,
        reused=reused,
        skipped=skipped,
        duration_s=time.perf_counter() - started,
    )


def _known_report(store: Store, tree: str, view: int, started: float) -> IndexReport:
    by_status, symlinks, submodules = store.view_counts(view)
    skipped = _skipped(
        binary=by_status.get("binary", 0),
        too_large=by_status.get("huge", 0),
        symlink=symlinks,
        submodule=submodules,
    )
    reused = by_status.get("text", 0)
    return IndexReport(
        tree=tree,
        files_total=reused + sum(skipped.values()),
        indexed=0,
        reused=reused,
        skipped=skipped,
        duration_s=time.perf_counter() - started,
    )


def _skipped(*, binary: int, too_large: int, symlink: int, submodule: int) -> dict[str, int]:
    return {"binary": binary, "too_large": too_large, "symlink": symlink, "submodule": submodule}
