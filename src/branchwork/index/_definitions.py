"""Looking up stored symbols in a view: go to definition, a file's outline."""

from __future__ import annotations

import re
from typing import Any

from branchwork.index._models import Symbol
from branchwork.index._search import Filters
from branchwork.index._store import Layers, Store, visible

_COLUMNS = (
    "SELECT s.name, s.kind, s.container, p.path, s.name_line, s.start_line, s.end_line, "
    "s.language, b.sha "
)
# `CROSS JOIN` fixes SQLite's join order: from the symbols of that name to the view (by name),
# or from the path to its symbols (outline), never a scan of the whole view.
_BY_NAME = _COLUMNS + (
    f"FROM symbols s CROSS JOIN view_files v ON v.blob_id = s.blob_id AND {visible('v')} "
    "JOIN paths p ON p.id = v.path_id AND p.language = s.language "
    "JOIN blobs b ON b.id = s.blob_id WHERE s.name = :name "
)
_BY_PATH = _COLUMNS + (
    f"FROM paths p CROSS JOIN view_files v ON v.path_id = p.id AND {visible('v')} "
    "CROSS JOIN symbols s ON s.blob_id = v.blob_id AND s.language = p.language "
    "JOIN blobs b ON b.id = s.blob_id WHERE p.path = :path ORDER BY s.start_line, s.name_line"
)
_QUALIFIED = re.compile(r"^(?P<container>.+?)(?:\.|::)(?P<name>[^.:]+)$")


def split_qualified(name: str) -> tuple[str | None, str]:
    """`QuerySet.filter` or `Foo::bar` -> (container, name); a plain name -> (None, name)."""
    match = _QUALIFIED.match(name.strip())
    if match is None:
        return None, name.strip()
    container = match.group("container").replace(".", "::").split("::")[-1]
    return container, match.group("name")


def definitions(
    store: Store,
    view: Layers,
    name: str,
    *,
    kind: str | None,
    filters: Filters,
    limit: int,
) -> list[Symbol]:
    """Definitions named `name` (or `Container.name`), top-level ones and short paths first."""
    container, plain = split_qualified(name)
    sql = _BY_NAME
    params: dict[str, Any] = view.params(name=plain)
    if container is not None:
        sql += "AND s.container = :container "
        params["container"] = container
    if kind is not None:
        sql += "AND s.kind = :kind "
        params["kind"] = kind
    found = [
        symbol
        for symbol in (Symbol(**_fields(row)) for row in store.conn.execute(sql, params))
        if filters.accepts(symbol.path, symbol.language)
    ]
    found.sort(key=lambda s: (s.container is not None, s.path.count("/"), s.path, s.start_line))
    return found[:limit]


def outline(store: Store, view: Layers, path: str) -> list[Symbol]:
    rows = store.conn.execute(_BY_PATH, view.params(path=path))
    return [Symbol(**_fields(row)) for row in rows]


def definition_lines(store: Store, view: Layers, name: str) -> set[tuple[str, int]]:
    """(blob sha, line of the name) of every definition of `name` in the view."""
    rows = store.conn.execute(_BY_NAME, view.params(name=name))
    return {(row[8], row[4]) for row in rows}


def _fields(row: Any) -> dict[str, Any]:
    name, kind, container, path, line, start, end, language, sha = row
    return {
        "name": name,
        "kind": kind,
        "container": container,
        "path": path,
        "line": line,
        "start_line": start,
        "end_line": end,
        "language": language,
        "blob_sha": sha,
    }
