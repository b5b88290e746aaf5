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
    ignored: Annotated[
        bool, typer.Option("--ignored", help="With --session: also count ignored files.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Index a project's main branch (the current dir's by default), or a session's working
    state (--session), for search and symbols."""
    with workspace() as ws:
        report = _index(ws, session, project, show_progress=not as_json, ignored=ignored)
    if as_json:
        render.print_json(report.model_dump(mode="json") | {"id": report.tree})
        return
    skipped = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items() if n) or "none"
    render.console.print(
        f"{report.files_total} files: {report.indexed} indexed, {report.reused} reused, "
        f"skipped {skipped} ({report.duration_s:.1f} s)"
    )


def _index(
    ws: Workspace, session: str | None, project: str | None, *, show_progress: bool, ignored: bool
) -> IndexReport:
    if not show_progress:
        return ws.index(session=session, project=project, count_ignored=ignored)
    with render.progress_bar("indexing") as progress:
        return ws.index(session=session, project=project, progress=progress, count_ignored=ignored)


LimitOpt = Annotated[int, typer.Option(min=1, help="Most results.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every result, however many.")]


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
    limit: LimitOpt = 20,
    every: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Search code and context documents: the files of the session the current directory
    means (recorded in its history), or the main branch of a project named with --project (or
    of the current directory's project when it has no session)."""
    with workspace() as ws:
        found = ws.search(
            query,
            session=session,
            project=project,
            regex=regex,
            path_glob=path,
            language=language,
            limit=None if every else limit,
        )
    if as_json:
        render.print_json(found.model_dump(mode="json"))
        return
    for hit in found.hits:
        render.console.print(f"[cyan]{escape(hit.path)}[/]:[bold]{hit.line}[/]")
        render.console.print(escape(hit.snippet.rstrip()), style="dim")
    if not found.hits:
        render.console.print("no matches")
    render.more(found.more)


def symbols_cmd(
    name: str,
    session: SessionOpt = None,
    project: ProjectOpt = None,
    references: Annotated[
        bool, typer.Option("--references", "-r", help="Find uses, not definitions.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Most references.")] = 200,
    every: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Go to definition (or find references by name), in the files `search` would search."""
    more = ""
    with workspace() as ws:
        if references:
            refs = ws.references(
                name, session=session, project=project, limit=None if every else limit
            )
            found: list[Symbol] | list[Reference] = refs.references
            more = refs.more
        else:
            found = ws.definitions(name, session=session, project=project)
    if as_json:
        data = [item.model_dump(mode="json") for item in found]
        render.print_json(refs.model_dump(mode="json") if references else data)
        return
    for item in found:
        render.console.print(render.symbol_line(item))
    if not found:
        render.console.print(
            f"no {'references to' if references else 'definition of'} {escape(name)}"
        )
    render.more(more)


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
