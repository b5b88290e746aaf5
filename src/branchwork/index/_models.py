"""What the index returns: frozen pydantic models, JSON-ready with `model_dump(mode="json")`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["code", "document"]
SKIP_REASONS: tuple[str, ...] = ("binary", "too_large", "symlink", "submodule")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IndexReport(_Frozen):
    """The outcome of `CodeIndex.index_view`.

    `files_total == indexed + reused + sum(skipped.values())`: `indexed` counts contents read and
    indexed by this call, `reused` the files whose content was already indexed (in any view).
    """

    tree: str
    files_total: int
    indexed: int
    reused: int
    skipped: dict[str, int] = Field(description=f"files not indexed, by reason: {SKIP_REASONS}")
    duration_s: float


class SearchHit(_Frozen):
    """One matching chunk: `line` is the first matching line, `match_lines` all of them.

    `start_line`/`end_line` is the chunk around the match (1-based, inclusive). For a document,
    `path` is the document's file name and `document_id` is set.
    """

    path: str
    start_line: int
    end_line: int
    line: int
    match_lines: tuple[int, ...]
    snippet: str
    blob_sha: str
    score: float
    language: str | None
    source: Source
    document_id: str | None = None


class Symbol(_Frozen):
    """A definition found by tree-sitter; `line` is the line of its name."""

    name: str
    kind: str
    container: str | None
    path: str
    line: int
    start_line: int
    end_line: int
    language: str
    blob_sha: str


class Reference(_Frozen):
    """An occurrence of a name as a whole word; `is_definition` flags the definitions' lines."""

    name: str
    path: str
    line: int
    column: int
    text: str
    blob_sha: str
    language: str | None
    source: Source
    is_definition: bool
    document_id: str | None = None


class Document(_Frozen):
    """A context document of a project (Markdown, text or PDF as text)."""

    id: str
    project_id: str
    title: str
    name: str
    source_path: str
    kind: str
    blob_sha: str
    lines: int
    added_at: datetime


class SearchResults(_Frozen):
    """The hits of one search, best first, and whether more exist than `limit` let through:
    then `capped` is true and `more` says how to see them (a higher limit, or none)."""

    query: str
    hits: list[SearchHit]
    limit: int | None = Field(description="the most hits asked for; None: all of them")
    capped: bool = Field(description="more hits exist than were returned")

    @property
    def more(self) -> str:
        return _more_hint(self.capped, self.limit, "hits")


class ReferenceResults(_Frozen):
    """The references to one name (definitions first), and whether more exist than `limit`
    let through (`capped`; `more` says how to see them)."""

    name: str
    references: list[Reference]
    limit: int | None = Field(description="the most references asked for; None: all of them")
    capped: bool = Field(description="more references exist than were returned")

    @property
    def more(self) -> str:
        return _more_hint(self.capped, self.limit, "references")


def _more_hint(capped: bool, limit: int | None, what: str) -> str:
    if not capped:
        return ""
    return (
        f"showing the first {limit} {what}; there are more: raise the limit "
        f"(--limit {max(2 * (limit or 0), 50)}) or ask for all (--all), or narrow the query"
    )
