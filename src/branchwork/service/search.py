"""Indexed repository context: index views, search, definitions, references, documents, and the
`context_ref` events that record which code informed a session."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwork import gitops
from branchwork._lazy import lazy_module
from branchwork.domain.errors import BranchworkError, InvalidInput
from branchwork.domain.events import Actor, ContextRef
from branchwork.domain.models import Project
from branchwork.service import mirror, views
from branchwork.service.base import Services
from branchwork.service.scope import SessionScope

if TYPE_CHECKING:
    from branchwork import index
    from branchwork.index import (
        Document,
        IndexReport,
        Reference,
        ReferenceResults,
        SearchHit,
        SearchResults,
        Symbol,
    )
else:  # the index (tree-sitter, grammars) is loaded when first used
    index = lazy_module("branchwork.index")

REPO_MAP_TOKENS = 800
DEFAULT_LIMIT = 20
REFERENCE_LIMIT = 200
UNLIMITED = 1_000_000_000
Progress = Callable[[int, int], None]


def session_view(
    scope: SessionScope, *, progress: Progress | None = None, count_ignored: bool = False
) -> IndexReport:
    """Bring the session's view (its base plus its changed files) up to date and report it;
    with `count_ignored`, also count the files `.gitignore` keeps out (a walk of the worktree:
    only when asked)."""
    if progress is not None:
        main_tree(scope.services, scope.project, progress=progress)  # the shared base, first
    report = views.refresh(scope)
    if not count_ignored:
        return report
    skipped = {**report.skipped, "ignored": gitops.count_ignored(scope.worktree)}
    return report.model_copy(update={"skipped": skipped})


def session_tree(scope: SessionScope) -> str:
    """The index key of the session's current view, for a query."""
    return views.current_view(scope)


def project_view(
    services: Services, project: Project, *, progress: Progress | None = None
) -> IndexReport:
    """Index the tip of the project's main branch."""
    repo = Path(project.path)
    tree = gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], repo).strip()
    return services.code_index().index_view(repo, tree, progress=progress)


def main_tree(services: Services, project: Project, *, progress: Progress | None = None) -> str:
    """The indexed tree of the project's main branch, indexed first if it never was."""
    repo = Path(project.path)
    tree = _tree_of_main(services, project, repo)
    index = services.code_index()
    if not index.has_view(tree):
        index.index_view(repo, tree, progress=progress)
    return tree


def _tree_of_main(services: Services, project: Project, repo: Path) -> str:
    """Main's tree without a subprocess when main has not moved since the last search: the tip
    is read from git's files, its tree remembered (a search should not pay 3–5 ms of git)."""
    tip = gitops.branch_tip(repo, project.main_branch)
    key = f"main-tree:{project.id}"
    known = services.store.get_state(key)
    if tip is not None and known is not None and known.startswith(f"{tip} "):
        return known.split(" ", 1)[1]
    tree = gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], repo).strip()
    if tip is not None:
        with contextlib.suppress(BranchworkError):  # a cache: a read-only data dir still searches
            services.store.set_state(key, f"{tip} {tree}")
    return tree


def collect_garbage(services: Services) -> int:
    """Drop indexed contents that no view and no document uses any more."""
    return services.code_index().collect_garbage()


def _ref_results(items: list[SearchHit] | list[Symbol] | list[Reference]) -> list[dict[str, Any]]:
    results = []
    for item in items:
        entry: dict[str, Any] = {"path": item.path, "line": item.line, "blob_sha": item.blob_sha}
        if hasattr(item, "start_line"):  # hits and symbols have a range; references a line
            entry.update(start_line=item.start_line, end_line=getattr(item, "end_line", item.line))
        results.append(entry)
    return results


