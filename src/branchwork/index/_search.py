"""Full-text search and name references over one view (and a project's documents).

Candidates come from the FTS5 trigram index (a literal query is one quoted phrase; a regex gives
the literals it requires), ranked by bm25 over the whole table, then kept if their blob is in the
view (or in the project's documents), looked up a batch at a time. Every candidate chunk is then
verified (`str.find` for a literal, Python's `re` for a regex), which also yields the exact lines.
A regex without a required literal of 3+ characters is prefiltered by the trigrams its small
character classes allow (`\\d`, `[a-f]`; see `_regex.trigram_prefilter`); one without those
either is handed to `git grep -P` on the view's tree (`_grep`). Queries shorter than 3
characters, and regexes git cannot run, scan the view's chunks in path order.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from branchwork.domain.errors import InvalidInput
from branchwork.index._chunks import LineMap
from branchwork.index._grep import ChunkLines, by_chunk, grep_lines
from branchwork.index._languages import language_of
from branchwork.index._models import Reference, SearchHit, Source
from branchwork.index._regex import MIN_LITERAL, fts_phrase, regex_prefilter, trigram_prefilter
from branchwork.index._store import Layers, Store, visible

SNIPPET_CHARS = 240
REFERENCE_SCAN_CAP = 5000

_RANKED = "SELECT rowid, bm25(chunks) FROM chunks WHERE chunks MATCH ? ORDER BY 2"
_UNRANKED = "SELECT rowid, 0.0 FROM chunks WHERE chunks MATCH ?"
# `CROSS JOIN` fixes the join order in SQLite: from the few ranked chunks to the view, never a
# scan of the whole view (without statistics the planner may choose that).
_CODE_META = (
    "SELECT m.id, b.sha, m.start_line, m.end_line, m.owned_end, p.path, p.language, NULL, "  # noqa: S608
    "c.content FROM chunk_meta m "
    f"CROSS JOIN view_files v ON v.blob_id = m.blob_id AND {visible('v')} "
    "JOIN paths p ON p.id = v.path_id JOIN blobs b ON b.id = m.blob_id "
    "JOIN chunks c ON c.rowid = m.id WHERE m.id IN "
)
_DOC_META = (
    "SELECT m.id, b.sha, m.start_line, m.end_line, m.owned_end, d.name, d.kind, d.id, "
    "c.content FROM chunk_meta m "
    "CROSS JOIN documents d ON d.blob_id = m.blob_id AND d.project_id = :project "
    "JOIN blobs b ON b.id = m.blob_id JOIN chunks c ON c.rowid = m.id WHERE m.id IN "
)
_CODE_SCAN = (
    "SELECT m.id, 0.0, b.sha, m.start_line, m.end_line, m.owned_end, p.path, p.language, NULL, "
    "c.content FROM view_files v JOIN paths p ON p.id = v.path_id "
    "JOIN chunk_meta m ON m.blob_id = v.blob_id JOIN blobs b ON b.id = v.blob_id "
    "JOIN chunks c ON c.rowid = m.id WHERE {visible} {filter}ORDER BY p.path, m.start_line"
)
_DOC_SCAN = (
    "SELECT m.id, 0.0, b.sha, m.start_line, m.end_line, m.owned_end, d.name, d.kind, d.id, "
    "c.content FROM documents d JOIN chunk_meta m ON m.blob_id = d.blob_id "
    "JOIN blobs b ON b.id = d.blob_id JOIN chunks c ON c.rowid = m.id "
    "WHERE d.project_id = :project {filter}ORDER BY d.name, m.start_line"
)
_META_BATCH = 64


@dataclass(frozen=True, slots=True)
class Filters:
    path_glob: str | None = None
    languages: frozenset[str] | None = None

    def accepts(self, path: str, language: str | None) -> bool:
        if self.languages is not None and language not in self.languages:
            return False
        if self.path_glob is None:
            return True
        if fnmatchcase(path, self.path_glob):
            return True
        # A glob without a slash also matches the file name, as in `git grep -- '*.py'`.
        return "/" not in self.path_glob and fnmatchcase(path.rsplit("/", 1)[-1], self.path_glob)


@dataclass(frozen=True, slots=True)
class _Candidate:
    chunk_id: int
    score: float
    blob_sha: str
    start_line: int
    end_line: int
    owned_end: int
    path: str
    language: str | None
    document_id: str | None
    content: str | None

    @property
    def source(self) -> Source:
        return "code" if self.document_id is None else "document"


class Matcher:
    """Where a query matches in a text: start offsets, in order.

    A literal uses `str.find` (on the lowered text when case does not matter, if lowering keeps
    offsets): several times faster than an IGNORECASE regex, which stays the general case.
    """

    def __init__(self, query: str, *, regex: bool, case_sensitive: bool) -> None:
        if not query:
            raise InvalidInput("the search query is empty; pass the text or pattern to look for")
        flags = re.MULTILINE | (0 if case_sensitive else re.IGNORECASE)
        try:
            self.pattern = re.compile(query if regex else re.escape(query), flags)
        except re.error as exc:
            raise InvalidInput(
                f"invalid regular expression {query!r}: {exc}; fix the pattern, or search "
                "for the literal text (without --regex)"
            ) from exc
        self.literal = None if regex else (query if case_sensitive else query.lower())
        self.fold = not case_sensitive

    def starts(self, text: str) -> Iterator[int]:
        haystack = text.lower() if self.fold and self.literal is not None else text
        if self.literal is None or len(haystack) != len(text):
            yield from (match.start() for match in self.pattern.finditer(text))
            return
        position = haystack.find(self.literal)
        while position != -1:
            yield position
            position = haystack.find(self.literal, position + len(self.literal))


def search(
    store: Store,
    view: Layers,
    query: str,
    *,
    regex: bool,
    case_sensitive: bool,
    filters: Filters,
    limit: int,
    project_id: str | None,
    worktree: Path | None = None,
) -> list[SearchHit]:
    matcher = Matcher(query, regex=regex, case_sensitive=case_sensitive)
    if regex:
        expression = regex_prefilter(query) or trigram_prefilter(query)
    else:
        expression = _literal_expression(query)
    hits: list[SearchHit] = []
    if limit <= 0:
        return hits
    if regex and expression is None:
        handed = _grep_search(store, view, matcher, filters, limit, project_id, worktree)
        if handed is not None:
            return handed
    scan_literal = None if regex else query  # a regex's source is no literal of its matches
    candidates = _candidates(
        store, view, project_id, expression, scan_literal, ranked=True, first_batch=limit + 4
    )
    for candidate in candidates:
        if not filters.accepts(candidate.path, candidate.language):
            continue
        hit = _verify(store, candidate, matcher)
        if hit is not None:
            hits.append(hit)
            if len(hits) >= limit:
                break
    return hits


def _grep_search(
    store: Store,
    view: Layers,
    matcher: Matcher,
    filters: Filters,
    limit: int,
    project_id: str | None,
    worktree: Path | None,
) -> list[SearchHit] | None:
    """A regex without literal or trigrams: `git grep` over the base tree (or over the files
    of `worktree`, a checkout of the view, when given: reading files beats inflating blobs),
    the overlay's own files by Python, then the documents; in path order. None: git cannot
    run it."""
    shadowed = _overlay_paths(store, view)

    def wanted(path: str) -> bool:
        return path not in shadowed and filters.accepts(path, language_of(path))

    case_sensitive = not matcher.pattern.flags & re.IGNORECASE
    pattern = matcher.pattern.pattern
    lines = grep_lines(
        store, view, pattern, case_sensitive=case_sensitive, wanted=wanted, worktree=worktree
    )
    if lines is None:
        return None
    try:
        base = (_grep_hit(c, matcher) for c in by_chunk(store, Layers(view.base, view.base), lines))
        layered = view.top != view.base
        own = layered and scan_candidates(store, Layers(view.top, view.top), None)
        mine = _verified(store, own or iter(()), matcher, filters)
        code = heapq.merge(base, mine, key=lambda hit: (hit.path, hit.start_line))
        documents = scan_documents(store, project_id, None) if project_id else iter(())
        rest = _verified(store, documents, matcher, filters)
        return list(itertools.islice(itertools.chain(code, rest), limit))
    finally:
        lines.close()  # stops git when the limit was reached first


def _overlay_paths(store: Store, view: Layers) -> frozenset[str]:
    if view.top == view.base:
        return frozenset()
    rows = store.conn.execute(
        "SELECT p.path FROM view_files v JOIN paths p ON p.id = v.path_id WHERE v.view_id = ?",
        (view.top,),
    )
    return frozenset(path for (path,) in rows)


def _verified(
    store: Store, candidates: Iterator[_Candidate], matcher: Matcher, filters: Filters
) -> Iterator[SearchHit]:
    for candidate in candidates:
        if filters.accepts(candidate.path, candidate.language):
            hit = _verify(store, candidate, matcher)
            if hit is not None:
                yield hit


def _grep_hit(chunk: ChunkLines, matcher: Matcher) -> SearchHit:
    first = chunk.lines[0]
    found = matcher.pattern.search(first.text)
    return SearchHit(
        path=chunk.path,
        start_line=chunk.start_line,
        end_line=chunk.end_line,
        line=first.line,
        match_lines=tuple(line.line for line in chunk.lines),
        snippet=snippet(first.text, found.start() if found else 0),
        blob_sha=chunk.blob_sha,
        score=0.0,
        language=chunk.language,
        source="code",
    )


def _literal_expression(query: str) -> str | None:
    return fts_phrase(query) if len(query) >= MIN_LITERAL else None


def _candidates(
    store: Store,
    view: Layers,
    project_id: str | None,
    expression: str | None,
    literal: str | None,
    *,
    ranked: bool,
    first_batch: int = _META_BATCH,
) -> Iterator[_Candidate]:
    if expression is not None:
        yield from _fts_candidates(
            store, view, project_id, expression, ranked=ranked, first_batch=first_batch
        )
        return
    yield from scan_candidates(store, view, literal)
    if project_id:
        yield from scan_documents(store, project_id, literal)


def scan_candidates(store: Store, view: Layers, literal: str | None) -> Iterator[_Candidate]:
    """Every chunk of the view's code, in path order (with a cheap prefilter for a literal)."""
    params = view.params()
    sql = _CODE_SCAN.format(visible=visible("v"), filter=_scan_filter(literal, params))
    for row in store.conn.execute(sql, params):
        yield _Candidate(*row)


