"""`CodeIndex`: the one object callers use; each method takes the lock and delegates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from branchwork._lazy import lazy_module
from branchwork.domain.errors import InvalidInput, NotFound, StoreError
from branchwork.index import _definitions, _repomap, _search
from branchwork.index._languages import resolve_language_filter
from branchwork.index._models import Document, IndexReport, Reference, SearchHit, Symbol
from branchwork.index._store import (
    OVERLAY_PREFIX,
    Layers,
    OverlayInfo,
    OverlayRows,
    Store,
    translate_errors,
)

if TYPE_CHECKING:
    from branchwork.index import _documents, _indexer
else:  # tree-sitter, its grammars, worker processes and pypdf: loaded to index, not to search
    _documents = lazy_module("branchwork.index._documents")
    _indexer = lazy_module("branchwork.index._indexer")

DEFAULT_MAX_FILE_BYTES = 1_000_000
_MAP_CACHE_SIZE = 32


class CodeIndex:
    """The repository context index, stored in its own SQLite file at `db_path`.

    Views are git tree shas: `index_view` a commit's tree or a worktree snapshot
    (`snapshot_tree`), then search it. Content is keyed by blob sha, so each distinct file
    content is indexed once across all views. Safe to share between threads (one lock) and
    between processes (SQLite WAL + busy timeout).
    """

    def __init__(
        self,
        db_path: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        workers: int | None = None,
    ) -> None:
        """`workers`: processes for parsing; None picks the CPU count for big jobs only."""
        self.db_path = Path(db_path)
        self.max_file_bytes = max_file_bytes
        self.workers = workers
        self._lock = threading.RLock()
        self._store = Store(self.db_path)
        self._maps: dict[tuple[str, str, int], str] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> CodeIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self) -> Iterator[Store]:
        with self._lock, translate_errors(self.db_path):
            if self._store.closed:
                raise StoreError(f"the code index {self.db_path} is closed; open a new CodeIndex")
            yield self._store

    def _view(self, store: Store, view_tree: str) -> Layers:
        view = store.layers(view_tree)
        if view is None:
            raise NotFound(
                f"view {view_tree} is not indexed; call index_view(repo, {view_tree!r}) first"
            )
        return view

    # --- views -------------------------------------------------------------------------------

    def index_view(
        self,
        repo: Path,
        tree: str,
        *,
        progress: _indexer.Progress | None = None,
    ) -> IndexReport:
        """Index the view `tree` (a tree sha, or any revision naming one) of the repo at `repo`.

        Only contents never indexed before are read; a view already known costs one query.
        `progress(done, total)` is called after each stored batch of new contents.
        """
        with self._guard() as store:
            return _indexer.index_view(
                store,
                Path(repo),
                tree,
                max_file_bytes=self.max_file_bytes,
                workers=self.workers,
                progress=progress,
            )

    def has_view(self, tree: str) -> bool:
        with self._guard() as store:
            return store.layers(tree) is not None

    # --- overlays: a view made of a base view plus changed files ------------------------------

    def update_overlay(
        self, name: str, repo: Path, base_tree: str, changes: OverlayRows
    ) -> IndexReport:
        """Make `overlay:NAME` the view `base_tree` (indexed first if new) with the changed
        files of `changes` on top: their new contents are read from `repo`'s object database
        and indexed; nothing of the base is copied, so this costs what the changes cost."""
        with self._guard() as store:
            return _indexer.update_overlay(
                store,
                Path(repo),
                name,
                base_tree,
                changes,
                max_file_bytes=self.max_file_bytes,
                workers=self.workers,
            )

    def overlay(self, name: str) -> OverlayInfo | None:
        """The overlay's base and the stamp its last update left (None: no such overlay)."""
        with self._guard() as store:
            return store.overlay(name)

    def overlay_names(self) -> list[str]:
        with self._guard() as store:
            return store.overlay_names()

    def view_trees(self) -> list[str]:
        """The trees of every plain (non-overlay) view."""
        with self._guard() as store:
            return store.view_trees()

    def overlay_bases(self) -> set[str]:
        """The trees the overlays are built on (a view in use while its overlays are)."""
        with self._guard() as store:
            return store.overlay_bases()

    def forget_view(self, tree: str) -> bool:
        """Drop a view's file list (contents stay until `collect_garbage`), and the overlays
        built on it; False if unknown. An overlay is forgotten as `overlay:NAME`."""
        with self._guard() as store:
            return store.forget_view(tree)

    def collect_unused(self, keep: set[str], *, dry_run: bool = False) -> tuple[int, int]:
        """Forget every view not in `keep` (trees and `overlay:NAME` keys; the bases of kept
        overlays are kept), delete the contents nothing kept uses, give the space back;
        returns (views forgotten, contents deleted). `dry_run` only counts them."""
        with self._guard() as store:
            unused = store.unused_views(keep)
            if dry_run:
                return len(unused), store.garbage_count(set(unused))
            for tree in unused:
                store.forget_view(tree)
            collected = store.collect_garbage()
            store.compact()
            self._maps.clear()
            return len(unused), collected

    def collect_garbage(self) -> int:
        """Delete contents no view and no document uses; return how many were deleted."""
        with self._guard() as store:
            return store.collect_garbage()

    # --- queries -----------------------------------------------------------------------------

    def search(
        self,
        view_tree: str,
        query: str,
        *,
        regex: bool = False,
        case_sensitive: bool = False,
        path_glob: str | None = None,
        language: str | None = None,
        limit: int = 20,
        project_id: str | None = None,
        worktree: Path | None = None,
    ) -> list[SearchHit]:
        """Ranked matches of `query` in the view, and in the project's documents if given.

        `path_glob` is an fnmatch pattern over the path (`*` crosses `/`); one without `/`
        also matches the file name alone. `language` is a language name (`python`, `ts` …).
        `worktree`: a worktree whose files the view is (a session's), where a regex the index
        cannot narrow is grepped (faster than the object database).
        """
        filters = _search.Filters(path_glob, resolve_language_filter(language))
        with self._guard() as store:
            return _search.search(
                store,
                self._view(store, view_tree),
                query,
                regex=regex,
                case_sensitive=case_sensitive,
                filters=filters,
                limit=limit,
                project_id=project_id,
                worktree=worktree,
            )

    def definitions(
        self,
        name: str,
        view_tree: str,
        *,
        kind: str | None = None,
        path_glob: str | None = None,
        language: str | None = None,
        limit: int = 50,
    ) -> list[Symbol]:
        """Where `name` is defined in the view; `Container.name` or `Container::name` narrows."""
        _check_name(name)
        filters = _search.Filters(path_glob, resolve_language_filter(language))
        with self._guard() as store:
            view = self._view(store, view_tree)
            return _definitions.definitions(
                store, view, name, kind=kind, filters=filters, limit=limit
            )

    def references(
        self,
        name: str,
        view_tree: str,
        *,
        path_glob: str | None = None,
        language: str | None = None,
        limit: int = 200,
        project_id: str | None = None,
    ) -> list[Reference]:
        """Whole-word occurrences of `name` (definitions flagged and listed first)."""
        _check_name(name)
        filters = _search.Filters(path_glob, resolve_language_filter(language))
        with self._guard() as store:
            view = self._view(store, view_tree)
            return _search.references(
                store,
                view,
                name,
                definitions=_definitions.definition_lines(store, view, name),
                filters=filters,
                limit=limit,
                project_id=project_id,
            )

    def outline(self, view_tree: str, path: str) -> list[Symbol]:
        """The symbols of the file at `path` in the view, in source order."""
        with self._guard() as store:
            return _definitions.outline(store, self._view(store, view_tree), path)

    def repo_map(self, view_tree: str, token_budget: int = 1024) -> str:
        """Ranked files and their main symbols, within about `token_budget` tokens."""
        if token_budget <= 0:
            raise InvalidInput("token_budget must be positive; pass e.g. 1024")
        with self._guard() as store:
            version = ""
            if view_tree.startswith(OVERLAY_PREFIX):  # an overlay changes: its stamp says when
                info = store.overlay(view_tree.removeprefix(OVERLAY_PREFIX))
                version = info.stamp if info is not None else ""
            key = (view_tree, version, token_budget)
            if key not in self._maps:  # a tree's view never changes, so neither does its map
                if len(self._maps) >= _MAP_CACHE_SIZE:
                    self._maps.pop(next(iter(self._maps)))
                self._maps[key] = _repomap.repo_map(
                    store, self._view(store, view_tree), token_budget
                )
            return self._maps[key]

    # --- documents ---------------------------------------------------------------------------

    def add_document(self, project_id: str, path: Path) -> Document:
        """Add (or refresh, for a path added before) a Markdown, text or PDF document."""
        with self._guard() as store:
            return _documents.add_document(store, project_id, Path(path))

    def list_documents(self, project_id: str) -> list[Document]:
        with self._guard() as store:
            return _documents.list_documents(store, project_id)

    def remove_document(self, project_id: str, doc_id_or_title: str) -> Document:
        """Remove by id, short id, title or file name; return what was removed."""
        with self._guard() as store:
            return _documents.remove_document(store, project_id, doc_id_or_title)

    def document_text(self, project_id: str, doc_id_or_title: str) -> str:
        with self._guard() as store:
            return _documents.document_text(store, project_id, doc_id_or_title)


def _check_name(name: str) -> None:
    if not name.strip() or any(ch.isspace() for ch in name.strip()):
        raise InvalidInput(f"{name!r} is not a symbol name; pass one identifier, like `QuerySet`")