def search(
    services: Services,
    tree: str,
    query: str,
    *,
    project: Project,
    regex: bool = False,
    path_glob: str | None = None,
    language: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    worktree: Path | None = None,
) -> SearchResults:
    """Up to `limit` hits (None: all); one more is looked for, to say whether there are more.
    `worktree`: the session worktree whose files the view `tree` is."""
    hits = services.code_index().search(
        tree,
        query,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=_probe(limit),
        project_id=project.id,
        worktree=worktree,
    )
    capped = limit is not None and len(hits) > limit
    return index.SearchResults(query=query, hits=hits[:limit], limit=limit, capped=capped)


def _probe(limit: int | None) -> int:
    if limit is not None and limit < 1:
        raise InvalidInput(f"the limit must be 1 or more (got {limit}); or ask for all")
    return UNLIMITED if limit is None else limit + 1


def search_session(
    scope: SessionScope,
    query: str,
    *,
    regex: bool = False,
    path_glob: str | None = None,
    language: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    actor: Actor = "user",
) -> SearchResults:
    """Search the session's own view (never another session's files); recorded as context."""
    found = search(
        scope.services,
        session_tree(scope),
        query,
        project=scope.project,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=limit,
        worktree=scope.worktree,
    )
    scope.record(ContextRef(query=query, lookup="search", results=_ref_results(found.hits)), actor)
    return found


def search_main(services: Services, project: Project, query: str, **options: Any) -> SearchResults:
    """Search the tip of the project's main branch (nothing is recorded: no session). A regex
    the index cannot narrow is grepped in main's mirror when it holds that tip (`mirror`)."""
    tree = main_tree(services, project)
    if not options.get("regex"):
        return search(services, tree, query, project=project, **options)
    with mirror.reading(services, project, tree) as checkout:
        return search(services, tree, query, project=project, worktree=checkout, **options)


def session_definitions(scope: SessionScope, name: str, *, actor: Actor = "user") -> list[Symbol]:
    """Every definition of `name` in the session (never capped: front-ends show what fits)."""
    found = scope.services.code_index().definitions(name, session_tree(scope), limit=UNLIMITED)
    scope.record(ContextRef(query=name, lookup="definition", results=_ref_results(found)), actor)
    return found


def references(
    services: Services, tree: str, name: str, *, project: Project, limit: int | None
) -> ReferenceResults:
    """Uses of `name` by name (definitions first), up to `limit` (None: all)."""
    found = services.code_index().references(name, tree, limit=_probe(limit), project_id=project.id)
    capped = limit is not None and len(found) > limit
    return index.ReferenceResults(name=name, references=found[:limit], limit=limit, capped=capped)


def session_references(
    scope: SessionScope, name: str, *, limit: int | None = REFERENCE_LIMIT, actor: Actor = "user"
) -> ReferenceResults:
    found = references(
        scope.services, session_tree(scope), name, project=scope.project, limit=limit
    )
    refs = _ref_results(found.references)
    scope.record(ContextRef(query=name, lookup="references", results=refs), actor)
    return found


def main_definitions(services: Services, project: Project, name: str) -> list[Symbol]:
    tree = main_tree(services, project)
    return services.code_index().definitions(name, tree, limit=UNLIMITED)


def main_references(
    services: Services, project: Project, name: str, *, limit: int | None = REFERENCE_LIMIT
) -> ReferenceResults:
    tree = main_tree(services, project)
    return references(services, tree, name, project=project, limit=limit)


def repo_map(scope: SessionScope, tokens: int = REPO_MAP_TOKENS) -> str:
    tree = session_tree(scope)
    return scope.services.code_index().repo_map(tree, token_budget=tokens)


def add_document(services: Services, project: Project, path: Path) -> Document:
    return services.code_index().add_document(project.id, path)


def list_documents(services: Services, project: Project) -> list[Document]:
    return services.code_index().list_documents(project.id)


def remove_document(services: Services, project: Project, key: str) -> Document:
    return services.code_index().remove_document(project.id, key)


def document_titles(services: Services, project: Project) -> list[str]:
    return [f"{d.title} ({d.name})" for d in list_documents(services, project)]