def scan_documents(store: Store, project_id: str, literal: str | None) -> Iterator[_Candidate]:
    params: dict[str, Any] = {"project": project_id}
    sql = _DOC_SCAN.format(filter=_scan_filter(literal, params))
    for row in store.conn.execute(sql, params):
        yield _Candidate(*row)


def _fts_candidates(
    store: Store,
    view: Layers,
    project_id: str | None,
    expression: str,
    *,
    ranked: bool,
    first_batch: int,
) -> Iterator[_Candidate]:
    """Matching chunks (best bm25 first if `ranked`) that belong to the view or the documents.

    Ranking runs on the FTS table alone; the view is applied to the ranked rows a batch at a
    time (the first one about the size of the result), so a query stops costing as soon as it
    has its hits.
    """
    cursor = store.conn.execute(_RANKED if ranked else _UNRANKED, (expression,))
    size = first_batch
    while batch := cursor.fetchmany(size):
        size = _META_BATCH
        ids = {f"c{n}": rowid for n, (rowid, _) in enumerate(batch)}
        marks = "(" + ",".join(f":{key}" for key in ids) + ")"
        owners: list[tuple[str, dict[str, Any]]] = [(_CODE_META, view.params(**ids))]
        if project_id is not None:
            owners.append((_DOC_META, {"project": project_id, **ids}))
        places: dict[int, list[Any]] = {}
        for sql, params in owners:
            for row in store.conn.execute(sql + marks, params):
                places.setdefault(row[0], []).append(row[1:])
        for rowid, score in batch:
            for sha, start, end, owned, path, language, doc_id, text in places.get(rowid, ()):
                yield _Candidate(rowid, score, sha, start, end, owned, path, language, doc_id, text)


