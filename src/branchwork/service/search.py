"""Indexed repository context: index views, search, definitions, references, documents, and the
`context_ref` events that record which code informed a session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwork import gitops
from branchwork.domain.events import Actor, ContextRef
from branchwork.domain.models import Project
from branchwork.service.base import Services
from branchwork.service.scope import SessionScope, scratch_dir

if TYPE_CHECKING:  # the index (tree-sitter, grammars) is loaded when first used
    from branchwork.index import Document, IndexReport, Reference, SearchHit, Symbol

REPO_MAP_TOKENS = 800
Progress = Callable[[int, int], None]


def session_view(scope: SessionScope, *, progress: Progress | None = None) -> IndexReport:
    """Index the session's working state (its checkpoint tree plus its uncommitted files) and
    report it, with the count of files `.gitignore` keeps out."""
    report = _index_session(scope, progress)
    skipped = {**report.skipped, "ignored": gitops.count_ignored(scope.worktree)}
    return report.model_copy(update={"skipped": skipped})


def session_tree(scope: SessionScope) -> str:
    """The indexed tree of the session's working state, for a query."""
    return _index_session(scope, None).tree


def _index_session(scope: SessionScope, progress: Progress | None) -> IndexReport:
    exclude = scope.project.config.copy_files
    tree = gitops.snapshot_tree(scope.worktree, exclude, scratch=scratch_dir(scope.services))
    report = scope.services.code_index().index_view(scope.worktree, tree, progress=progress)
    _forget_previous_view(scope, tree)
    return report


def _forget_previous_view(scope: SessionScope, tree: str) -> None:
    """A session keeps one snapshot view in the index: the newest (old ones would pile up
    with every edit). The contents stay; `branchwork index` collects unused ones."""
    store = scope.services.store
    key = f"index_view:{scope.session.id}"
    previous = store.get_state(key)
    if previous == tree:
        return
    if previous is not None:
        scope.services.code_index().forget_view(previous)
    store.set_state(key, tree)


def project_view(
    services: Services, project: Project, *, progress: Progress | None = None
) -> IndexReport:
    """Index the tip of the project's main branch."""
    repo = Path(project.path)
    tree = gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], repo).strip()
    return services.code_index().index_view(repo, tree, progress=progress)


def main_tree(services: Services, project: Project) -> str:
    """The indexed tree of the project's main branch, indexed first if it never was."""
    repo = Path(project.path)
    tree = gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], repo).strip()
    index = services.code_index()
    if not index.has_view(tree):
        index.index_view(repo, tree)
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
    limit: int = 20,
) -> list[SearchHit]:
    return services.code_index().search(
        tree,
        query,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=limit,
        project_id=project.id,
    )


def search_session(
    scope: SessionScope,
    query: str,
    *,
    regex: bool = False,
    path_glob: str | None = None,
    language: str | None = None,
    limit: int = 20,
    actor: Actor = "user",
) -> list[SearchHit]:
    """Search the session's own view (never another session's files); recorded as context."""
    tree = session_tree(scope)
    hits = search(
        scope.services,
        tree,
        query,
        project=scope.project,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=limit,
    )
    scope.record(ContextRef(query=query, lookup="search", results=_ref_results(hits)), actor)
    return hits


def search_main(
    services: Services, project: Project, query: str, **options: Any
) -> list[SearchHit]:
    """Search the tip of the project's main branch (nothing is recorded: no session)."""
    return search(services, main_tree(services, project), query, project=project, **options)


def session_definitions(scope: SessionScope, name: str, *, actor: Actor = "user") -> list[Symbol]:
    found = scope.services.code_index().definitions(name, session_tree(scope))
    scope.record(ContextRef(query=name, lookup="definition", results=_ref_results(found)), actor)
    return found


def session_references(scope: SessionScope, name: str, *, actor: Actor = "user") -> list[Reference]:
    index = scope.services.code_index()
    found = index.references(name, session_tree(scope), project_id=scope.project.id)
    scope.record(ContextRef(query=name, lookup="references", results=_ref_results(found)), actor)
    return found


def main_definitions(services: Services, project: Project, name: str) -> list[Symbol]:
    return services.code_index().definitions(name, main_tree(services, project))


def main_references(services: Services, project: Project, name: str) -> list[Reference]:
    tree = main_tree(services, project)
    return services.code_index().references(name, tree, project_id=project.id)


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
