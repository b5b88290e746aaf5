"""`branchwork index`, `search`, `symbols` and `context …`: the indexed repository context."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from branchwork.cli import render
from branchwork.cli._common import JsonOpt, ProjectOpt, SessionOpt, workspace

if TYPE_CHECKING:
    from branchwork import IndexReport, Reference, Symbol, Workspace

context_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Documents that guide the agent: specs, PRDs, notes.",
    no_args_is_help=True,
)


def index_cmd(
    project: Annotated[
        str | None, typer.Argument(help="Project whose main branch to index.")
    ] = None,
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index a project's main branch (the current dir's by default), or a session's working
    state (--session), for search and symbols."""
    with workspace() as ws:
        report = _index(ws, session, project, show_progress=not as_json)
    if as_json:
        render.print_json(report.model_dump(mode="json") | {"id": report.tree})
        return
    skipped = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items() if n) or "none"
    render.console.print(
        f"{report.files_total} files: {report.indexed} indexed, {report.reused} reused, "
        f"skipped {skipped} ({report.duration_s:.1f} s)"
    )


def _index(
    ws: Workspace, session: str | None, project: str | None, *, show_progress: bool
) -> IndexReport:
    if not show_progress:
        return ws.index(session=session, project=project)
    with render.progress_bar("indexing") as progress:
        return ws.index(session=session, project=project, progress=progress)


def search_cmd(
    query: str,
    session: SessionOpt = None,
    project: ProjectOpt = None,
    regex: Annotated[
        bool, typer.Option("--regex", "-e", help="QUERY is a regular expression.")
    ] = False,
    path: Annotated[
        str | None, typer.Option("--path", help="Only paths matching this glob.")
    ] = None,
    language: Annotated[str | None, typer.Option("--lang", help="Only this language.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most results.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search code and context documents: the files of the session the current directory
    means (recorded in its history), or the main branch of a project named with --project (or
    of the current directory's project when it has no session)."""
    with workspace() as ws:
        hits = ws.search(
            query,
            session=session,
            project=project,
            regex=regex,
            path_glob=path,
            language=language,
            limit=limit,
        )
    if as_json:
        render.print_json([hit.model_dump(mode="json") for hit in hits])
        return
    for hit in hits:
        render.console.print(f"[cyan]{escape(hit.path)}[/]:[bold]{hit.line}[/]")
        render.console.print(escape(hit.snippet.rstrip()), style="dim")
    if not hits:
        render.console.print("no matches")


def symbols_cmd(
    name: str,
    session: SessionOpt = None,
    project: ProjectOpt = None,
    references: Annotated[
        bool, typer.Option("--references", "-r", help="Find uses, not definitions.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Go to definition (or find references by name), in the files `search` would search."""
    with workspace() as ws:
        if references:
            found: list[Symbol] | list[Reference] = ws.references(
                name, session=session, project=project
            )
        else:
            found = ws.definitions(name, session=session, project=project)
    if as_json:
        render.print_json([item.model_dump(mode="json") for item in found])
        return
    for item in found:
        render.console.print(render.symbol_line(item))
    if not found:
        render.console.print(
            f"no {'references to' if references else 'definition of'} {escape(name)}"
        )


@context_app.command("add")
def context_add_cmd(path: str, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Attach a Markdown, text or PDF document to the project."""
    with workspace() as ws:
        doc = ws.add_document(path, project=project)
    if as_json:
        render.print_json(doc.model_dump(mode="json"))
    else:
        render.console.print(f"added {escape(doc.title)} ({doc.lines} lines) as {doc.id}")


@context_app.command("list")
def context_list_cmd(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the project's context documents."""
    with workspace() as ws:
        docs = ws.documents(project)
    if as_json:
        render.print_json([d.model_dump(mode="json") for d in docs])
        return
    for doc in docs:
        render.console.print(f"{doc.id}  {escape(doc.title)}  [dim]{escape(doc.source_path)}[/]")


@context_app.command("remove")
def context_remove_cmd(key: str, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Remove a context document (by id or title)."""
    with workspace() as ws:
        doc = ws.remove_document(key, project=project)
    if as_json:
        render.print_json({"id": doc.id, "removed": True})
    else:
        render.console.print(f"removed {escape(doc.title)}")