def _scan_filter(literal: str | None, params: dict[str, Any]) -> str:
    """A cheap SQL prefilter for a short ASCII literal; Python verifies anyway."""
    if literal is None or not literal.isascii():
        return ""
    params["literal"] = literal.lower()
    return "AND instr(lower(c.content), :literal) > 0 "


def _content(store: Store, candidate: _Candidate) -> str:
    if candidate.content is not None:
        return candidate.content
    row = store.conn.execute(
        "SELECT content FROM chunks WHERE rowid = ?", (candidate.chunk_id,)
    ).fetchone()
    return "" if row is None else str(row[0])


def _verify(store: Store, candidate: _Candidate, matcher: Matcher) -> SearchHit | None:
    lines = LineMap(_content(store, candidate), candidate.start_line)
    matched: list[int] = []
    first = 0
    for start in matcher.starts(lines.text):
        line = lines.line_at(start)
        if line > candidate.owned_end:
            break
        if not matched:
            first = start
        if not matched or matched[-1] != line:
            matched.append(line)
    if not matched:
        return None
    return SearchHit(
        path=candidate.path,
        start_line=candidate.start_line,
        end_line=candidate.end_line,
        line=matched[0],
        match_lines=tuple(matched),
        snippet=snippet(lines.line_text_at(first), lines.column_at(first)),
        blob_sha=candidate.blob_sha,
        score=float(candidate.score),
        language=candidate.language,
        source=candidate.source,
        document_id=candidate.document_id,
    )


