"""`branchwork index`, `search`, `symbols` and `context …`: the indexed repository context."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from branchwork.cli import render
from branchwork.cli._common import JsonOpt, ProjectOpt, SessionOpt, workspace
from branchwork.service import Workspace

if TYPE_CHECKING:
    from branchwork.index import IndexReport

context_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Documents that guide the agent: specs, PRDs, notes.",
    no_args_is_help=True,
)


def index_cmd(
    project: Annotated[
        str | None, typer.Argument(help="Project (default: the current dir's).")
    ] = None,
    session: SessionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index a project's main branch (or a session's working state) for search and symbols."""
    with workspace() as ws:
        target: Any = ws.session(session) if session else ws.project(project)
        report = ws.index(target) if as_json else _index_with_progress(ws, target)
        ws.collect_index_garbage()
    if as_json:
        render.print_json(report.model_dump(mode="json") | {"id": report.tree})
        return
    skipped = ", ".join(f"{n} {reason}" for reason, n in report.skipped.items() if n) or "none"
    render.console.print(
        f"{report.files_total} files: {report.indexed} indexed, {report.reused} reused, "
        f"skipped {skipped} ({report.duration_s:.1f} s)"
    )


def _index_with_progress(ws: Workspace, target: Any) -> IndexReport:
    columns = (TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=render.err_console, transient=True) as bar:
        task = bar.add_task("index", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return ws.index(target, progress=progress)


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
    """Search code and context documents: the current session's files by default, else the
    main branch of the current directory's project. Recorded in the session's history."""
    with workspace() as ws:
        scope = _scope(ws, session, project)
        hits = ws.search(
            query, regex=regex, path_glob=path, language=language, limit=limit, **scope
        )
    if as_json:
        render.print_json(hits)
        return
    for hit in hits:
        render.console.print(f"[cyan]{escape(hit['path'])}[/]:[bold]{hit['line']}[/]")
        render.console.print(escape(hit["snippet"].rstrip()), style="dim")
    if not hits:
        render.console.print("no matches")


def _scope(ws: Workspace, session: str | None, project: str | None) -> dict[str, Any]:
    if session:
        return {"session": session}
    if project:
        return {"project": project}
    current = ws.current_session()
    if current is not None:
        return {"session": current}
    return {"project": ws.project(None)}


def symbols_cmd(
    name: str,
    session: SessionOpt = None,
    project: ProjectOpt = None,
    references: Annotated[
        bool, typer.Option("--references", "-r", help="Find uses, not definitions.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Go to definition (or find references by name): the current session's files by default,
    else the main branch of the current directory's project."""
    with workspace() as ws:
        lookup = ws.references if references else ws.definitions
        found = lookup(name, **_scope(ws, session, project))
    if as_json:
        render.print_json(found)
        return
    for item in found:
        where = f"[cyan]{escape(item['path'])}[/]:[bold]{item['line']}[/]"
        what = item.get("kind") or ("definition" if item.get("is_definition") else "reference")
        render.console.print(f"{where} {what} {escape(item.get('text') or item['name'])}")
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
