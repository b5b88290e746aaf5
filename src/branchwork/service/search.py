"""Indexed repository context: index views, search, definitions, references, documents, and the
`context_ref` events that record which code informed a session."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchwork import gitops
from branchwork.domain.events import Actor, ContextRef
from branchwork.domain.models import Project, Session
from branchwork.service.context import ServiceContext
from branchwork.service.projects import get_project
from branchwork.service.sessions import ensure_worktree

if TYPE_CHECKING:  # the index (tree-sitter, grammars) is imported when first used
    from branchwork.index import CodeIndex, Document, IndexReport, Reference, SearchHit, Symbol

REPO_MAP_TOKENS = 800


def code_index(ctx: ServiceContext) -> CodeIndex:
    return ctx.code_index()


def session_view(ctx: ServiceContext, session: Session, *, progress: Any = None) -> IndexReport:
    """Index the session's working state: its checkpoint tree plus its uncommitted files."""
    session = ensure_worktree(ctx, session)
    project = get_project(ctx, session.project_id)
    worktree = Path(session.worktree)
    tree = gitops.snapshot_tree(worktree, project.config.copy_files)
    report = code_index(ctx).index_view(worktree, tree, progress=progress)
    _forget_previous_view(ctx, session, tree)
    skipped = {**report.skipped, "ignored": gitops.count_ignored(worktree)}
    return report.model_copy(update={"skipped": skipped})


def _forget_previous_view(ctx: ServiceContext, session: Session, tree: str) -> None:
    """A session keeps one snapshot view in the index: the newest (old ones would pile up
    with every edit). The contents stay; `branchwork index` collects unused ones."""
    key = f"index_view:{session.id}"
    previous = ctx.store.get_state(key)
    if previous == tree:
        return
    if previous is not None:
        code_index(ctx).forget_view(previous)
    ctx.store.set_state(key, tree)


def project_view(ctx: ServiceContext, project: Project, *, progress: Any = None) -> IndexReport:
    """Index the tip of the project's main branch."""
    repo = Path(project.path)
    tree = gitops.run_git(["rev-parse", f"{project.main_branch}^{{tree}}"], repo).strip()
    return code_index(ctx).index_view(repo, tree, progress=progress)


def collect_garbage(ctx: ServiceContext) -> int:
    """Drop indexed contents that no view and no document uses any more."""
    return code_index(ctx).collect_garbage()


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return hit.model_dump(mode="json")


def _ref_results(items: list[SearchHit] | list[Symbol] | list[Reference]) -> list[dict[str, Any]]:
    results = []
    for item in items:
        entry: dict[str, Any] = {"path": item.path, "line": item.line, "blob_sha": item.blob_sha}
        if hasattr(item, "start_line"):  # hits and symbols have a range; references a line
            entry.update(start_line=item.start_line, end_line=getattr(item, "end_line", item.line))
        results.append(entry)
    return results


def search_view(
    ctx: ServiceContext,
    tree: str,
    query: str,
    *,
    project: Project | None,
    regex: bool = False,
    path_glob: str | None = None,
    language: str | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    return code_index(ctx).search(
        tree,
        query,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=limit,
        project_id=project.id if project else None,
    )


def search_session(
    ctx: ServiceContext,
    session: Session,
    query: str,
    *,
    regex: bool = False,
    path_glob: str | None = None,
    language: str | None = None,
    limit: int = 20,
    actor: Actor = "user",
) -> list[dict[str, Any]]:
    """Search the session's own view (never another session's files); recorded as context."""
    report = session_view(ctx, session)
    project = get_project(ctx, session.project_id)
    hits = search_view(
        ctx,
        report.tree,
        query,
        project=project,
        regex=regex,
        path_glob=path_glob,
        language=language,
        limit=limit,
    )
    ref = ContextRef(query=query, lookup="search", results=_ref_results(hits))
    ctx.record(session, ref, actor)
    return [hit_json(h) for h in hits]


def find_definitions(
    ctx: ServiceContext, session: Session, name: str, *, actor: Actor = "user"
) -> list[dict[str, Any]]:
    report = session_view(ctx, session)
    found = code_index(ctx).definitions(name, report.tree)
    ctx.record(
        session, ContextRef(query=name, lookup="definition", results=_ref_results(found)), actor
    )
    return [s.model_dump(mode="json") for s in found]


def find_references(
    ctx: ServiceContext, session: Session, name: str, *, actor: Actor = "user"
) -> list[dict[str, Any]]:
    report = session_view(ctx, session)
    project = get_project(ctx, session.project_id)
    found = code_index(ctx).references(name, report.tree, project_id=project.id)
    ctx.record(
        session, ContextRef(query=name, lookup="references", results=_ref_results(found)), actor
    )
    return [r.model_dump(mode="json") for r in found]


def main_definitions(ctx: ServiceContext, project: Project, name: str) -> list[dict[str, Any]]:
    tree = project_view(ctx, project).tree
    return [s.model_dump(mode="json") for s in code_index(ctx).definitions(name, tree)]


def main_references(ctx: ServiceContext, project: Project, name: str) -> list[dict[str, Any]]:
    tree = project_view(ctx, project).tree
    found = code_index(ctx).references(name, tree, project_id=project.id)
    return [r.model_dump(mode="json") for r in found]


def repo_map(ctx: ServiceContext, session: Session, tokens: int = REPO_MAP_TOKENS) -> str:
    report = session_view(ctx, session)
    return code_index(ctx).repo_map(report.tree, token_budget=tokens)


def add_document(ctx: ServiceContext, project: Project, path: Path) -> Document:
    return code_index(ctx).add_document(project.id, path)


def list_documents(ctx: ServiceContext, project: Project) -> list[Document]:
    return code_index(ctx).list_documents(project.id)


def remove_document(ctx: ServiceContext, project: Project, key: str) -> Document:
    return code_index(ctx).remove_document(project.id, key)


def document_titles(ctx: ServiceContext, project: Project) -> list[str]:
    return [f"{d.title} ({d.name})" for d in list_documents(ctx, project)]