def snippet(line: str, column: int) -> str:
    """The line without trailing space, cut to SNIPPET_CHARS around `column` if too long."""
    text = line.rstrip()
    if len(text) <= SNIPPET_CHARS:
        return text
    start = max(0, min(column - SNIPPET_CHARS // 3, len(text) - SNIPPET_CHARS))
    return text[start : start + SNIPPET_CHARS]


# --- references ----------------------------------------------------------------------------


def references(
    store: Store,
    view: Layers,
    name: str,
    *,
    definitions: set[tuple[str, int]],
    filters: Filters,
    limit: int,
    project_id: str | None,
) -> list[Reference]:
    """Whole-word, case-sensitive occurrences of `name`; definitions first, then by path."""
    word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
    found: list[Reference] = []
    expression = _literal_expression(name)
    scan_cap = max(REFERENCE_SCAN_CAP, limit)
    for candidate in _candidates(store, view, project_id, expression, name, ranked=False):
        if filters.accepts(candidate.path, candidate.language):
            found.extend(_occurrences(store, candidate, word, name, definitions))
        if len(found) >= scan_cap:
            break
    found.sort(key=lambda r: (not r.is_definition, r.source != "code", r.path, r.line))
    return found[:limit]


def _occurrences(
    store: Store,
    candidate: _Candidate,
    word: re.Pattern[str],
    name: str,
    definitions: set[tuple[str, int]],
) -> Iterator[Reference]:
    lines = LineMap(_content(store, candidate), candidate.start_line)
    last_line = 0
    for match in word.finditer(lines.text):
        line = lines.line_at(match.start())
        if line > candidate.owned_end:
            break
        if line == last_line:
            continue
        last_line = line
        column = lines.column_at(match.start())
        yield Reference(
            name=name,
            path=candidate.path,
            line=line,
            column=column,
            text=snippet(lines.line_text_at(match.start()), column),
            blob_sha=candidate.blob_sha,
            language=candidate.language,
            source=candidate.source,
            is_definition=(candidate.blob_sha, line) in definitions,
            document_id=candidate.document_id,
        )
