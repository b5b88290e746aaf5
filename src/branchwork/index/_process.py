"""Turning blob bytes into what the store keeps: status, chunks, symbols, identifiers.

Pure functions of their input, so that big jobs can run in worker processes: tree-sitter parsing
is CPU-bound and the GIL would otherwise keep it on one core while SQLite waits.
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from branchwork.index._chunks import Chunk, count_lines, decode, is_binary, split_chunks
from branchwork.index._store import SymbolRow
from branchwork.index._symbols import extract_symbols

# Below this much work, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
_BATCH_BYTES = 1024 * 1024
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One blob to process: `fresh` blobs get chunked; `languages` get parsed for symbols."""

    sha: str
    size: int
    fresh: bool
    languages: tuple[str, ...]
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ParseResult:
    language: str
    symbols: list[SymbolRow]
    idents: str  # distinct identifiers, space separated: the repo map counts references with it


@dataclass(frozen=True, slots=True)
class BlobResult:
    sha: str
    size: int
    fresh: bool
    status: str  # "text" | "binary"
    lines: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    parses: list[ParseResult] = field(default_factory=list)


def process_item(item: WorkItem) -> BlobResult:
    if is_binary(item.data):
        return BlobResult(item.sha, item.size, item.fresh, "binary")
    text = decode(item.data)
    chunks = split_chunks(text) if item.fresh else []
    parses = [
        ParseResult(lang, extract_symbols(item.data, lang), identifiers(text))
        for lang in item.languages
    ]
    return BlobResult(item.sha, item.size, item.fresh, "text", count_lines(text), chunks, parses)


def identifiers(text: str) -> str:
    return " ".join(sorted(set(_IDENT.findall(text))))


def _process_batch(items: list[WorkItem]) -> list[BlobResult]:
    return [process_item(item) for item in items]


def _batches(items: Iterable[WorkItem]) -> Iterator[list[WorkItem]]:
    batch: list[WorkItem] = []
    size = 0
    for item in items:
        batch.append(item)
        size += item.size
        if size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _start_method() -> str:
    """`fork` when it is safe (Linux, no other thread): fast, and needs no `__main__` guard.

    With other threads running (a server), forking could copy a lock held by one of them, so
    workers are spawned instead; the program's entry point must then be import-safe.
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "spawn"


def process_all(items: Iterable[WorkItem], *, workers: int) -> Iterator[BlobResult]:
    """Process `items` in order, in `workers` processes when `workers > 1`."""
    if workers <= 1:
        yield from map(process_item, items)
        return
    context = multiprocessing.get_context(_start_method())
    # A forked worker flushes what it inherited in our output buffers when it exits: printed
    # twice. Nothing may be buffered at the fork.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pending: deque[Future[list[BlobResult]]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for batch in _batches(items):  # a bounded window keeps memory flat on big trees
            pending.append(pool.submit(_process_batch, batch))
            if len(pending) > 2 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
